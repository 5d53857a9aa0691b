/*
 * ops_norm.c - layer norm over the last dimension (PyTorch semantics:
 * biased variance, eps inside the square root).
 */
#include "core/ops.h"

#include "core/check.h"

#include <math.h>

typedef struct layer_norm_ctx {
    tensor *out, *x, *w, *b;
    float *mean, *rstd; /* (R) */
    int64_t rows;
    int C;
} layer_norm_ctx;

/* out (R, C) = (x - mean) * rstd * w + b; saves mean and rstd (R). */
static void layer_norm_forward(float *out, float *mean, float *rstd, const float *x, const float *w,
                               const float *b, int64_t rows, int C, float eps) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * C;
        float m = 0.0f;
        for (int i = 0; i < C; i++)
            m += xr[i];
        m /= C;
        float v = 0.0f;
        for (int i = 0; i < C; i++) {
            float d = xr[i] - m;
            v += d * d;
        }
        v /= C;
        float s = 1.0f / sqrtf(v + eps);
        float *o = out + r * C;
        for (int i = 0; i < C; i++)
            o[i] = (xr[i] - m) * s * w[i] + b[i];
        mean[r] = m;
        rstd[r] = s;
    }
}

static void layer_norm_backward(float *dx, float *dw, float *db, const float *dout, const float *x,
                                const float *w, const float *mean, const float *rstd, int64_t rows,
                                int C) {
    for (int64_t r = 0; r < rows; r++) {
        const float *d = dout + r * C, *xr = x + r * C;
        float m = mean[r], s = rstd[r];
        float dnorm_mean = 0.0f, dnorm_norm_mean = 0.0f;
        for (int i = 0; i < C; i++) {
            float norm = (xr[i] - m) * s;
            float dnorm = w[i] * d[i];
            dnorm_mean += dnorm;
            dnorm_norm_mean += dnorm * norm;
        }
        dnorm_mean /= C;
        dnorm_norm_mean /= C;
        for (int i = 0; i < C; i++) {
            float norm = (xr[i] - m) * s;
            if (db)
                db[i] += d[i];
            if (dw)
                dw[i] += norm * d[i];
            if (dx)
                dx[r * C + i] += (w[i] * d[i] - dnorm_mean - norm * dnorm_norm_mean) * s;
        }
    }
}

static void layer_norm_backward_entry(void *p) {
    layer_norm_ctx *c = p;
    layer_norm_backward(c->x->grad, c->w->grad, c->b->grad, c->out->grad, c->x->data, c->w->data,
                        c->mean, c->rstd, c->rows, c->C);
}

tensor *op_layer_norm(graph *g, tensor *x, tensor *w, tensor *b, float eps) {
    int C = tensor_cols(x);
    HEED_ASSERT(w->numel == C && b->numel == C);
    int64_t rows = tensor_rows(x);
    tensor *in[3] = {x, w, b};
    bool grad = graph_wants_grad(g, 3, in);
    tensor *out = graph_new_like(g, x, grad);
    arena *a = graph_arena(g);
    float *mean = arena_alloc(a, sizeof(float) * (rows + 1));
    float *rstd = arena_alloc(a, sizeof(float) * (rows + 1));
    layer_norm_forward(out->data, mean, rstd, x->data, w->data, b->data, rows, C, eps);
    if (grad) {
        layer_norm_ctx *c = graph_record(g, layer_norm_backward_entry, sizeof *c, 3, in);
        *c = (layer_norm_ctx){out, x, w, b, mean, rstd, rows, C};
    }
    return out;
}
