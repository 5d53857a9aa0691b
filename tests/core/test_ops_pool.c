/* Masked mean and weighted sum over tokens. Both are (bi)linear, so central
 * differences with h = 1e-2 only carry float rounding: 1e-3 abs + 1e-3 rel. */
#include "testutil.h"

#include <string.h>

#include "core/ops.h"

static tensor *fwd_masked_mean(graph *g, tensor **in, void *user) {
    return op_masked_mean(g, in[0], user);
}

static tensor *valid_of(int B, int T, const int32_t *v) {
    tensor *valid = tu_leaf_i32(2, (int[]){B, T}, 0, 2, 1);
    memcpy(valid->idata, v, sizeof(int32_t) * B * T);
    return valid;
}

/* Row 0 keeps tokens 0 and 2, row 1 none (zeros out, no gradient), row 2
 * all (any non-zero flag counts as valid). */
static void test_masked_mean_values(void **state) {
    int B = 3, T = 3, C = 2;
    tensor *x = tu_leaf(3, (int[]){B, T, C}, true, 1, 1);
    for (int i = 0; i < B * T * C; i++)
        x->data[i] = (float)i;
    tensor *valid = valid_of(B, T, (int32_t[]){1, 0, 1, 0, 0, 0, 1, 7, 1});
    graph *g = graph_create(1 << 16, 0);
    tensor *y = op_masked_mean(g, x, valid);
    assert_int_equal(y->ndim, 2);
    assert_int_equal(y->shape[0], B);
    assert_int_equal(y->shape[1], C);
    /* row 0: mean of (0,1), (4,5); row 2: mean of (12,13), (14,15), (16,17) */
    tu_assert_close("masked_mean", y->data, (float[]){2, 3, 0, 0, 14, 15}, B * C, 1e-6f, 0);
    for (int i = 0; i < B * C; i++)
        y->grad[i] = 1.0f;
    graph_backward_tape(g);
    float want[18] = {0.5f, 0.5f, 0, 0, 0.5f, 0.5f, 0, 0, 0, 0, 0, 0};
    for (int i = 12; i < 18; i++)
        want[i] = 1.0f / 3.0f;
    tu_assert_close("masked_mean dx", x->grad, want, B * T * C, 1e-7f, 0);
    graph_free(g);
    tu_leaf_free(x);
    tu_leaf_free(valid);
}

static void test_masked_mean_no_mask(void **state) {
    tensor *x = tu_leaf(3, (int[]){2, 4, 3}, false, 1, 2);
    graph *g = graph_create(1 << 16, 0);
    tensor *y = op_masked_mean(g, x, NULL);
    assert_null(y->grad);
    float want[6] = {0};
    for (int b = 0; b < 2; b++)
        for (int t = 0; t < 4; t++)
            for (int c = 0; c < 3; c++)
                want[b * 3 + c] += x->data[(b * 4 + t) * 3 + c] / 4.0f;
    tu_assert_close("mean", y->data, want, 6, 1e-6f, 1e-6f);
    graph_free(g);
    tu_leaf_free(x);
}

static void test_masked_mean_grad(void **state) {
    /* right padding, nothing valid, all valid, left padding */
    tensor *x = tu_leaf(3, (int[]){4, 5, 4}, true, 1, 3);
    tensor *valid =
        valid_of(4, 5, (int32_t[]){1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 1, 0, 0, 1});
    graph *g = graph_create(1 << 16, 0);
    tensor *y = op_masked_mean(g, x, valid);
    float want[4 * 4] = {0};
    for (int b = 0; b < 4; b++) {
        int n = 0;
        for (int t = 0; t < 5; t++)
            n += valid->idata[b * 5 + t];
        for (int t = 0; t < 5; t++)
            for (int c = 0; c < 4 && valid->idata[b * 5 + t]; c++)
                want[b * 4 + c] += x->data[(b * 5 + t) * 4 + c] / (float)n;
    }
    tu_assert_close("masked_mean", y->data, want, 16, 1e-6f, 1e-6f);
    graph_free(g);
    tu_gradcheck("masked_mean", fwd_masked_mean, valid, 1, &x, 1e-2f, 1e-3f, 1e-3f, 200);
    tu_gradcheck("masked_mean_nomask", fwd_masked_mean, NULL, 1, &x, 1e-2f, 1e-3f, 1e-3f, 200);
    tu_leaf_free(x);
    tu_leaf_free(valid);
}

static tensor *fwd_weighted_sum(graph *g, tensor **in, void *user) {
    return op_weighted_sum(g, in[0], in[1]);
}

static void test_weighted_sum_values(void **state) {
    /* x[0] = [[1,2],[3,4]], w[0] = [2,-1] -> [-1, 0] */
    tensor *x = tu_leaf(3, (int[]){1, 2, 2}, false, 1, 1);
    tensor *w = tu_leaf(2, (int[]){1, 2}, false, 1, 2);
    memcpy(x->data, (float[]){1, 2, 3, 4}, sizeof(float) * 4);
    memcpy(w->data, (float[]){2, -1}, sizeof(float) * 2);
    graph *g = graph_create(1 << 16, 0);
    tensor *y = op_weighted_sum(g, x, w);
    assert_null(y->grad);
    tu_assert_close("weighted_sum", y->data, (float[]){-1, 0}, 2, 0, 0);
    graph_free(g);
    tu_leaf_free(x);
    tu_leaf_free(w);
}

/* Gradients to both inputs, then to each alone (the other has no grad). */
static void test_weighted_sum_grad(void **state) {
    for (int which = 0; which < 3; which++) {
        tensor *in[2] = {tu_leaf(3, (int[]){3, 4, 5}, which != 2, 1, 4),
                         tu_leaf(2, (int[]){3, 4}, which != 1, 1, 5)};
        tu_gradcheck("weighted_sum", fwd_weighted_sum, NULL, 2, in, 1e-2f, 1e-3f, 1e-3f, 200);
        tu_leaf_free(in[0]);
        tu_leaf_free(in[1]);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_masked_mean_values), cmocka_unit_test(test_masked_mean_no_mask),
        cmocka_unit_test(test_masked_mean_grad),   cmocka_unit_test(test_weighted_sum_values),
        cmocka_unit_test(test_weighted_sum_grad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
