/* Values and finite-difference gradients of add, mul, scale, bias and
 * add_positions. Every op here is linear in each input, so central
 * differences (h = 1e-2) are exact up to the float rounding of the outputs:
 * tolerance atol 1e-3 + rtol 1e-3. Sizes are odd so that vector loop tails
 * run too. */
#include "testutil.h"

#include "core/ops.h"

#include <string.h>

#define H 1e-2f
#define ATOL 1e-3f
#define RTOL 1e-3f

typedef tensor *(*binary_fn)(graph *, tensor *, tensor *);

static tensor *fwd_binary(graph *g, tensor **in, void *user) {
    return ((binary_fn)user)(g, in[0], in[1]);
}
static tensor *fwd_square(graph *g, tensor **in, void *user) {
    return op_mul(g, in[0], in[0]);
}
static tensor *fwd_double(graph *g, tensor **in, void *user) {
    return op_add(g, in[0], in[0]);
}
static tensor *fwd_scale(graph *g, tensor **in, void *user) {
    return op_scale(g, in[0], *(float *)user);
}

static void set(tensor *t, const float *v) {
    memcpy(t->data, v, sizeof(float) * t->numel);
}

static void test_values(void **state) {
    tensor *a = tu_leaf(1, (int[]){3}, false, 1, 1), *b = tu_leaf(1, (int[]){3}, false, 1, 2);
    set(a, (float[]){1, 2, 3});
    set(b, (float[]){10, -20, 0.5f});
    graph *g = graph_create(1 << 14, 0);
    tu_assert_close("add", op_add(g, a, b)->data, (float[]){11, -18, 3.5f}, 3, 0, 0);
    tu_assert_close("mul", op_mul(g, a, b)->data, (float[]){10, -40, 1.5f}, 3, 0, 0);
    tu_assert_close("scale", op_scale(g, a, -0.5f)->data, (float[]){-0.5f, -1, -1.5f}, 3, 0, 0);
    tensor *x = tu_leaf(2, (int[]){2, 3}, false, 1, 3);
    set(x, (float[]){1, 2, 3, 4, 5, 6});
    tu_assert_close("bias", op_bias(g, x, b)->data, (float[]){11, -18, 3.5f, 14, -15, 6.5f}, 6, 0,
                    0);
    /* no input carries a gradient: no grad buffer, nothing on the tape */
    tensor *y = op_add(g, a, b);
    assert_null(y->grad);
    assert_int_equal(graph_tape_length(g), 0);
    graph_free(g);
    tu_leaf_free(a);
    tu_leaf_free(b);
    tu_leaf_free(x);
}

static void test_add_mul_grads(void **state) {
    tensor *in[2] = {tu_leaf(2, (int[]){3, 13}, true, 1, 1),
                     tu_leaf(2, (int[]){3, 13}, true, 1, 2)};
    tu_gradcheck("add", fwd_binary, (void *)op_add, 2, in, H, ATOL, RTOL, 100);
    tu_gradcheck("mul", fwd_binary, (void *)op_mul, 2, in, H, ATOL, RTOL, 100);
    /* the same tensor on both sides: both terms must reach it */
    tu_gradcheck("mul_self", fwd_square, NULL, 1, in, H, ATOL, RTOL, 100);
    tu_gradcheck("add_self", fwd_double, NULL, 1, in, H, ATOL, RTOL, 100);
    /* one side without a gradient */
    tensor *c = tu_leaf(2, (int[]){3, 13}, false, 1, 3);
    tensor *half[2] = {in[0], c};
    tu_gradcheck("add_one_side", fwd_binary, (void *)op_add, 2, half, H, ATOL, RTOL, 100);
    tu_gradcheck("mul_one_side", fwd_binary, (void *)op_mul, 2, half, H, ATOL, RTOL, 100);
    float s = -3.0f;
    tu_gradcheck("scale", fwd_scale, &s, 1, in, H, ATOL, RTOL, 100);
    tu_leaf_free(in[0]);
    tu_leaf_free(in[1]);
    tu_leaf_free(c);
}

static void test_bias(void **state) {
    tensor *in[2] = {tu_leaf(3, (int[]){2, 3, 11}, true, 1, 4),
                     tu_leaf(1, (int[]){11}, true, 1, 5)};
    tu_gradcheck("bias", fwd_binary, (void *)op_bias, 2, in, H, ATOL, RTOL, 100);
    graph *g = graph_create(1 << 14, 0);
    tensor *y = op_bias(g, in[0], in[1]);
    for (int r = 0; r < 6; r++)
        for (int i = 0; i < 11; i++)
            assert_true(y->data[r * 11 + i] == in[0]->data[r * 11 + i] + in[1]->data[i]);
    graph_free(g);
    tu_leaf_free(in[0]);
    tu_leaf_free(in[1]);
}

static void test_add_positions(void **state) {
    /* x (B=2, T=3, C=5), pos (Tmax=4, C): row 3 of pos is unused */
    tensor *x = tu_leaf(3, (int[]){2, 3, 5}, true, 1, 6),
           *pos = tu_leaf(2, (int[]){4, 5}, true, 1, 7);
    tensor *in[2] = {x, pos};
    tu_gradcheck("add_positions", fwd_binary, (void *)op_add_positions, 2, in, H, ATOL, RTOL, 100);
    for (int i = 15; i < 20; i++)
        assert_true(pos->grad[i] == 0.0f);
    graph *g = graph_create(1 << 14, 0);
    tensor *y = op_add_positions(g, x, pos);
    for (int b = 0; b < 2; b++)
        for (int t = 0; t < 3; t++)
            for (int c = 0; c < 5; c++) {
                int i = (b * 3 + t) * 5 + c;
                assert_true(y->data[i] == x->data[i] + pos->data[t * 5 + c]);
            }
    graph_free(g);
    /* fixed positions (no grad) */
    tensor *fixed = tu_leaf(2, (int[]){3, 5}, false, 1, 8);
    tensor *in2[2] = {x, fixed};
    tu_gradcheck("add_positions_fixed", fwd_binary, (void *)op_add_positions, 2, in2, H, ATOL, RTOL,
                 100);
    tu_leaf_free(x);
    tu_leaf_free(pos);
    tu_leaf_free(fixed);
}

/* Backward adds into input grads: replaying the tape a second time doubles
 * every gradient (a tensor used twice, or a second micro-batch, relies on
 * it). */
static void test_grads_accumulate(void **state) {
    tensor *x = tu_leaf(2, (int[]){3, 7}, true, 1, 9), *b = tu_leaf(1, (int[]){7}, true, 1, 10);
    binary_fn fns[3] = {op_add, op_mul, op_bias};
    for (int k = 0; k < 3; k++) {
        tensor *other = k == 2 ? b : x;
        memset(x->grad, 0, sizeof(float) * x->numel);
        memset(b->grad, 0, sizeof(float) * b->numel);
        graph *g = graph_create(1 << 14, 0);
        tensor *y = fns[k](g, x, other);
        for (int64_t i = 0; i < y->numel; i++)
            y->grad[i] = 0.25f * (float)(i % 5) - 0.5f;
        graph_backward_tape(g);
        float first_x[21], first_b[7];
        memcpy(first_x, x->grad, sizeof first_x);
        memcpy(first_b, b->grad, sizeof first_b);
        graph_backward_tape(g);
        for (int i = 0; i < 21; i++)
            first_x[i] *= 2.0f;
        for (int i = 0; i < 7; i++)
            first_b[i] *= 2.0f;
        tu_assert_close("dx twice", x->grad, first_x, 21, 1e-6f, 1e-6f);
        tu_assert_close("db twice", b->grad, first_b, 7, 1e-6f, 1e-6f);
        graph_free(g);
    }
    tu_leaf_free(x);
    tu_leaf_free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_add_mul_grads),
        cmocka_unit_test(test_bias),
        cmocka_unit_test(test_add_positions),
        cmocka_unit_test(test_grads_accumulate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
