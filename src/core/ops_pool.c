/*
 * ops_pool.c - pooling over tokens: masked mean and weighted sum.
 */
#include "core/ops.h"

#include "core/check.h"

#include <cblas.h>
#include <string.h>

/* ---- masked mean ------------------------------------------------------- */

typedef struct masked_mean_ctx {
    tensor *out, *x;
    const tensor *valid;
    int B, T, C;
} masked_mean_ctx;

/* 1 / (number of valid tokens of row b), or 0 for a row without any, so the
 * empty row's output and gradient are zeros rather than NaN. */
static float inv_valid_count(const int32_t *valid_b, int T) {
    if (!valid_b)
        return T > 0 ? 1.0f / (float)T : 0.0f;
    int n = 0;
    for (int t = 0; t < T; t++)
        n += valid_b[t] != 0;
    return n > 0 ? 1.0f / (float)n : 0.0f;
}

/* out (B, C) = mean over t with valid[b, t] != 0 of x (B, T, C); valid (B, T)
 * or NULL for all tokens. */
static void masked_mean_forward(float *out, const float *x, const int32_t *valid, int B, int T,
                                int C) {
    for (int b = 0; b < B; b++) {
        const int32_t *valid_b = valid ? valid + (size_t)b * T : NULL;
        float *out_b = out + (size_t)b * C;
        memset(out_b, 0, sizeof(float) * C);
        for (int t = 0; t < T; t++) {
            if (valid_b && !valid_b[t])
                continue;
            const float *x_bt = x + ((size_t)b * T + t) * C;
            for (int c = 0; c < C; c++)
                out_b[c] += x_bt[c];
        }
        float inv = inv_valid_count(valid_b, T);
        for (int c = 0; c < C; c++)
            out_b[c] *= inv;
    }
}

/* dx (B, T, C) += dout (B, C) / count_b at the valid tokens */
static void masked_mean_backward(float *dx, const float *dout, const int32_t *valid, int B, int T,
                                 int C) {
    for (int b = 0; b < B; b++) {
        const int32_t *valid_b = valid ? valid + (size_t)b * T : NULL;
        const float *dout_b = dout + (size_t)b * C;
        float inv = inv_valid_count(valid_b, T);
        for (int t = 0; t < T; t++) {
            if (valid_b && !valid_b[t])
                continue;
            float *dx_bt = dx + ((size_t)b * T + t) * C;
            for (int c = 0; c < C; c++)
                dx_bt[c] += dout_b[c] * inv;
        }
    }
}

static void masked_mean_backward_entry(void *p) {
    masked_mean_ctx *c = p;
    masked_mean_backward(c->x->grad, c->out->grad, c->valid ? c->valid->idata : NULL, c->B, c->T,
                         c->C);
}

tensor *op_masked_mean(graph *g, tensor *x, const tensor *valid) {
    HEED_ASSERT(x->ndim == 3 && x->dtype == DTYPE_F32);
    int B = x->shape[0], T = x->shape[1], C = x->shape[2];
    HEED_ASSERT(!valid || (valid->dtype == DTYPE_I32 && valid->numel == (int64_t)B * T));
    tensor *in[1] = {x};
    bool grad = graph_wants_grad(g, 1, in);
    tensor *out = graph_new(g, DTYPE_F32, 2, (int[]){B, C}, grad);
    masked_mean_forward(out->data, x->data, valid ? valid->idata : NULL, B, T, C);
    if (grad) {
        masked_mean_ctx *c = graph_record(g, masked_mean_backward_entry, sizeof *c, 1, in);
        *c = (masked_mean_ctx){out, x, valid, B, T, C};
    }
    return out;
}

/* ---- weighted sum ------------------------------------------------------ */

typedef struct weighted_sum_ctx {
    tensor *out, *x, *w;
    int B, T, C;
} weighted_sum_ctx;

/* out (B, C) = sum_t w (B, T) * x (B, T, C) */
static void weighted_sum_forward(float *out, const float *x, const float *w, int B, int T, int C) {
    for (int b = 0; b < B; b++) {
        float *out_b = out + (size_t)b * C;
        memset(out_b, 0, sizeof(float) * C);
        for (int t = 0; t < T; t++) {
            const float *x_bt = x + ((size_t)b * T + t) * C;
            float w_bt = w[(size_t)b * T + t];
            for (int c = 0; c < C; c++)
                out_b[c] += w_bt * x_bt[c];
        }
    }
}

/* dx (B, T, C) += w[b, t] dout[b, :]; dw (B, T) += dout[b, :] . x[b, t, :].
 * The dot goes to cblas_sdot: a float sum does not vectorise without
 * -ffast-math. */
static void weighted_sum_backward(float *dx, float *dw, const float *dout, const float *x,
                                  const float *w, int B, int T, int C) {
    for (int b = 0; b < B; b++) {
        const float *dout_b = dout + (size_t)b * C;
        for (int t = 0; t < T; t++) {
            size_t bt = (size_t)b * T + t;
            if (dx) {
                float *dx_bt = dx + bt * C;
                float w_bt = w[bt];
                for (int c = 0; c < C; c++)
                    dx_bt[c] += w_bt * dout_b[c];
            }
            if (dw)
                dw[bt] += cblas_sdot(C, dout_b, 1, x + bt * C, 1);
        }
    }
}

static void weighted_sum_backward_entry(void *p) {
    weighted_sum_ctx *c = p;
    weighted_sum_backward(c->x->grad, c->w->grad, c->out->grad, c->x->data, c->w->data, c->B, c->T,
                          c->C);
}

tensor *op_weighted_sum(graph *g, tensor *x, tensor *w) {
    HEED_ASSERT(x->ndim == 3 && x->dtype == DTYPE_F32 && w->dtype == DTYPE_F32);
    int B = x->shape[0], T = x->shape[1], C = x->shape[2];
    HEED_ASSERT(w->numel == (int64_t)B * T);
    tensor *in[2] = {x, w};
    bool grad = graph_wants_grad(g, 2, in);
    tensor *out = graph_new(g, DTYPE_F32, 2, (int[]){B, C}, grad);
    weighted_sum_forward(out->data, x->data, w->data, B, T, C);
    if (grad) {
        weighted_sum_ctx *c = graph_record(g, weighted_sum_backward_entry, sizeof *c, 2, in);
        *c = (weighted_sum_ctx){out, x, w, B, T, C};
    }
    return out;
}
