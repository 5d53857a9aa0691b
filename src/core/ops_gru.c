/*
 * ops_gru.c - one direction of a GRU layer over a whole padded sequence
 * (contract in ops_rnn.h). PyTorch's cell, gate rows r, z, n:
 *   r = s(W_ir x + b_ir + W_hr h + b_hr),  z = s(W_iz x + b_iz + W_hz h + b_hz)
 *   n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),  h' = (1 - z) * n + z * h
 * b_hn sits inside the product with r, so the recurrent projection keeps its
 * own bias and is saved (its n part) for backward.
 */
#include "core/ops_rnn.h"

#include "core/check.h"
#include "core/ops_rnn_common.h"
#include "core/small_gemm.h"

#include <string.h>

typedef struct gru_ctx {
    rnn_io io;    /* first: inputs, output, direction, sizes */
    float *gates; /* (B, T, 3H) activated gates r, z, n */
    float *hn;    /* (B, T, H) W_hn h + b_hn of each step */
    float *hprev; /* (B, T, H) state h each step read */
    float *hp;    /* (B, 3H) forward scratch: W_hh h + b_hh of one step */
    float *whh_t; /* (H, 3H) w_hh transposed, for the forward */
    float *dgi;   /* (B, T, 3H) backward: d(input projection) */
    float *dgh;   /* (B, T, 3H) backward: d(recurrent projection) */
    float *dh;    /* (B, H) backward: gradient reaching the state */
} gru_ctx;

/* One row of one step: gr, gz, gn (H each, the row's 3H gates) hold the
 * input projection and become the activated gates, hp (3H) the recurrent
 * projection (its n part is kept in hn), the state h moves on and out = h'.
 * The pointers are disjoint (restrict): gcc vectorises the loop only when it
 * knows that. */
HEED_SIMD_CLONES static void gru_cell_forward(float *restrict gr, float *restrict gz,
                                              float *restrict gn, float *restrict hn,
                                              const float *restrict h, float *restrict h_next,
                                              float *restrict out, const float *restrict hp,
                                              int H) {
    for (int j = 0; j < H; j++) {
        float r = rnn_sigmoid(gr[j] + hp[j]);
        float z = rnn_sigmoid(gz[j] + hp[H + j]);
        float n = rnn_tanh(gn[j] + r * hp[2 * H + j]);
        gr[j] = r;
        gz[j] = z;
        gn[j] = n;
        hn[j] = hp[2 * H + j];
        float hj = (1.0f - z) * n + z * h[j];
        h_next[j] = hj;
        out[j] = hj;
    }
}

/* Its backward: dgi, dgh (3H) = d(input projection), d(recurrent
 * projection) from dout and the gradient dh reaching the state, with gt (3H)
 * the activated gates; dh moves one step back (the recurrent product adds
 * the rest). */
HEED_SIMD_CLONES static void gru_cell_backward(float *restrict dgi, float *restrict dgh,
                                               float *restrict dh, const float *restrict gt,
                                               const float *restrict hn,
                                               const float *restrict hprev,
                                               const float *restrict dout, int H) {
    for (int j = 0; j < H; j++) {
        float r = gt[j], z = gt[H + j], n = gt[2 * H + j];
        float dht = dout[j] + dh[j];
        float dpn = dht * (1.0f - z) * (1.0f - n * n);
        float dpr = dpn * hn[j] * r * (1.0f - r);
        float dpz = dht * (hprev[j] - n) * z * (1.0f - z);
        dgi[j] = dpr;
        dgh[j] = dpr;
        dgi[H + j] = dpz;
        dgh[H + j] = dpz;
        dgi[2 * H + j] = dpn;
        dgh[2 * H + j] = dpn * r;
        dh[j] = dht * z;
    }
}

/* Runs all steps; gates holds the input projection on entry. Each step's
 * new state goes straight into the next step's slot of hprev; the last one
 * into h. */
static void gru_forward(gru_ctx *k, float *out, float *h) {
    int B = k->io.d.B, T = k->io.d.T, H = k->io.d.H, H3 = 3 * H;
    bool rev = k->io.reverse;
    for (int b = 0; b < B; b++)
        rnn_zero_first_state(k->hprev, T, H, rev, b);
    for (int s = 0; s < T; s++) {
        int t = rev ? T - 1 - s : s;
        for (int b = 0; b < B; b++)
            memcpy(k->hp + (size_t)b * H3, k->io.b_hh->data, sizeof(float) * H3);
        if (s > 0)
            small_gemm(false, B, H3, H, 1.0f, k->hprev + (size_t)t * H, T * H, k->whh_t, H3, true,
                       k->hp, H3);
        for (int b = 0; b < B; b++) {
            size_t bt = (size_t)b * T + t;
            float *o_bt = out + bt * H;
            float *h_next = rnn_next_state(k->hprev, h, T, H, rev, s, b);
            if (!rnn_valid(k->io.valid, T, b, t)) {
                /* a padded step passes the state through */
                memset(o_bt, 0, sizeof(float) * H);
                memcpy(h_next, k->hprev + bt * H, sizeof(float) * H);
                continue;
            }
            float *gt = k->gates + bt * H3;
            gru_cell_forward(gt, gt + H, gt + 2 * H, k->hn + bt * H, k->hprev + bt * H, h_next,
                             o_bt, k->hp + (size_t)b * H3, H);
        }
    }
}

static void gru_backward_entry(void *p) {
    gru_ctx *k = p;
    int B = k->io.d.B, T = k->io.d.T, H = k->io.d.H, H3 = 3 * H;
    const float *dout = k->io.out->grad;
    memset(k->dh, 0, sizeof(float) * B * H);
    for (int s = T - 1; s >= 0; s--) {
        int t = k->io.reverse ? T - 1 - s : s;
        for (int b = 0; b < B; b++) {
            size_t bt = (size_t)b * T + t;
            float *dgi = k->dgi + bt * H3, *dgh = k->dgh + bt * H3;
            /* padded: the state passes through, dh flows on unchanged */
            if (!rnn_valid(k->io.valid, T, b, t)) {
                memset(dgi, 0, sizeof(float) * H3);
                memset(dgh, 0, sizeof(float) * H3);
                continue;
            }
            gru_cell_backward(dgi, dgh, k->dh + (size_t)b * H, k->gates + bt * H3, k->hn + bt * H,
                              k->hprev + bt * H, dout + bt * H, H);
        }
        if (s > 0)
            small_gemm(false, B, H, H3, 1.0f, k->dgh + (size_t)t * H3, T * H3, k->io.w_hh->data, H,
                       true, k->dh, H);
    }
    rnn_weight_grads(k->io.x->grad, k->io.w_ih->grad, k->io.b_ih->grad, k->io.w_hh->grad,
                     k->io.b_hh->grad, k->dgi, k->dgh, k->io.x->data, k->hprev, k->io.w_ih->data,
                     &k->io.d);
}

tensor *op_gru(graph *g, tensor *x, const tensor *valid, tensor *w_ih, tensor *w_hh, tensor *b_ih,
               tensor *b_hh, bool reverse) {
    bool grad = false;
    rnn_io io = rnn_io_begin(g, x, valid, w_ih, w_hh, b_ih, b_hh, reverse, 3, &grad);
    rnn_dims d = io.d;
    tensor *in[5] = {x, w_ih, w_hh, b_ih, b_hh};
    arena *a = graph_arena(g);
    size_t nbth = sizeof(float) * d.B * d.T * d.H;
    gru_ctx local = {.io = io};
    gru_ctx *k = grad ? graph_record(g, gru_backward_entry, sizeof *k, 5, in) : &local;
    *k = local;
    k->gates = arena_alloc(a, 3 * nbth);
    k->hn = arena_alloc(a, nbth);
    k->hprev = arena_alloc(a, nbth);
    k->hp = arena_alloc(a, sizeof(float) * d.B * 3 * d.H);
    k->whh_t = rnn_w_hh_transposed(g, w_hh, &d);
    float *h = arena_alloc(a, sizeof(float) * d.B * d.H);
    if (grad) {
        k->dgi = arena_alloc(a, 3 * nbth);
        k->dgh = arena_alloc(a, 3 * nbth);
        k->dh = h; /* the forward state is dead by the time backward runs */
    }
    rnn_input_projection(k->gates, x->data, w_ih->data, b_ih->data, NULL, &d);
    gru_forward(k, io.out->data, h);
    return io.out;
}
