/* Layer norm: values against a double reference with PyTorch's semantics
 * (biased variance, eps inside the square root), a constant row, a large
 * mean, and finite-difference gradients of x, w and b, each alone and all
 * together.
 *
 * Gradient tolerance: central differences with h = 1e-2 on inputs in
 * [-1, 1]; layer norm's curvature grows with rstd (about 1.7 here), so
 * atol 2e-3 + rtol 1e-2. */
#include "testutil.h"

#include "core/ops.h"

#include <math.h>
#include <string.h>

#define H 1e-2f
#define ATOL 2e-3f
#define RTOL 1e-2f
#define EPS 1e-5f

static void ref_layer_norm(float *out, const float *x, const float *w, const float *b, int rows,
                           int C, double eps) {
    for (int r = 0; r < rows; r++) {
        const float *xr = x + r * C;
        double m = 0, v = 0;
        for (int i = 0; i < C; i++)
            m += xr[i];
        m /= C;
        for (int i = 0; i < C; i++)
            v += (xr[i] - m) * (xr[i] - m);
        v /= C;
        for (int i = 0; i < C; i++)
            out[r * C + i] = (float)((xr[i] - m) / sqrt(v + eps) * w[i] + b[i]);
    }
}

static tensor *fwd_layer_norm(graph *g, tensor **in, void *user) {
    return op_layer_norm(g, in[0], in[1], in[2], EPS);
}

static void test_values(void **state) {
    /* C = 37: vector lanes and a tail */
    tensor *x = tu_leaf(3, (int[]){2, 3, 37}, false, 3, 1);
    tensor *w = tu_leaf(1, (int[]){37}, false, 2, 2), *b = tu_leaf(1, (int[]){37}, false, 1, 3);
    float want[222];
    ref_layer_norm(want, x->data, w->data, b->data, 6, 37, EPS);
    graph *g = graph_create(1 << 16, 0);
    tensor *y = op_layer_norm(g, x, w, b, EPS);
    assert_null(y->grad);
    tu_assert_close("layer_norm", y->data, want, 222, 2e-6f, 2e-6f);
    /* [1, 2, 3, 4]: mean 2.5, biased variance 1.25 */
    tensor *x4 = tu_leaf(2, (int[]){1, 4}, false, 1, 4);
    tensor *one = tu_leaf(1, (int[]){4}, false, 1, 5), *zero = tu_leaf(1, (int[]){4}, false, 1, 6);
    memcpy(x4->data, (float[]){1, 2, 3, 4}, sizeof(float) * 4);
    for (int i = 0; i < 4; i++) {
        one->data[i] = 1.0f;
        zero->data[i] = 0.0f;
    }
    float s = (float)(1.0 / sqrt(1.25 + 1e-5));
    float want4[4] = {-1.5f * s, -0.5f * s, 0.5f * s, 1.5f * s};
    tu_assert_close("layer_norm [1,2,3,4]", op_layer_norm(g, x4, one, zero, EPS)->data, want4, 4, 0,
                    3e-7f);
    /* a large mean does not cancel the variance (two-pass statistics) */
    for (int i = 0; i < 4; i++)
        x4->data[i] += 1000.0f;
    tu_assert_close("layer_norm [1001..1004]", op_layer_norm(g, x4, one, zero, EPS)->data, want4, 4,
                    0, 1e-6f);
    graph_free(g);
    tu_leaf_free(x);
    tu_leaf_free(w);
    tu_leaf_free(b);
    tu_leaf_free(x4);
    tu_leaf_free(one);
    tu_leaf_free(zero);
}

/* A constant row has variance 0: eps keeps rstd finite, the output is b,
 * and the gradients are finite. */
static void test_constant_row(void **state) {
    tensor *x = tu_leaf(2, (int[]){2, 5}, true, 1, 7);
    tensor *w = tu_leaf(1, (int[]){5}, true, 1, 8), *b = tu_leaf(1, (int[]){5}, true, 1, 9);
    for (int i = 0; i < 5; i++)
        x->data[i] = 3.0f;
    graph *g = graph_create(1 << 14, 0);
    tensor *y = op_layer_norm(g, x, w, b, EPS);
    tu_assert_close("constant row", y->data, b->data, 5, 0, 0);
    for (int i = 0; i < 10; i++)
        y->grad[i] = 1.0f - 0.2f * (float)i;
    graph_backward_tape(g);
    for (int i = 0; i < 10; i++)
        assert_true(isfinite(x->grad[i]));
    for (int i = 0; i < 5; i++)
        assert_true(isfinite(w->grad[i]) && isfinite(b->grad[i]));
    graph_free(g);
    tu_leaf_free(x);
    tu_leaf_free(w);
    tu_leaf_free(b);
}

static void test_grads(void **state) {
    int shapes[2][3] = {{2, 3, 6}, {2, 2, 19}};
    for (int k = 0; k < 2; k++) {
        tensor *in[3] = {tu_leaf(3, shapes[k], true, 1, 10), tu_leaf(1, &shapes[k][2], true, 1, 11),
                         tu_leaf(1, &shapes[k][2], true, 1, 12)};
        tu_gradcheck("layer_norm", fwd_layer_norm, NULL, 3, in, H, ATOL, RTOL, 100);
        /* every subset of the inputs carrying a gradient, so each NULL path
         * of the backward runs */
        for (int mask = 1; mask < 7; mask++) {
            float *saved[3];
            for (int i = 0; i < 3; i++) {
                saved[i] = in[i]->grad;
                if (!(mask & (1 << i)))
                    in[i]->grad = NULL;
            }
            tu_gradcheck("layer_norm_subset", fwd_layer_norm, NULL, 3, in, H, ATOL, RTOL, 100);
            for (int i = 0; i < 3; i++)
                in[i]->grad = saved[i];
        }
        for (int i = 0; i < 3; i++)
            tu_leaf_free(in[i]);
    }
}

/* Backward adds into every grad: a second replay doubles them. */
static void test_grads_accumulate(void **state) {
    tensor *in[3] = {tu_leaf(2, (int[]){3, 10}, true, 1, 13), tu_leaf(1, (int[]){10}, true, 1, 14),
                     tu_leaf(1, (int[]){10}, true, 1, 15)};
    graph *g = graph_create(1 << 14, 0);
    tensor *y = fwd_layer_norm(g, in, NULL);
    for (int i = 0; i < 30; i++)
        y->grad[i] = 0.1f * (float)(i % 7) - 0.25f;
    graph_backward_tape(g);
    float once[3][30];
    for (int k = 0; k < 3; k++)
        for (int64_t i = 0; i < in[k]->numel; i++)
            once[k][i] = 2.0f * in[k]->grad[i];
    graph_backward_tape(g);
    tu_assert_close("dx twice", in[0]->grad, once[0], 30, 1e-6f, 1e-6f);
    tu_assert_close("dw twice", in[1]->grad, once[1], 10, 1e-6f, 1e-6f);
    tu_assert_close("db twice", in[2]->grad, once[2], 10, 1e-6f, 1e-6f);
    graph_free(g);
    for (int i = 0; i < 3; i++)
        tu_leaf_free(in[i]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_constant_row),
        cmocka_unit_test(test_grads),
        cmocka_unit_test(test_grads_accumulate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
