/*
 * ops_pool.c - pooling over tokens: masked mean and weighted sum.
 */
#include "core/ops.h"

#include "core/check.h"

#include <string.h>

typedef struct pool_ctx {
    tensor *out, *x, *w;
    const tensor *valid;
    int B, T, C;
} pool_ctx;

static float masked_count_inv(const tensor *valid, int b, int T) {
    if (!valid)
        return T ? 1.0f / T : 0.0f;
    int n = 0;
    for (int t = 0; t < T; t++)
        n += valid->idata[b * T + t] != 0;
    return n ? 1.0f / n : 0.0f;
}

static void masked_mean_backward_entry(void *p) {
    pool_ctx *c = p;
    int B = c->B, T = c->T, C = c->C;
    for (int b = 0; b < B; b++) {
        float inv = masked_count_inv(c->valid, b, T);
        const float *d = c->out->grad + (int64_t)b * C;
        for (int t = 0; t < T; t++) {
            if (c->valid && !c->valid->idata[b * T + t])
                continue;
            float *dx = c->x->grad + ((int64_t)b * T + t) * C;
            for (int i = 0; i < C; i++)
                dx[i] += d[i] * inv;
        }
    }
}

tensor *op_masked_mean(graph *g, tensor *x, const tensor *valid) {
    HEED_ASSERT(x->ndim == 3);
    int B = x->shape[0], T = x->shape[1], C = x->shape[2];
    HEED_ASSERT(!valid || (valid->dtype == DTYPE_I32 && valid->numel == (int64_t)B * T));
    tensor *in[1] = {x};
    bool grad = graph_wants_grad(g, 1, in);
    tensor *out = graph_new(g, DTYPE_F32, 2, (int[]){B, C}, grad);
    for (int b = 0; b < B; b++) {
        float inv = masked_count_inv(valid, b, T);
        float *o = out->data + (int64_t)b * C;
        memset(o, 0, sizeof(float) * C);
        for (int t = 0; t < T; t++) {
            if (valid && !valid->idata[b * T + t])
                continue;
            const float *xr = x->data + ((int64_t)b * T + t) * C;
            for (int i = 0; i < C; i++)
                o[i] += xr[i];
        }
        for (int i = 0; i < C; i++)
            o[i] *= inv;
    }
    if (grad) {
        pool_ctx *c = graph_record(g, masked_mean_backward_entry, sizeof *c, 1, in);
        *c = (pool_ctx){out, x, NULL, valid, B, T, C};
    }
    return out;
}

static void weighted_sum_backward_entry(void *p) {
    pool_ctx *c = p;
    int B = c->B, T = c->T, C = c->C;
    for (int b = 0; b < B; b++) {
        const float *d = c->out->grad + (int64_t)b * C;
        for (int t = 0; t < T; t++) {
            int64_t bt = (int64_t)b * T + t;
            const float *xr = c->x->data + bt * C;
            if (c->w->grad) {
                float dot = 0.0f;
                for (int i = 0; i < C; i++)
                    dot += d[i] * xr[i];
                c->w->grad[bt] += dot;
            }
            if (c->x->grad) {
                float wt = c->w->data[bt];
                float *dx = c->x->grad + bt * C;
                for (int i = 0; i < C; i++)
                    dx[i] += wt * d[i];
            }
        }
    }
}

tensor *op_weighted_sum(graph *g, tensor *x, tensor *w) {
    HEED_ASSERT(x->ndim == 3);
    int B = x->shape[0], T = x->shape[1], C = x->shape[2];
    HEED_ASSERT(w->numel == (int64_t)B * T);
    tensor *in[2] = {x, w};
    bool grad = graph_wants_grad(g, 2, in);
    tensor *out = graph_new(g, DTYPE_F32, 2, (int[]){B, C}, grad);
    for (int b = 0; b < B; b++) {
        float *o = out->data + (int64_t)b * C;
        memset(o, 0, sizeof(float) * C);
        for (int t = 0; t < T; t++) {
            float wt = w->data[(int64_t)b * T + t];
            const float *xr = x->data + ((int64_t)b * T + t) * C;
            for (int i = 0; i < C; i++)
                o[i] += wt * xr[i];
        }
    }
    if (grad) {
        pool_ctx *c = graph_record(g, weighted_sum_backward_entry, sizeof *c, 2, in);
        *c = (pool_ctx){out, x, w, NULL, B, T, C};
    }
    return out;
}
