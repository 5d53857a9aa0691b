/* Finite-difference checks of linear, linear + GELU and matmul (tolerances:
 * float32 forward, central differences with h = 1e-2 on O(1) values: 2e-3
 * abs + 1e-2 rel), and op_linear_gelu against its plain twin, op_gelu of
 * op_linear: the same bits. */
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

typedef struct lg_case {
    gelu_kind kind;
    bool no_bias, fused;
} lg_case;

static tensor *fwd_linear_gelu(graph *g, tensor **in, void *user) {
    const lg_case *c = user;
    tensor *b = c->no_bias ? NULL : in[2];
    if (c->fused)
        return op_linear_gelu(g, in[0], in[1], b, c->kind);
    return op_gelu(g, op_linear(g, in[0], in[1], b), c->kind);
}

static void test_linear_gelu_grad(void **state) {
    tensor *in[3] = {tu_leaf(3, (int[]){2, 3, 5}, true, 1, 4),
                     tu_leaf(2, (int[]){4, 5}, true, 1, 5), tu_leaf(1, (int[]){4}, true, 1, 6)};
    for (int k = 0; k < 2; k++) {
        lg_case c = {k ? GELU_TANH : GELU_ERF, false, true};
        tu_gradcheck("linear_gelu", fwd_linear_gelu, &c, 3, in, 1e-2f, 2e-3f, 1e-2f, 200);
        c.no_bias = true;
        tu_gradcheck("linear_gelu_nobias", fwd_linear_gelu, &c, 2, in, 1e-2f, 2e-3f, 1e-2f, 200);
    }
    for (int i = 0; i < 3; i++)
        tu_leaf_free(in[i]);
}

/* Output, then the gradients of x, w and b (got[1..3], where they exist)
 * after a backward seeded with fixed weights; with `grad` false, no tape. */
static void run_linear_gelu(lg_case *c, tensor **in, bool grad, float **got) {
    for (int i = 0; i < 3; i++)
        if (in[i]->grad)
            memset(in[i]->grad, 0, sizeof(float) * in[i]->numel);
    graph *g = graph_create(1 << 20, 0);
    graph_set_grad(g, grad);
    tensor *out = fwd_linear_gelu(g, in, c);
    memcpy(got[0], out->data, sizeof(float) * out->numel);
    if (grad) {
        for (int64_t i = 0; i < out->numel; i++)
            out->grad[i] = 0.5f - 0.03f * (float)(i % 37);
        graph_backward_tape(g);
        for (int i = 0; i < 3; i++)
            if (in[i]->grad)
                memcpy(got[1 + i], in[i]->grad, sizeof(float) * in[i]->numel);
    }
    graph_free(g);
}

/* Rows of 2100 outputs: the fused forward works in blocks of 124 rows, so
 * 300 rows make three blocks, the last one short. */
static void compare_linear_gelu_with_twin(lg_case c, bool x_grad, bool grad) {
    int N = 300, C = 7, OC = 2100;
    tensor *in[3] = {tu_leaf(2, (int[]){N, C}, x_grad, 2, 11),
                     tu_leaf(2, (int[]){OC, C}, true, 1, 12), tu_leaf(1, (int[]){OC}, true, 1, 13)};
    float *fused[4], *plain[4];
    int64_t n[4] = {(int64_t)N * OC, in[0]->numel, in[1]->numel, in[2]->numel};
    for (int i = 0; i < 4; i++) {
        fused[i] = test_calloc(n[i], sizeof(float));
        plain[i] = test_calloc(n[i], sizeof(float));
    }
    c.fused = true;
    run_linear_gelu(&c, in, grad, fused);
    c.fused = false;
    run_linear_gelu(&c, in, grad, plain);
    static const char *what[] = {"out", "dx", "dw", "db"};
    for (int i = 0; i < 4; i++) {
        tu_assert_close(what[i], fused[i], plain[i], n[i], 0, 0);
        test_free(fused[i]);
        test_free(plain[i]);
    }
    for (int i = 0; i < 3; i++)
        tu_leaf_free(in[i]);
}

static void test_linear_gelu_matches_twin(void **state) {
    compare_linear_gelu_with_twin((lg_case){GELU_ERF, false, false}, true, true);
    compare_linear_gelu_with_twin((lg_case){GELU_TANH, false, false}, true, true);
    compare_linear_gelu_with_twin((lg_case){GELU_ERF, true, false}, false, true);
    compare_linear_gelu_with_twin((lg_case){GELU_TANH, false, false}, true, false);
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
        cmocka_unit_test(test_linear_values),    cmocka_unit_test(test_linear_grad),
        cmocka_unit_test(test_linear_gelu_grad), cmocka_unit_test(test_linear_gelu_matches_twin),
        cmocka_unit_test(test_matmul_grad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
