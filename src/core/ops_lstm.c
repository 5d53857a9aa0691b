/*
 * ops_lstm.c - one direction of an LSTM layer over a whole padded sequence
 * (contract in ops_rnn.h). PyTorch's cell, gate rows i, f, g, o:
 *   i = s(.), f = s(.), g = tanh(.), o = s(.)   of  W_ih x + b_ih + W_hh h + b_hh
 *   c' = f * c + i * g,  h' = o * tanh(c')
 */
#include "core/ops_rnn.h"

#include "core/check.h"
#include "core/ops_rnn_common.h"
#include "core/small_gemm.h"

#include <string.h>

typedef struct lstm_ctx {
    rnn_io io;      /* first: inputs, output, direction, sizes */
    float *gates;   /* (B, T, 4H) activated gates i, f, g, o */
    float *hprev;   /* (B, T, H) state h each step read */
    float *cprev;   /* (B, T, H) state c each step read */
    float *tanh_c;  /* (B, T, H) tanh of the new c */
    float *whh_t;   /* (H, 4H) w_hh transposed, for the forward */
    float *dgates;  /* (B, T, 4H) backward scratch: d(pre-activation) */
    float *dh, *dc; /* (B, H) backward scratch: gradient reaching the state */
} lstm_ctx;

/* One row of one step: the pre-activations gi, gf, gg, go (H each, the
 * row's 4H gates) become the activated gates, the state (c, h) moves on,
 * tc = tanh(c') and out = h'. The pointers are disjoint (restrict): gcc
 * vectorises the loop only when it knows that. */
HEED_SIMD_CLONES static void lstm_cell_forward(float *restrict gi, float *restrict gf,
                                               float *restrict gg, float *restrict go,
                                               float *restrict tc, const float *restrict c,
                                               float *restrict c_next, float *restrict h_next,
                                               float *restrict out, int H) {
    for (int j = 0; j < H; j++) {
        float ig = rnn_sigmoid(gi[j]), fg = rnn_sigmoid(gf[j]);
        float g = rnn_tanh(gg[j]), og = rnn_sigmoid(go[j]);
        gi[j] = ig;
        gf[j] = fg;
        gg[j] = g;
        go[j] = og;
        float cn = fg * c[j] + ig * g;
        float th = rnn_tanh(cn);
        tc[j] = th;
        c_next[j] = cn;
        h_next[j] = og * th;
        out[j] = og * th;
    }
}

/* Its backward: dg (4H) = d(pre-activations) from dout and the gradient
 * (dh, dc) reaching the state, with gt (4H) the activated gates; dc moves
 * one step back, dh is cleared for the recurrent product to refill. */
HEED_SIMD_CLONES static void lstm_cell_backward(float *restrict dg, float *restrict dc,
                                                float *restrict dh, const float *restrict gt,
                                                const float *restrict tc, const float *restrict cp,
                                                const float *restrict dout, int H) {
    for (int j = 0; j < H; j++) {
        float ig = gt[j], fg = gt[H + j], gg = gt[2 * H + j], og = gt[3 * H + j];
        float dht = dout[j] + dh[j];
        float dct = dc[j] + dht * og * (1.0f - tc[j] * tc[j]);
        dg[j] = dct * gg * ig * (1.0f - ig);
        dg[H + j] = dct * cp[j] * fg * (1.0f - fg);
        dg[2 * H + j] = dct * ig * (1.0f - gg * gg);
        dg[3 * H + j] = dht * tc[j] * og * (1.0f - og);
        dc[j] = dct * fg;
        dh[j] = 0.0f;
    }
}

/* Runs all steps; gates holds the input projection on entry. Each step's
 * new state goes straight into the next step's slot of hprev and cprev;
 * the last one into h and c. */
static void lstm_forward(lstm_ctx *k, float *out, float *h, float *c) {
    int B = k->io.d.B, T = k->io.d.T, H = k->io.d.H, H4 = 4 * H;
    bool rev = k->io.reverse;
    for (int b = 0; b < B; b++) {
        rnn_zero_first_state(k->hprev, T, H, rev, b);
        rnn_zero_first_state(k->cprev, T, H, rev, b);
    }
    for (int s = 0; s < T; s++) {
        int t = rev ? T - 1 - s : s;
        /* the first step reads the zero state: nothing to add */
        if (s > 0)
            small_gemm(false, B, H4, H, 1.0f, k->hprev + (size_t)t * H, T * H, k->whh_t, H4, true,
                       k->gates + (size_t)t * H4, T * H4);
        for (int b = 0; b < B; b++) {
            size_t bt = (size_t)b * T + t;
            float *o_bt = out + bt * H;
            float *h_next = rnn_next_state(k->hprev, h, T, H, rev, s, b);
            float *c_next = rnn_next_state(k->cprev, c, T, H, rev, s, b);
            if (!rnn_valid(k->io.valid, T, b, t)) {
                /* a padded step passes the state through */
                memset(o_bt, 0, sizeof(float) * H);
                memcpy(h_next, k->hprev + bt * H, sizeof(float) * H);
                memcpy(c_next, k->cprev + bt * H, sizeof(float) * H);
                continue;
            }
            float *gt = k->gates + bt * H4;
            lstm_cell_forward(gt, gt + H, gt + 2 * H, gt + 3 * H, k->tanh_c + bt * H,
                              k->cprev + bt * H, c_next, h_next, o_bt, H);
        }
    }
}

static void lstm_backward_entry(void *p) {
    lstm_ctx *k = p;
    int B = k->io.d.B, T = k->io.d.T, H = k->io.d.H, H4 = 4 * H;
    const float *dout = k->io.out->grad;
    memset(k->dh, 0, sizeof(float) * B * H);
    memset(k->dc, 0, sizeof(float) * B * H);
    for (int s = T - 1; s >= 0; s--) {
        int t = k->io.reverse ? T - 1 - s : s;
        for (int b = 0; b < B; b++) {
            size_t bt = (size_t)b * T + t;
            float *dg = k->dgates + bt * H4;
            /* a padded step passes the state through untouched, and its
             * output is the constant 0: dh and dc flow on unchanged */
            if (!rnn_valid(k->io.valid, T, b, t)) {
                memset(dg, 0, sizeof(float) * H4);
                continue;
            }
            lstm_cell_backward(dg, k->dc + (size_t)b * H, k->dh + (size_t)b * H, k->gates + bt * H4,
                               k->tanh_c + bt * H, k->cprev + bt * H, dout + bt * H, H);
        }
        /* dh (B, H) += dgates_t (B, 4H) @ w_hh (4H, H); the first step's
         * state is the constant 0 */
        if (s > 0)
            small_gemm(false, B, H, H4, 1.0f, k->dgates + (size_t)t * H4, T * H4, k->io.w_hh->data,
                       H, true, k->dh, H);
    }
    rnn_weight_grads(k->io.x->grad, k->io.w_ih->grad, k->io.b_ih->grad, k->io.w_hh->grad,
                     k->io.b_hh->grad, k->dgates, k->dgates, k->io.x->data, k->hprev,
                     k->io.w_ih->data, &k->io.d);
}

tensor *op_lstm(graph *g, tensor *x, const tensor *valid, tensor *w_ih, tensor *w_hh, tensor *b_ih,
                tensor *b_hh, bool reverse) {
    bool grad = false;
    rnn_io io = rnn_io_begin(g, x, valid, w_ih, w_hh, b_ih, b_hh, reverse, 4, &grad);
    rnn_dims d = io.d;
    tensor *in[5] = {x, w_ih, w_hh, b_ih, b_hh};
    arena *a = graph_arena(g);
    size_t nbth = sizeof(float) * d.B * d.T * d.H;
    lstm_ctx local = {.io = io};
    lstm_ctx *k = grad ? graph_record(g, lstm_backward_entry, sizeof *k, 5, in) : &local;
    *k = local;
    k->gates = arena_alloc(a, 4 * nbth);
    k->hprev = arena_alloc(a, nbth);
    k->cprev = arena_alloc(a, nbth);
    k->tanh_c = arena_alloc(a, nbth);
    k->whh_t = rnn_w_hh_transposed(g, w_hh, &d);
    float *h = arena_alloc(a, sizeof(float) * d.B * d.H);
    float *c = arena_alloc(a, sizeof(float) * d.B * d.H);
    if (grad) {
        k->dgates = arena_alloc(a, 4 * nbth);
        k->dh = h; /* the forward state is dead by the time backward runs */
        k->dc = c;
    }
    rnn_input_projection(k->gates, x->data, w_ih->data, b_ih->data, b_hh->data, &d);
    lstm_forward(k, io.out->data, h, c);
    return io.out;
}
