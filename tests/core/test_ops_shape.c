/* Concat, split and token selection. They only copy, so their gradients are
 * exact up to float rounding of the finite differences (h = 1e-2):
 * 1e-3 abs + 1e-3 rel. */
#include "testutil.h"

#include <string.h>

#include "core/ops.h"

static void fill_iota(tensor *t) {
    for (int64_t i = 0; i < t->numel; i++)
        t->data[i] = (float)i;
}

static void test_concat_values(void **state) {
    /* [[0,1],[2,3]] ++ [[0],[1]] along -1 -> [[0,1,0],[2,3,1]];
     * along 0 with (1, 2) [[0,1]] -> [[0,1],[2,3],[0,1]] */
    tensor *a = tu_leaf(2, (int[]){2, 2}, false, 1, 1), *b = tu_leaf(2, (int[]){2, 1}, false, 1, 2),
           *c = tu_leaf(2, (int[]){1, 2}, false, 1, 3);
    fill_iota(a);
    fill_iota(b);
    fill_iota(c);
    graph *g = graph_create(1 << 16, 0);
    tensor *y = op_concat(g, 2, (tensor *[]){a, b}, -1);
    assert_int_equal(y->shape[0], 2);
    assert_int_equal(y->shape[1], 3);
    assert_null(y->grad);
    tu_assert_close("concat -1", y->data, (float[]){0, 1, 0, 2, 3, 1}, 6, 0, 0);
    tensor *z = op_concat(g, 2, (tensor *[]){a, c}, 0);
    assert_int_equal(z->shape[0], 3);
    assert_int_equal(z->shape[1], 2);
    tu_assert_close("concat 0", z->data, (float[]){0, 1, 2, 3, 0, 1}, 6, 0, 0);
    graph_free(g);
    tu_leaf_free(a);
    tu_leaf_free(b);
    tu_leaf_free(c);
}

static tensor *fwd_concat(graph *g, tensor **in, void *user) {
    return op_concat(g, 3, in, *(int *)user);
}

/* Three parts of different sizes along each axis (and the same axis counted
 * from the end); the middle part has no grad, so it must be skipped. */
static void test_concat_grad(void **state) {
    for (int axis = -3; axis < 3; axis++) {
        int a = axis < 0 ? axis + 3 : axis;
        tensor *in[3];
        for (int k = 0; k < 3; k++) {
            int shape[3] = {2, 3, 4};
            shape[a] = k + 1;
            in[k] = tu_leaf(3, shape, k != 1, 1, 10 + k);
        }
        tu_gradcheck("concat", fwd_concat, &axis, 3, in, 1e-2f, 1e-3f, 1e-3f, 200);
        for (int k = 0; k < 3; k++)
            tu_leaf_free(in[k]);
    }
}

typedef struct split_case {
    int axis, n, part;
    const int *sizes;
} split_case;

static tensor *fwd_split_part(graph *g, tensor **in, void *user) {
    split_case *c = user;
    tensor *parts[4];
    op_split(g, in[0], c->axis, c->n, c->sizes, parts);
    return parts[c->part];
}

/* Each part alone: its gradient lands in its slice of x and nowhere else. */
static void test_split_grad(void **state) {
    const int sizes[3] = {1, 3, 2};
    for (int axis = -3; axis < 3; axis++) {
        int a = axis < 0 ? axis + 3 : axis;
        int shape[3] = {4, 3, 5};
        shape[a] = 6;
        for (int part = 0; part < 3; part++) {
            tensor *x = tu_leaf(3, shape, true, 1, 20);
            split_case c = {axis, 3, part, sizes};
            tu_gradcheck("split", fwd_split_part, &c, 1, &x, 1e-2f, 1e-3f, 1e-3f, 400);
            tu_leaf_free(x);
        }
    }
}

static tensor *fwd_split_concat(graph *g, tensor **in, void *user) {
    static const int sizes[3] = {2, 1, 3};
    tensor *parts[3];
    op_split(g, in[0], 1, 3, sizes, parts);
    return op_concat(g, 3, (tensor *[]){parts[2], parts[0], parts[1]}, 1);
}

static void test_split_concat_grad(void **state) {
    tensor *x = tu_leaf(3, (int[]){2, 6, 3}, true, 1, 21);
    tu_gradcheck("split+concat", fwd_split_concat, NULL, 1, &x, 1e-2f, 1e-3f, 1e-3f, 200);
    tu_leaf_free(x);
}

/* split then concat along the same axis gives x back bit for bit */
static void test_split_concat_round_trip(void **state) {
    const int sizes[4] = {2, 0, 1, 3};
    for (int axis = 0; axis < 4; axis++) {
        int shape[4] = {3, 2, 4, 5};
        shape[axis] = 6;
        tensor *x = tu_leaf(4, shape, false, 1, 30 + axis);
        graph *g = graph_create(1 << 16, 0);
        tensor *parts[4];
        op_split(g, x, axis, 4, sizes, parts);
        for (int k = 0; k < 4; k++) {
            assert_int_equal(parts[k]->shape[axis], sizes[k]);
            assert_null(parts[k]->grad);
        }
        tensor *y = op_concat(g, 4, parts, axis - 4);
        assert_true(tensor_same_shape(x, y));
        assert_memory_equal(x->data, y->data, sizeof(float) * x->numel);
        graph_free(g);
        tu_leaf_free(x);
    }
}

static void test_split_values(void **state) {
    /* (2, 3) iota split along 1 into (1, 2): [[0],[3]] and [[1,2],[4,5]] */
    tensor *x = tu_leaf(2, (int[]){2, 3}, false, 1, 1);
    fill_iota(x);
    graph *g = graph_create(1 << 16, 0);
    tensor *parts[2];
    op_split(g, x, -1, 2, (int[]){1, 2}, parts);
    tu_assert_close("split 0", parts[0]->data, (float[]){0, 3}, 2, 0, 0);
    tu_assert_close("split 1", parts[1]->data, (float[]){1, 2, 4, 5}, 4, 0, 0);
    graph_free(g);
    tu_leaf_free(x);
}

static tensor *fwd_select(graph *g, tensor **in, void *user) {
    return op_select_token(g, in[0], *(int *)user);
}

static void test_select_token(void **state) {
    int B = 2, T = 4, C = 3;
    tensor *x = tu_leaf(3, (int[]){B, T, C}, true, 1, 40);
    fill_iota(x);
    graph *g = graph_create(1 << 16, 0);
    tensor *y = op_select_token(g, x, 2);
    assert_int_equal(y->ndim, 2);
    assert_int_equal(y->shape[0], B);
    assert_int_equal(y->shape[1], C);
    tu_assert_close("select 2", y->data, (float[]){6, 7, 8, 18, 19, 20}, 6, 0, 0);
    tensor *last = op_select_token(g, x, -1);
    tu_assert_close("select -1", last->data, (float[]){9, 10, 11, 21, 22, 23}, 6, 0, 0);
    graph_free(g);
    for (int t = -1; t < T; t++)
        tu_gradcheck("select_token", fwd_select, &t, 1, &x, 1e-2f, 1e-3f, 1e-3f, 100);
    tu_leaf_free(x);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concat_values),     cmocka_unit_test(test_concat_grad),
        cmocka_unit_test(test_split_values),      cmocka_unit_test(test_split_grad),
        cmocka_unit_test(test_split_concat_grad), cmocka_unit_test(test_split_concat_round_trip),
        cmocka_unit_test(test_select_token),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
