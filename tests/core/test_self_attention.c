/* op_self_attention (q, k, v projections fused into one sgemm) against its
 * plain twin, three op_linear and op_attention: same output, probabilities
 * and gradients of x, weights and biases, with a key-padding mask, attention
 * dropout in training mode, odd sizes (T not a multiple of 8) and a missing
 * bias; and finite differences on the fused op itself. */
#include "testutil.h"

#include "core/ops.h"

#include <math.h>
#include <string.h>

enum { N_IN = 7 }; /* x, wq, wk, wv, bq, bk, bv */

typedef struct sa_case {
    int B, T, C, NH;
    tensor *mask; /* (B, T) additive, or NULL */
    float p_drop;
    bool no_bias_k; /* bk NULL */
    bool fused;
} sa_case;

static tensor *fwd(graph *g, tensor **in, void *user) {
    sa_case *c = user;
    int64_t ids[8] = {20, 21, 22, 23, 24, 25, 26, 27};
    graph_begin_step(g, 3, 4, ids, c->B);
    tensor *b1 = c->no_bias_k ? NULL : in[5];
    if (c->fused) {
        tensor *w[3] = {in[1], in[2], in[3]};
        tensor *b[3] = {in[4], b1, in[6]};
        return op_self_attention(g, in[0], w, b, c->mask, c->NH, c->p_drop, NULL);
    }
    tensor *q = op_linear(g, in[0], in[1], in[4]);
    tensor *k = op_linear(g, in[0], in[2], b1);
    tensor *v = op_linear(g, in[0], in[3], in[6]);
    return op_attention(g, q, k, v, c->mask, c->NH, c->p_drop, NULL);
}

static void make_inputs(tensor **in, const sa_case *c) {
    in[0] = tu_leaf(3, (int[]){c->B, c->T, c->C}, true, 1, 41);
    for (int j = 0; j < 3; j++) {
        in[1 + j] = tu_leaf(2, (int[]){c->C, c->C}, true, 0.5f, 42 + j);
        in[4 + j] = tu_leaf(1, (int[]){c->C}, true, 0.5f, 45 + j);
    }
}

/* Output, then every input gradient after a backward seeded with weights r,
 * into got[0..N_IN] (got[0]: output). */
static void run(sa_case *c, tensor **in, bool fused, float **got) {
    c->fused = fused;
    for (int i = 0; i < N_IN; i++)
        memset(in[i]->grad, 0, sizeof(float) * in[i]->numel);
    graph *g = graph_create(1 << 16, 0);
    graph_set_training(g, c->p_drop > 0.0f);
    tensor *out = fwd(g, in, c);
    for (int64_t i = 0; i < out->numel; i++)
        out->grad[i] = 0.5f - 0.03f * (float)(i % 37);
    graph_backward_tape(g);
    memcpy(got[0], out->data, sizeof(float) * out->numel);
    for (int i = 0; i < N_IN; i++)
        memcpy(got[1 + i], in[i]->grad, sizeof(float) * in[i]->numel);
    graph_free(g);
}

static void compare_with_twin(sa_case *c) {
    tensor *in[N_IN];
    make_inputs(in, c);
    int64_t n[1 + N_IN] = {in[0]->numel};
    for (int i = 0; i < N_IN; i++)
        n[1 + i] = in[i]->numel;
    float *fused[1 + N_IN], *plain[1 + N_IN];
    for (int i = 0; i <= N_IN; i++) {
        fused[i] = test_malloc(sizeof(float) * n[i]);
        plain[i] = test_malloc(sizeof(float) * n[i]);
    }
    run(c, in, true, fused);
    run(c, in, false, plain);
    static const char *what[] = {"out", "dx", "dwq", "dwk", "dwv", "dbq", "dbk", "dbv"};
    for (int i = 0; i <= N_IN; i++) {
        tu_assert_close(what[i], fused[i], plain[i], n[i], 1e-6f, 1e-5f);
        test_free(fused[i]);
        test_free(plain[i]);
    }
    for (int i = 0; i < N_IN; i++)
        tu_leaf_free(in[i]);
}

static void test_self_attention_matches_twin(void **state) {
    sa_case c = {.B = 2, .T = 5, .C = 8, .NH = 2};
    compare_with_twin(&c);
}

static void test_self_attention_masked_dropout_matches_twin(void **state) {
    sa_case c = {.B = 3, .T = 11, .C = 12, .NH = 3, .p_drop = 0.25f, .no_bias_k = true};
    c.mask = tu_leaf(2, (int[]){3, 11}, false, 0, 1);
    for (int i = 0; i < 33; i++)
        c.mask->data[i] =
            (i / 11 == 1 && i % 11 >= 7) || (i / 11 == 2 && i % 11 >= 2) ? -INFINITY : 0.0f;
    compare_with_twin(&c);
    tu_leaf_free(c.mask);
}

static void test_self_attention_grad(void **state) {
    sa_case c = {.B = 2, .T = 4, .C = 8, .NH = 2, .fused = true};
    c.mask = tu_leaf(2, (int[]){2, 4}, false, 0, 2);
    c.mask->data[7] = -INFINITY;
    tensor *in[N_IN];
    make_inputs(in, &c);
    tu_gradcheck("self_attention", fwd, &c, N_IN, in, 1e-2f, 2e-3f, 1e-2f, 200);
    for (int i = 0; i < N_IN; i++)
        tu_leaf_free(in[i]);
    tu_leaf_free(c.mask);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_self_attention_matches_twin),
        cmocka_unit_test(test_self_attention_masked_dropout_matches_twin),
        cmocka_unit_test(test_self_attention_grad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
