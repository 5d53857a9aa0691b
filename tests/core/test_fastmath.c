/* fast_expf and fast_erff against libm (in double) over dense grids: relative
 * error of exp below 2e-7 on [-80, 80], absolute error of erf below 1e-6. */
#include "testutil.h"

#include "core/fastmath.h"

#include <math.h>

static void test_fast_expf(void **state) {
    double worst = 0;
    float at = 0;
    for (float x = -80.0f; x < 80.0f; x += 0.00173f) {
        double want = exp((double)x);
        double rel = fabs(fast_expf(x) - want) / want;
        if (rel > worst) {
            worst = rel;
            at = x;
        }
    }
    print_message("fast_expf: max relative error %.3g at %g\n", worst, at);
    assert_true(worst < 2e-7);
    assert_true(fast_expf(-1000.0f) == 0.0f);
    assert_true(fast_expf(-INFINITY) == 0.0f);
}

static void test_fast_erff(void **state) {
    double worst = 0;
    float at = 0;
    for (float x = -6.0f; x < 6.0f; x += 0.0001f) {
        double d = fabs(fast_erff(x) - erf((double)x));
        if (d > worst) {
            worst = d;
            at = x;
        }
    }
    print_message("fast_erff: max absolute error %.3g at %g\n", worst, at);
    assert_true(worst < 1e-6);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fast_expf),
        cmocka_unit_test(test_fast_erff),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
