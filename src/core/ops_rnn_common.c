/*
 * ops_rnn_common.c - shape checks, input projection and weight gradients
 * shared by the LSTM and GRU ops.
 */
#include "core/ops_rnn_common.h"

#include "core/check.h"

#include "core/small_gemm.h"

#include <cblas.h>
#include <string.h>

rnn_dims rnn_check_dims(const tensor *x, const tensor *valid, const tensor *w_ih,
                        const tensor *w_hh, const tensor *b_ih, const tensor *b_hh, int G) {
    HEED_ASSERT(x->ndim == 3 && x->dtype == DTYPE_F32);
    rnn_dims d = {.B = x->shape[0], .T = x->shape[1], .C = x->shape[2], .G = G};
    HEED_ASSERT(w_hh->ndim == 2 && w_hh->shape[0] % G == 0);
    d.H = w_hh->shape[0] / G;
    HEED_ASSERT(w_hh->shape[1] == d.H);
    HEED_ASSERT(w_ih->ndim == 2 && w_ih->shape[0] == G * d.H && w_ih->shape[1] == d.C);
    HEED_ASSERT(b_ih->ndim == 1 && b_ih->shape[0] == G * d.H);
    HEED_ASSERT(b_hh->ndim == 1 && b_hh->shape[0] == G * d.H);
    HEED_ASSERT(!valid || (valid->dtype == DTYPE_I32 && valid->ndim == 2 &&
                           valid->shape[0] == d.B && valid->shape[1] == d.T));
    return d;
}

rnn_io rnn_io_begin(graph *g, tensor *x, const tensor *valid, tensor *w_ih, tensor *w_hh,
                    tensor *b_ih, tensor *b_hh, bool reverse, int G, bool *grad) {
    rnn_dims d = rnn_check_dims(x, valid, w_ih, w_hh, b_ih, b_hh, G);
    tensor *in[5] = {x, w_ih, w_hh, b_ih, b_hh};
    *grad = graph_wants_grad(g, 5, in);
    tensor *out = graph_new(g, DTYPE_F32, 3, (int[]){d.B, d.T, d.H}, *grad);
    return (rnn_io){.out = out,
                    .x = x,
                    .w_ih = w_ih,
                    .w_hh = w_hh,
                    .b_ih = b_ih,
                    .b_hh = b_hh,
                    .valid = valid ? valid->idata : NULL,
                    .reverse = reverse,
                    .d = d};
}

void rnn_input_projection(float *xp, const float *x, const float *w_ih, const float *b1,
                          const float *b2, const rnn_dims *d) {
    int N = d->B * d->T, GH = d->G * d->H;
    for (int n = 0; n < N; n++) {
        float *row = xp + (size_t)n * GH;
        if (b2) {
            for (int j = 0; j < GH; j++)
                row[j] = b1[j] + b2[j];
        } else {
            memcpy(row, b1, sizeof(float) * GH);
        }
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, GH, d->C, 1.0f, x, d->C, w_ih, d->C,
                1.0f, xp, GH);
}

static void column_sums(float *db, const float *m, int N, int cols) {
    for (int n = 0; n < N; n++) {
        const float *row = m + (size_t)n * cols;
        for (int j = 0; j < cols; j++)
            db[j] += row[j];
    }
}

void rnn_weight_grads(float *dx, float *dw_ih, float *db_ih, float *dw_hh, float *db_hh,
                      const float *dgi, const float *dgh, const float *x, const float *hprev,
                      const float *w_ih, const rnn_dims *d) {
    int N = d->B * d->T, GH = d->G * d->H, C = d->C, H = d->H;
    if (dx)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, GH, 1.0f, dgi, GH, w_ih, C,
                    1.0f, dx, C);
    if (dw_ih)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, GH, C, N, 1.0f, dgi, GH, x, C, 1.0f,
                    dw_ih, C);
    if (db_ih)
        column_sums(db_ih, dgi, N, GH);
    if (dw_hh)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, GH, H, N, 1.0f, dgh, GH, hprev, H,
                    1.0f, dw_hh, H);
    if (db_hh)
        column_sums(db_hh, dgh, N, GH);
}

float *rnn_w_hh_transposed(graph *g, const tensor *w_hh, const rnn_dims *d) {
    int GH = d->G * d->H;
    float *t = arena_alloc(graph_arena(g), sizeof(float) * (size_t)GH * d->H);
    small_transpose(t, w_hh->data, GH, d->H, d->H);
    return t;
}
