/*
 * ops_norm.c - layer norm over the last dimension, with PyTorch's semantics:
 * biased variance, eps inside the square root.
 *
 * The forward saves mean and rstd per row in the arena, so the backward
 * (llm.c's layernorm_backward) reads them back instead of recomputing the
 * row statistics: one reduction over the row for the two means it needs,
 * then plain loops that write the three gradients while the row is in L1.
 *
 * Reductions run in 8 partial sums combined in a fixed order (core/lanes.h):
 * the result does not depend on the CPU's vector width.
 */
#include "core/ops.h"

#include "core/check.h"
#include "core/fastmath.h"
#include "core/lanes.h"

#include <math.h>

/* sum of (v - m)^2: two passes (mean first) rather than E[x^2] - m^2,
 * which cancels when |mean| >> std. */
static inline float lanes_sum_sq_dev(const float *v, float m, int n) {
    lanes8 s = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        lanes8 d;
        lanes8_load(&d, v + i);
        d -= m;
        s += d * d;
    }
    for (; i < n; i++) {
        float d = v[i] - m;
        s[0] += d * d;
    }
    return lanes8_sum(&s);
}

/* out (R, C) = (x - mean) * rstd * w + b; mean, rstd (R) saved when not
 * NULL (eval mode needs no backward). */
HEED_SIMD_CLONES static void layer_norm_forward(float *out, float *mean, float *rstd,
                                                const float *x, const float *w, const float *b,
                                                int64_t rows, int C, float eps) {
    float inv_c = 1.0f / (float)C;
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * C;
        float *o = out + r * C;
        float m = lanes8_row_sum(xr, C) * inv_c;
        float s = 1.0f / sqrtf(lanes_sum_sq_dev(xr, m, C) * inv_c + eps);
        for (int i = 0; i < C; i++)
            o[i] = (xr[i] - m) * s * w[i] + b[i];
        if (mean) {
            mean[r] = m;
            rstd[r] = s;
        }
    }
}

/* With n = (x - mean) rstd and dn = w dout (per row):
 *   dx (R, C) += rstd (dn - mean(dn) - n mean(dn n))  (= when !acc_dx)
 *   dw (C)    += sum over rows of n dout
 *   db (C)    += sum over rows of dout
 * Any of dx, dw, db may be NULL. */
HEED_SIMD_CLONES static void layer_norm_backward(float *dx, float *dw, float *db, const float *dout,
                                                 const float *x, const float *w, const float *mean,
                                                 const float *rstd, int64_t rows, int C,
                                                 bool acc_dx) {
    float inv_c = 1.0f / (float)C;
    for (int64_t r = 0; r < rows; r++) {
        const float *d = dout + r * C, *xr = x + r * C;
        float m = mean[r], s = rstd[r];
        if (db)
            for (int i = 0; i < C; i++)
                db[i] += d[i];
        if (dw)
            for (int i = 0; i < C; i++)
                dw[i] += (xr[i] - m) * s * d[i];
        if (!dx)
            continue;
        lanes8 sdn = {0}, sdnn = {0};
        int i = 0;
        for (; i + 8 <= C; i += 8) {
            lanes8 wv, dv, xv;
            lanes8_load(&wv, w + i);
            lanes8_load(&dv, d + i);
            lanes8_load(&xv, xr + i);
            lanes8 dn = wv * dv;
            sdn += dn;
            sdnn += dn * ((xv - m) * s);
        }
        for (; i < C; i++) {
            float dn = w[i] * d[i];
            sdn[0] += dn;
            sdnn[0] += dn * ((xr[i] - m) * s);
        }
        float dn_mean = lanes8_sum(&sdn) * inv_c;
        float dnn_mean = lanes8_sum(&sdnn) * inv_c;
        float *dxr = dx + r * C;
        if (acc_dx)
            for (i = 0; i < C; i++)
                dxr[i] += (w[i] * d[i] - dn_mean - (xr[i] - m) * s * dnn_mean) * s;
        else
            for (i = 0; i < C; i++)
                dxr[i] = (w[i] * d[i] - dn_mean - (xr[i] - m) * s * dnn_mean) * s;
    }
}

typedef struct layer_norm_ctx {
    tensor *out, *x, *w, *b;
    float *mean, *rstd; /* (R) */
    int64_t rows;
    int C;
} layer_norm_ctx;

static void layer_norm_backward_entry(void *p) {
    layer_norm_ctx *c = p;
    bool acc_dx = !graph_grad_claim(c->x);
    layer_norm_backward(c->x->grad, c->w->grad, c->b->grad, c->out->grad, c->x->data, c->w->data,
                        c->mean, c->rstd, c->rows, c->C, acc_dx);
}

tensor *op_layer_norm(graph *g, tensor *x, tensor *w, tensor *b, float eps) {
    HEED_ASSERT(x->ndim >= 1 && x->data && w->data && b->data);
    int C = tensor_cols(x);
    HEED_ASSERT(C > 0 && w->numel == C && b->numel == C);
    int64_t rows = tensor_rows(x);
    tensor *in[3] = {x, w, b};
    bool grad = graph_wants_grad(g, 3, in);
    tensor *out = graph_new_like(g, x, grad);
    float *mean = NULL, *rstd = NULL;
    if (grad) {
        /* + 1: a zero-row input still gets a valid pointer */
        arena *a = graph_arena(g);
        mean = arena_alloc(a, sizeof(float) * (size_t)(rows + 1));
        rstd = arena_alloc(a, sizeof(float) * (size_t)(rows + 1));
    }
    layer_norm_forward(out->data, mean, rstd, x->data, w->data, b->data, rows, C, eps);
    if (grad) {
        layer_norm_ctx *c = graph_record_claims(g, layer_norm_backward_entry, sizeof *c, 3, in, 1u);
        *c = (layer_norm_ctx){out, x, w, b, mean, rstd, rows, C};
    }
    return out;
}
