/* Finite-difference gradient checks of the LSTM and GRU ops (ops_rnn.h) in
 * both directions over a padded batch, of the stacked bidirectional block,
 * and the packed-sequence contract: padded positions output 0, get no
 * gradient, and whatever they hold does not change the real outputs. */
#include "testutil.h"

#include "core/ops_rnn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define H_STEP 1e-2f
#define ATOL 2e-3f
#define RTOL 1e-2f

enum { B = 3, T = 5, C = 4, HID = 3 };

/* lengths 5, 3, 1: right padding, as the dataset stores it */
static tensor *make_valid(void) {
    static const int len[B] = {5, 3, 1};
    tensor *v = tu_leaf_i32(2, (int[]){B, T}, 0, 1, 0);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            v->idata[b * T + t] = t < len[b];
    return v;
}

typedef struct rnn_case {
    bool gru, reverse;
    const tensor *valid;
} rnn_case;

static tensor *fwd_rnn(graph *g, tensor **in, void *user) {
    rnn_case *c = user;
    return c->gru ? op_gru(g, in[0], c->valid, in[1], in[2], in[3], in[4], c->reverse)
                  : op_lstm(g, in[0], c->valid, in[1], in[2], in[3], in[4], c->reverse);
}

static void check_cell(bool gru) {
    int G = gru ? 3 : 4;
    tensor *valid = make_valid();
    tensor *in[5] = {
        tu_leaf(3, (int[]){B, T, C}, true, 1, 1),
        tu_leaf(2, (int[]){G * HID, C}, true, 0.7f, 2),
        tu_leaf(2, (int[]){G * HID, HID}, true, 0.7f, 3),
        tu_leaf(1, (int[]){G * HID}, true, 0.5f, 4),
        tu_leaf(1, (int[]){G * HID}, true, 0.5f, 5),
    };
    for (int rev = 0; rev < 2; rev++) {
        for (int masked = 0; masked < 2; masked++) {
            rnn_case c = {gru, rev, masked ? valid : NULL};
            char name[64];
            snprintf(name, sizeof name, "%s%s%s", gru ? "gru" : "lstm", rev ? "_reverse" : "",
                     masked ? "_padded" : "");
            tu_gradcheck(name, fwd_rnn, &c, 5, in, H_STEP, ATOL, RTOL, 200);
        }
    }
    /* padded x positions get no gradient, padded outputs are 0, and the
     * padded inputs' values do not reach the real outputs */
    for (int rev = 0; rev < 2; rev++) {
        graph *g = graph_create(1 << 16, 0);
        rnn_case c = {gru, rev, valid};
        memset(in[0]->grad, 0, sizeof(float) * in[0]->numel);
        tensor *out = fwd_rnn(g, in, &c);
        for (int64_t i = 0; i < out->numel; i++)
            out->grad[i] = 1.0f;
        graph_backward_tape(g);
        float *keep = malloc(sizeof(float) * out->numel);
        memcpy(keep, out->data, sizeof(float) * out->numel);
        float *xsave = malloc(sizeof(float) * in[0]->numel);
        memcpy(xsave, in[0]->data, sizeof(float) * in[0]->numel);
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) {
                bool real = valid->idata[b * T + t];
                for (int j = 0; j < HID; j++)
                    if (!real)
                        assert_true(keep[(b * T + t) * HID + j] == 0.0f);
                for (int j = 0; j < C; j++) {
                    float *xg = &in[0]->grad[(b * T + t) * C + j];
                    if (!real) {
                        assert_true(*xg == 0.0f);
                        in[0]->data[(b * T + t) * C + j] = 100.0f;
                    }
                }
            }
        graph_reset(g);
        graph_set_grad(g, false);
        tensor *out2 = fwd_rnn(g, in, &c);
        tu_assert_close("padding does not leak", out2->data, keep, out->numel, 0.0f, 0.0f);
        memcpy(in[0]->data, xsave, sizeof(float) * in[0]->numel);
        free(keep);
        free(xsave);
        graph_free(g);
    }
    for (int i = 0; i < 5; i++)
        tu_leaf_free(in[i]);
    tu_leaf_free(valid);
}

static void test_lstm_grads(void **state) {
    (void)state;
    check_cell(false);
}

static void test_gru_grads(void **state) {
    (void)state;
    check_cell(true);
}

typedef struct stack_case {
    params *ps;
    rnn_stack *s;
    const tensor *valid;
} stack_case;

static tensor *fwd_stack(graph *g, tensor **in, void *user) {
    stack_case *c = user;
    return rnn_stack_forward(g, c->s, in[0], c->valid);
}

/* Two bidirectional layers: the x gradient and every parameter's, by
 * finite differences through the whole block. */
static void check_stack(rnn_cell cell) {
    params ps;
    params_init(&ps);
    rnn_stack s;
    rnn_stack_init(&s, &ps, "rnn", cell, C, HID, 2, true, 0.0f);
    params_alloc(&ps, 7);
    assert_non_null(params_find(&ps, "rnn.weight_hh_l1_reverse"));
    tensor *valid = make_valid();
    tensor *in[1 + 16];
    in[0] = tu_leaf(3, (int[]){B, T, C}, true, 1, 9);
    for (int i = 0; i < ps.count; i++)
        in[1 + i] = ps.tensors[i];
    stack_case c = {&ps, &s, valid};
    tu_gradcheck(cell == RNN_CELL_LSTM ? "lstm_stack" : "gru_stack", fwd_stack, &c, 1 + ps.count,
                 in, H_STEP, ATOL, RTOL, 60);
    graph *g = graph_create(1 << 16, 0);
    tensor *out = rnn_stack_forward(g, &s, in[0], valid);
    assert_int_equal(out->shape[2], 2 * HID);
    graph_free(g);
    tu_leaf_free(in[0]);
    tu_leaf_free(valid);
    params_free(&ps);
}

static void test_stack_grads(void **state) {
    (void)state;
    check_stack(RNN_CELL_LSTM);
    check_stack(RNN_CELL_GRU);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lstm_grads),
        cmocka_unit_test(test_gru_grads),
        cmocka_unit_test(test_stack_grads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
