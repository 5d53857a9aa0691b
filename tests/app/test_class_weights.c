/* --class-balance weights from label counts: P = 0 is no weighting, P = 1
 * scikit-learn's "balanced", any P averages 1 over the training samples,
 * and a class without samples gets 0. */
#include "testutil.h"

#include "app/class_weights.h"

#include <math.h>

static double mean_over_samples(const int64_t *counts, const float *w, int K) {
    double n = 0.0, s = 0.0;
    for (int k = 0; k < K; k++) {
        n += (double)counts[k];
        s += (double)counts[k] * w[k];
    }
    return s / n;
}

static void test_power_zero_is_unweighted(void **state) {
    const int64_t counts[4] = {100, 10, 1, 889};
    float w[4];
    class_weights_from_counts(counts, 4, 0.0f, w);
    for (int k = 0; k < 4; k++)
        assert_float_equal(w[k], 1.0f, 1e-6);
}

/* sklearn: n_samples / (n_classes * bincount(y)) */
static void test_power_one_is_sklearn_balanced(void **state) {
    const int64_t counts[3] = {50, 30, 20};
    float w[3];
    class_weights_from_counts(counts, 3, 1.0f, w);
    assert_float_equal(w[0], 100.0 / 150.0, 1e-6);
    assert_float_equal(w[1], 100.0 / 90.0, 1e-6);
    assert_float_equal(w[2], 100.0 / 60.0, 1e-6);
    assert_float_equal(mean_over_samples(counts, w, 3), 1.0, 1e-6);
}

/* P = 0.5: w_k proportional to n_k^-0.5, rescaled to average 1. */
static void test_power_half_averages_one(void **state) {
    const int64_t counts[4] = {400, 100, 25, 4};
    float w[4];
    class_weights_from_counts(counts, 4, 0.5f, w);
    assert_float_equal(w[1] / w[0], 2.0, 1e-5);
    assert_float_equal(w[2] / w[0], 4.0, 1e-5);
    assert_float_equal(w[3] / w[0], 10.0, 1e-5);
    assert_float_equal(mean_over_samples(counts, w, 4), 1.0, 1e-6);
}

static void test_missing_class_gets_zero(void **state) {
    const int64_t counts[3] = {10, 0, 30}, none[2] = {0, 0};
    float w[3];
    class_weights_from_counts(counts, 3, 1.0f, w);
    assert_true(w[1] == 0.0f);
    assert_float_equal(w[0] / w[2], 3.0, 1e-5);
    assert_float_equal(mean_over_samples(counts, w, 3), 1.0, 1e-6);
    class_weights_from_counts(none, 2, 1.0f, w);
    assert_true(w[0] == 0.0f && w[1] == 0.0f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_power_zero_is_unweighted),
        cmocka_unit_test(test_power_one_is_sklearn_balanced),
        cmocka_unit_test(test_power_half_averages_one),
        cmocka_unit_test(test_missing_class_gets_zero),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
