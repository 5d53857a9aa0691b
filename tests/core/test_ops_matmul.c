/* Finite-difference checks of linear and matmul (tolerances: float32 forward,
 * central differences with h = 1e-2 on O(1) values: 2e-3 abs + 1e-2 rel). */
#include "testutil.h"

#include <string.h>

#include "core/ops.h"

static tensor *fwd_linear(graph *g, tensor **in, void *user) {
    return op_linear(g, in[0], in[1], user ? NULL : in[2]);
}

static void test_linear_grad(void **state) {
    tensor *in[3] = {tu_leaf(3, (int[]){2, 3, 5}, true, 1, 1),
                     tu_leaf(2, (int[]){4, 5}, true, 1, 2), tu_leaf(1, (int[]){4}, true, 1, 3)};
    tu_gradcheck("linear", fwd_linear, NULL, 3, in, 1e-2f, 2e-3f, 1e-2f, 200);
    tu_gradcheck("linear_nobias", fwd_linear, (void *)1, 2, in, 1e-2f, 2e-3f, 1e-2f, 200);
    for (int i = 0; i < 3; i++)
        tu_leaf_free(in[i]);
}

static void test_linear_values(void **state) {
    /* x = [[1,2]], w = [[1,0],[0,1],[1,1]], b = [1,2,3] -> [2, 4, 6] */
    tensor *x = tu_leaf(2, (int[]){1, 2}, false, 1, 1), *w = tu_leaf(2, (int[]){3, 2}, false, 1, 1),
           *b = tu_leaf(1, (int[]){3}, false, 1, 1);
    float xv[] = {1, 2}, wv[] = {1, 0, 0, 1, 1, 1}, bv[] = {1, 2, 3}, want[] = {2, 4, 6};
    memcpy(x->data, xv, sizeof xv);
    memcpy(w->data, wv, sizeof wv);
    memcpy(b->data, bv, sizeof bv);
    graph *g = graph_create(1 << 16, 0);
    tensor *y = op_linear(g, x, w, b);
    assert_null(y->grad);
    tu_assert_close("linear", y->data, want, 3, 0, 0);
    graph_free(g);
    tu_leaf_free(x);
    tu_leaf_free(w);
    tu_leaf_free(b);
}

typedef struct mm_case {
    bool ta, tb;
} mm_case;

static tensor *fwd_matmul(graph *g, tensor **in, void *user) {
    mm_case *c = user;
    return op_matmul(g, in[0], in[1], c->ta, c->tb);
}

static void test_matmul_grad(void **state) {
    int M = 3, K = 4, N = 5;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            tensor *in[2] = {tu_leaf(3, ta ? (int[]){2, K, M} : (int[]){2, M, K}, true, 1, 7),
                             tu_leaf(3, tb ? (int[]){2, N, K} : (int[]){2, K, N}, true, 1, 8)};
            mm_case c = {ta, tb};
            tu_gradcheck("matmul", fwd_matmul, &c, 2, in, 1e-2f, 2e-3f, 1e-2f, 200);
            tu_leaf_free(in[0]);
            tu_leaf_free(in[1]);
        }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear_values),
        cmocka_unit_test(test_linear_grad),
        cmocka_unit_test(test_matmul_grad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
