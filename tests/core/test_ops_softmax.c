/* Softmax and log-softmax along the last dimension: values against a double
 * reference, the mask broadcast (row r uses mask row r / (R / M)), fully
 * masked rows (zeros, no NaN, no gradient), large logits, and
 * finite-difference gradients.
 *
 * Gradient tolerance: central differences with h = 1e-2 on logits in
 * [-2, 2]; truncation h^2/6 |f'''| <= 2e-5, output rounding <= 1e-5: atol
 * 5e-4 + rtol 5e-3. log-softmax outputs of entries masked with -inf are -inf
 * and would make the finite differences NaN, so its masked gradient check
 * masks with -30 instead (e^-30 is below the tolerance), and a separate test
 * shows -inf and a finite mask give the same gradient. */
#include "testutil.h"

#include "core/ops.h"

#include <math.h>
#include <string.h>

#define H 1e-2f
#define ATOL 5e-4f
#define RTOL 5e-3f

/* (log-)softmax of x + mask in double; rows whose every entry is -inf
 * give zeros. */
static void ref_softmax(float *out, const float *x, const float *mask, int rows, int C,
                        int per_mask, bool as_log) {
    for (int r = 0; r < rows; r++) {
        const float *m = mask ? mask + (r / per_mask) * C : NULL;
        double maxv = -INFINITY, sum = 0;
        for (int i = 0; i < C; i++)
            maxv = fmax(maxv, (double)x[r * C + i] + (m ? m[i] : 0));
        for (int i = 0; i < C; i++)
            sum += exp((double)x[r * C + i] + (m ? m[i] : 0) - maxv);
        for (int i = 0; i < C; i++) {
            double v = (double)x[r * C + i] + (m ? m[i] : 0) - maxv;
            if (maxv == -INFINITY)
                out[r * C + i] = 0.0f;
            else
                out[r * C + i] = (float)(as_log ? v - log(sum) : exp(v) / sum);
        }
    }
}

static tensor *fwd_softmax(graph *g, tensor **in, void *user) {
    return op_softmax(g, in[0], user);
}
static tensor *fwd_log_softmax(graph *g, tensor **in, void *user) {
    return op_log_softmax(g, in[0], user);
}

static void test_known_values(void **state) {
    tensor *x = tu_leaf(2, (int[]){2, 3}, false, 1, 1);
    /* the second row is the first + 1000: max subtraction keeps it finite */
    memcpy(x->data, (float[]){1, 2, 3, 1001, 1002, 1003}, sizeof(float) * 6);
    graph *g = graph_create(1 << 14, 0);
    float p[3] = {0.0900305732f, 0.244728471f, 0.665240956f};
    float lp[3] = {-2.40760596f, -1.40760596f, -0.407605964f};
    tensor *y = op_softmax(g, x, NULL), *ly = op_log_softmax(g, x, NULL);
    tu_assert_close("softmax row 0", y->data, p, 3, 0, 3e-7f);
    tu_assert_close("softmax row 1", y->data + 3, p, 3, 0, 3e-7f);
    tu_assert_close("log_softmax row 0", ly->data, lp, 3, 0, 3e-7f);
    tu_assert_close("log_softmax row 1", ly->data + 3, lp, 3, 0, 3e-7f);
    graph_free(g);
    tu_leaf_free(x);
}

static void test_values_random(void **state) {
    /* C = 37: vector lanes and a tail; logits in [-10, 10] */
    tensor *x = tu_leaf(3, (int[]){2, 3, 37}, false, 10, 2);
    float want[222];
    graph *g = graph_create(1 << 16, 0);
    for (int as_log = 0; as_log < 2; as_log++) {
        tensor *y = as_log ? op_log_softmax(g, x, NULL) : op_softmax(g, x, NULL);
        ref_softmax(want, x->data, NULL, 6, 37, 6, as_log);
        tu_assert_close(as_log ? "log_softmax" : "softmax", y->data, want, 222, 1e-7f, 2e-6f);
    }
    graph_free(g);
    tu_leaf_free(x);
}

/* x (B=2, NH=3, T=2, S=5), mask (B, S): mask row b serves the NH * T = 6
 * rows of sample b. Sample 0 has finite additive values and one key off,
 * sample 1 has its last two keys off. */
static void test_mask_broadcast(void **state) {
    tensor *x = tu_leaf(4, (int[]){2, 3, 2, 5}, false, 2, 3);
    tensor *mask = tu_leaf(2, (int[]){2, 5}, false, 1, 4);
    float mv[10] = {0.5f, -1.0f, -INFINITY, 0, 2.0f, 0, 0, 0, -INFINITY, -INFINITY};
    memcpy(mask->data, mv, sizeof mv);
    float want[60], got[60];
    graph *g = graph_create(1 << 16, 0);
    for (int as_log = 0; as_log < 2; as_log++) {
        tensor *y = as_log ? op_log_softmax(g, x, mask) : op_softmax(g, x, mask);
        ref_softmax(want, x->data, mask->data, 12, 5, 6, as_log);
        memcpy(got, y->data, sizeof got);
        for (int r = 0; r < 12; r++)
            for (int i = 0; i < 5; i++) {
                if (mask->data[(r / 6) * 5 + i] != -INFINITY)
                    continue;
                /* removed entries: exactly 0 (softmax) or -inf (log-softmax);
                 * compared here, since -inf - -inf is no difference */
                assert_true(got[r * 5 + i] == (as_log ? -INFINITY : 0.0f));
                got[r * 5 + i] = want[r * 5 + i] = 0.0f;
            }
        tu_assert_close(as_log ? "log_softmax masked" : "softmax masked", got, want, 60, 1e-7f,
                        2e-6f);
    }
    graph_free(g);
    tu_leaf_free(x);
    tu_leaf_free(mask);
}

/* x (B=2, T=2, S=4) with mask (B, S): sample 0 entirely removed. Both ops
 * give zeros there, no NaN anywhere, and no gradient into those rows. */
static void test_fully_masked(void **state) {
    tensor *x = tu_leaf(3, (int[]){2, 2, 4}, true, 1, 5);
    tensor *mask = tu_leaf(2, (int[]){2, 4}, false, 1, 6);
    float mv[8] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, 0, -30.0f, 0, 0};
    memcpy(mask->data, mv, sizeof mv);
    for (int as_log = 0; as_log < 2; as_log++) {
        memset(x->grad, 0, sizeof(float) * 16);
        graph *g = graph_create(1 << 14, 0);
        tensor *y = as_log ? op_log_softmax(g, x, mask) : op_softmax(g, x, mask);
        for (int i = 0; i < 16; i++) {
            assert_false(isnan(y->data[i]));
            y->grad[i] = 1.0f + 0.1f * (float)i;
        }
        for (int i = 0; i < 8; i++)
            assert_true(y->data[i] == 0.0f);
        graph_backward_tape(g);
        for (int i = 0; i < 16; i++) {
            assert_true(isfinite(x->grad[i]));
            if (i < 8)
                assert_true(x->grad[i] == 0.0f);
        }
        graph_free(g);
        /* the live rows (and the dead ones: constant 0) pass the check */
        tu_gradcheck(as_log ? "log_softmax_dead_row" : "softmax_dead_row",
                     as_log ? fwd_log_softmax : fwd_softmax, mask, 1, &x, H, ATOL, RTOL, 100);
    }
    tu_leaf_free(x);
    tu_leaf_free(mask);
}

static void test_grads(void **state) {
    tensor *x = tu_leaf(3, (int[]){2, 3, 11}, true, 2, 7);
    tu_gradcheck("softmax", fwd_softmax, NULL, 1, &x, H, ATOL, RTOL, 100);
    tu_gradcheck("log_softmax", fwd_log_softmax, NULL, 1, &x, H, ATOL, RTOL, 100);
    /* mask (3, 11) over 6 rows: 2 rows each */
    tensor *mask = tu_leaf(2, (int[]){3, 11}, false, 1, 8);
    for (int i = 0; i < 33; i += 4)
        mask->data[i] = -INFINITY;
    tu_gradcheck("softmax_masked", fwd_softmax, mask, 1, &x, H, ATOL, RTOL, 100);
    for (int i = 0; i < 33; i += 4)
        mask->data[i] = -30.0f;
    tu_gradcheck("log_softmax_masked", fwd_log_softmax, mask, 1, &x, H, ATOL, RTOL, 100);
    tu_leaf_free(x);
    tu_leaf_free(mask);
}

/* Removing an entry with -inf gives the gradient of a mask so negative that
 * its probability underflows: for log-softmax, d(x_i + mask_i - lse)/dx_i
 * is 1, as PyTorch computes it. */
static void test_log_softmax_inf_mask_grad(void **state) {
    tensor *x = tu_leaf(2, (int[]){3, 9}, true, 2, 9);
    tensor *mask = tu_leaf(2, (int[]){1, 9}, false, 0, 10);
    float grads[2][27];
    for (int k = 0; k < 2; k++) {
        mask->data[2] = mask->data[7] = k ? -INFINITY : -200.0f;
        memset(x->grad, 0, sizeof(float) * 27);
        graph *g = graph_create(1 << 14, 0);
        tensor *y = op_log_softmax(g, x, mask);
        for (int i = 0; i < 27; i++)
            y->grad[i] = 0.3f * (float)(i % 7) - 1.0f;
        graph_backward_tape(g);
        memcpy(grads[k], x->grad, sizeof grads[k]);
        graph_free(g);
    }
    tu_assert_close("grad -inf vs -200", grads[1], grads[0], 27, 1e-6f, 1e-6f);
    tu_leaf_free(x);
    tu_leaf_free(mask);
}

/* Backward adds into the input grad: a second replay doubles it. */
static void test_grads_accumulate(void **state) {
    tensor *x = tu_leaf(2, (int[]){4, 10}, true, 2, 11);
    for (int as_log = 0; as_log < 2; as_log++) {
        memset(x->grad, 0, sizeof(float) * 40);
        graph *g = graph_create(1 << 14, 0);
        tensor *y = as_log ? op_log_softmax(g, x, NULL) : op_softmax(g, x, NULL);
        for (int i = 0; i < 40; i++)
            y->grad[i] = 0.1f * (float)(i % 9) - 0.4f;
        graph_backward_tape(g);
        float once[40];
        for (int i = 0; i < 40; i++)
            once[i] = 2.0f * x->grad[i];
        graph_backward_tape(g);
        tu_assert_close("replayed twice", x->grad, once, 40, 1e-7f, 1e-6f);
        graph_free(g);
    }
    tu_leaf_free(x);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_values),
        cmocka_unit_test(test_values_random),
        cmocka_unit_test(test_mask_broadcast),
        cmocka_unit_test(test_fully_masked),
        cmocka_unit_test(test_grads),
        cmocka_unit_test(test_log_softmax_inf_mask_grad),
        cmocka_unit_test(test_grads_accumulate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
