/*
 * ops_embedding.c - token embeddings (a row gather) and fixed sinusoidal
 * positions.
 */
#include "core/ops.h"

#include "core/check.h"

#include <math.h>
#include <string.h>

/* ---- embedding -------------------------------------------------------- */

typedef struct embedding_ctx {
    tensor *out, *table;
    const tensor *ids;
    int N, C;
} embedding_ctx;

/* out (N, C) = table[ids[n]]; ids (N) index rows of table (V, C) */
static void embedding_forward(float *out, const int32_t *ids, const float *table, int N, int C) {
    for (int n = 0; n < N; n++)
        memcpy(out + (size_t)n * C, table + (size_t)ids[n] * C, sizeof(float) * C);
}

/* dtable (V, C) += dout (N, C) scattered by ids: rows no id names are never
 * touched, so their gradient stays exactly what it was (zero after
 * params_zero_grad), and the cost is O(N C), not O(V C). */
static void embedding_backward(float *dtable, const float *dout, const int32_t *ids, int N, int C) {
    for (int n = 0; n < N; n++) {
        float *drow = dtable + (size_t)ids[n] * C;
        const float *src = dout + (size_t)n * C;
        for (int c = 0; c < C; c++)
            drow[c] += src[c];
    }
}

static void embedding_backward_entry(void *p) {
    embedding_ctx *c = p;
    embedding_backward(c->table->grad, c->out->grad, c->ids->idata, c->N, c->C);
}

tensor *op_embedding(graph *g, const tensor *ids, tensor *table) {
    HEED_ASSERT(ids->dtype == DTYPE_I32 && ids->ndim < TENSOR_MAX_DIMS);
    HEED_ASSERT(table->ndim == 2);
    int V = table->shape[0], C = table->shape[1];
    int N = (int)ids->numel;
    /* An id outside the table would read (and in backward write) foreign
     * memory; one pass over N ints costs nothing next to N rows of C. */
    for (int n = 0; n < N; n++)
        HEED_ASSERT(ids->idata[n] >= 0 && ids->idata[n] < V);
    int shape[TENSOR_MAX_DIMS];
    memcpy(shape, ids->shape, sizeof(int) * ids->ndim);
    shape[ids->ndim] = C;
    tensor *in[1] = {table};
    bool grad = graph_wants_grad(g, 1, in);
    tensor *out = graph_new(g, DTYPE_F32, ids->ndim + 1, shape, grad);
    embedding_forward(out->data, ids->idata, table->data, N, C);
    if (grad) {
        embedding_ctx *c = graph_record(g, embedding_backward_entry, sizeof *c, 1, in);
        *c = (embedding_ctx){out, table, ids, N, C};
    }
    return out;
}

/* ---- sinusoidal positions --------------------------------------------- */

/* pe (T, C): pe[t, 2i] = sin(t w_i), pe[t, 2i+1] = cos(t w_i) with
 * w_i = 10000^(-2i/C). Row t+1 is row t rotated by the angles w_i, so one
 * complex multiply per pair replaces T*C libm calls (milliseconds per step at
 * BERT sizes). In double the rotation drifts by about T * 1e-16, far below
 * float resolution. scratch holds 4 * ceil(C/2) doubles. */
static void sinusoidal_forward(float *pe, double *scratch, int T, int C) {
    int P = (C + 1) / 2, full = C / 2; /* pairs; pairs with a cos column */
    double *cw = scratch, *sw = scratch + P, *s = scratch + 2 * P, *c = scratch + 3 * P;
    for (int i = 0; i < P; i++) {
        double w = pow(10000.0, -2.0 * i / C);
        cw[i] = cos(w);
        sw[i] = sin(w);
        s[i] = 0.0;
        c[i] = 1.0;
    }
    for (int t = 0; t < T; t++) {
        float *row = pe + (size_t)t * C;
        for (int i = 0; i < full; i++) {
            row[2 * i] = (float)s[i];
            row[2 * i + 1] = (float)c[i];
        }
        if (full < P) /* odd C: the last column is a lone sin */
            row[C - 1] = (float)s[full];
        for (int i = 0; i < P; i++) {
            double si = s[i];
            s[i] = si * cw[i] + c[i] * sw[i];
            c[i] = c[i] * cw[i] - si * sw[i];
        }
    }
}

tensor *sinusoidal_positions(graph *g, int T, int C) {
    HEED_ASSERT(T >= 0 && C > 0);
    tensor *pe = graph_new(g, DTYPE_F32, 2, (int[]){T, C}, false);
    double *scratch = arena_alloc(graph_arena(g), sizeof(double) * 4 * (size_t)((C + 1) / 2));
    sinusoidal_forward(pe->data, scratch, T, C);
    return pe;
}
