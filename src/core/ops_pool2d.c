/*
 * ops_pool2d.c - pooling over images (max, average, global) and the pieces
 * CBAM needs: channel pooling to a (max, mean) map and per-channel or
 * per-position gating.
 *
 * Max pooling saves the index of the winner of every window in the arena;
 * its backward routes each output gradient to that one input (the first
 * maximum on ties, as PyTorch).
 */
#include "core/ops_vision.h"

#include "core/check.h"

#include <float.h>
#include <string.h>

static int pool_out(int n, int K, int S, int P) {
    return (n + 2 * P - K) / S + 1;
}

/* ---- max pool ---------------------------------------------------------- */

typedef struct max_pool_ctx {
    tensor *out, *x;
    int32_t *arg; /* (B, C, OH, OW): index into the (H, W) plane */
} max_pool_ctx;

/* max_pool_forward for K = S = 2, P = 0 (the CNNs' pooling): the same
 * winners (first maximum in window order) without the bounds tests. */
static void max_pool_2x2(float *out, int32_t *arg, const float *x, int64_t planes, int H, int W,
                         int OH, int OW) {
    for (int64_t p = 0; p < planes; p++) {
        const float *xp = x + p * H * W;
        float *o = out + p * OH * OW;
        int32_t *a = arg + p * OH * OW;
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++, o++, a++) {
                int32_t i = 2 * oh * W + 2 * ow, win[4] = {i, i + 1, i + W, i + W + 1};
                float best = xp[i];
                int32_t bi = i;
                for (int t = 1; t < 4; t++) {
                    float v = xp[win[t]];
                    bi = v > best ? win[t] : bi;
                    best = v > best ? v : best;
                }
                *o = best;
                *a = bi;
            }
    }
}

/* out (B*C, OH, OW) = max over each K x K window of x (B*C, H, W) */
static void max_pool_forward(float *out, int32_t *arg, const float *x, int64_t planes, int H, int W,
                             int K, int S, int P, int OH, int OW) {
    if (K == 2 && S == 2 && P == 0) {
        max_pool_2x2(out, arg, x, planes, H, W, OH, OW);
        return;
    }
    for (int64_t p = 0; p < planes; p++) {
        const float *xp = x + p * H * W;
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                float best = -FLT_MAX;
                int32_t bi = -1;
                for (int kh = 0; kh < K; kh++) {
                    int ih = oh * S - P + kh;
                    if (ih < 0 || ih >= H)
                        continue;
                    for (int kw = 0; kw < K; kw++) {
                        int iw = ow * S - P + kw;
                        if (iw < 0 || iw >= W)
                            continue;
                        float v = xp[ih * W + iw];
                        if (bi < 0 || v > best) {
                            best = v;
                            bi = ih * W + iw;
                        }
                    }
                }
                int64_t o = (p * OH + oh) * OW + ow;
                out[o] = best;
                arg[o] = bi;
            }
    }
}

static void max_pool_backward_entry(void *p) {
    max_pool_ctx *c = p;
    if (!c->x->grad)
        return;
    int H = c->x->shape[2], W = c->x->shape[3];
    int64_t planes = (int64_t)c->x->shape[0] * c->x->shape[1];
    int64_t per = (int64_t)c->out->shape[2] * c->out->shape[3];
    for (int64_t q = 0; q < planes; q++) {
        float *dx = c->x->grad + q * H * W;
        const float *d = c->out->grad + q * per;
        const int32_t *a = c->arg + q * per;
        for (int64_t i = 0; i < per; i++)
            dx[a[i]] += d[i];
    }
}

tensor *op_max_pool2d(graph *g, tensor *x, int K, int S, int P) {
    HEED_ASSERT(x->ndim == 4 && x->data && K >= 1 && S >= 1 && P >= 0 && 2 * P <= K);
    int B = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    int OH = pool_out(H, K, S, P), OW = pool_out(W, K, S, P);
    HEED_ASSERT(OH >= 1 && OW >= 1);
    tensor *in[1] = {x};
    bool grad = graph_wants_grad(g, 1, in);
    tensor *out = graph_new(g, DTYPE_F32, 4, (int[]){B, C, OH, OW}, grad);
    int32_t *arg = arena_alloc(graph_arena(g), sizeof(int32_t) * ((size_t)out->numel + 1));
    max_pool_forward(out->data, arg, x->data, (int64_t)B * C, H, W, K, S, P, OH, OW);
    if (grad) {
        max_pool_ctx *c = graph_record(g, max_pool_backward_entry, sizeof *c, 1, in);
        *c = (max_pool_ctx){out, x, arg};
    }
    return out;
}

/* ---- average pool ------------------------------------------------------ */

typedef struct avg_pool_ctx {
    tensor *out, *x;
    int K, S, P;
} avg_pool_ctx;

/* out (B*C, OH, OW) = sum over the window / K^2 (padding counted). With
 * `backward`, instead dx += dout / K^2 spread over the window. */
static void avg_pool_kernel(float *out, float *x, int64_t planes, int H, int W, int K, int S, int P,
                            int OH, int OW, bool backward) {
    float inv = 1.0f / (float)(K * K);
    for (int64_t p = 0; p < planes; p++) {
        float *xp = x + p * H * W;
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                float *o = out + (p * OH + oh) * OW + ow;
                float s = 0.0f, d = backward ? *o * inv : 0.0f;
                for (int kh = 0; kh < K; kh++) {
                    int ih = oh * S - P + kh;
                    if (ih < 0 || ih >= H)
                        continue;
                    for (int kw = 0; kw < K; kw++) {
                        int iw = ow * S - P + kw;
                        if (iw < 0 || iw >= W)
                            continue;
                        if (backward)
                            xp[ih * W + iw] += d;
                        else
                            s += xp[ih * W + iw];
                    }
                }
                if (!backward)
                    *o = s * inv;
            }
    }
}

static void avg_pool_backward_entry(void *p) {
    avg_pool_ctx *c = p;
    if (!c->x->grad)
        return;
    avg_pool_kernel(c->out->grad, c->x->grad, (int64_t)c->x->shape[0] * c->x->shape[1],
                    c->x->shape[2], c->x->shape[3], c->K, c->S, c->P, c->out->shape[2],
                    c->out->shape[3], true);
}

tensor *op_avg_pool2d(graph *g, tensor *x, int K, int S, int P) {
    HEED_ASSERT(x->ndim == 4 && x->data && K >= 1 && S >= 1 && P >= 0 && 2 * P <= K);
    int B = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    int OH = pool_out(H, K, S, P), OW = pool_out(W, K, S, P);
    HEED_ASSERT(OH >= 1 && OW >= 1);
    tensor *in[1] = {x};
    bool grad = graph_wants_grad(g, 1, in);
    tensor *out = graph_new(g, DTYPE_F32, 4, (int[]){B, C, OH, OW}, grad);
    avg_pool_kernel(out->data, x->data, (int64_t)B * C, H, W, K, S, P, OH, OW, false);
    if (grad) {
        avg_pool_ctx *c = graph_record(g, avg_pool_backward_entry, sizeof *c, 1, in);
        *c = (avg_pool_ctx){out, x, K, S, P};
    }
    return out;
}

/* ---- global pools ------------------------------------------------------ */

typedef struct global_pool_ctx {
    tensor *out, *x;
    int32_t *arg; /* max: (B, C) winner index in the plane; mean: NULL */
} global_pool_ctx;

static void global_pool_backward_entry(void *p) {
    global_pool_ctx *c = p;
    if (!c->x->grad)
        return;
    int64_t planes = c->out->numel, hw = (int64_t)c->x->shape[2] * c->x->shape[3];
    float inv = 1.0f / (float)hw;
    for (int64_t q = 0; q < planes; q++) {
        float *dx = c->x->grad + q * hw;
        float d = c->out->grad[q];
        if (c->arg) {
            dx[c->arg[q]] += d;
        } else {
            d *= inv;
            for (int64_t i = 0; i < hw; i++)
                dx[i] += d;
        }
    }
}

static tensor *global_pool(graph *g, tensor *x, bool is_max) {
    HEED_ASSERT(x->ndim == 4 && x->data);
    int B = x->shape[0], C = x->shape[1];
    int64_t hw = (int64_t)x->shape[2] * x->shape[3];
    HEED_ASSERT(hw >= 1);
    tensor *in[1] = {x};
    bool grad = graph_wants_grad(g, 1, in);
    tensor *out = graph_new(g, DTYPE_F32, 2, (int[]){B, C}, grad);
    int32_t *arg =
        is_max ? arena_alloc(graph_arena(g), sizeof(int32_t) * ((size_t)out->numel + 1)) : NULL;
    float inv = 1.0f / (float)hw;
    for (int64_t q = 0; q < out->numel; q++) {
        const float *xp = x->data + q * hw;
        if (is_max) {
            int32_t bi = 0;
            for (int64_t i = 1; i < hw; i++)
                if (xp[i] > xp[bi])
                    bi = (int32_t)i;
            arg[q] = bi;
            out->data[q] = xp[bi];
        } else {
            float s = 0.0f;
            for (int64_t i = 0; i < hw; i++)
                s += xp[i];
            out->data[q] = s * inv;
        }
    }
    if (grad) {
        global_pool_ctx *c = graph_record(g, global_pool_backward_entry, sizeof *c, 1, in);
        *c = (global_pool_ctx){out, x, arg};
    }
    return out;
}

tensor *op_global_avg_pool(graph *g, tensor *x) {
    return global_pool(g, x, false);
}

tensor *op_global_max_pool(graph *g, tensor *x) {
    return global_pool(g, x, true);
}

/* ---- channel pool (CBAM) ----------------------------------------------- */

typedef struct channel_pool_ctx {
    tensor *out, *x;
    int32_t *arg; /* (B, H*W): channel that won the max */
} channel_pool_ctx;

static void channel_pool_backward_entry(void *p) {
    channel_pool_ctx *c = p;
    if (!c->x->grad)
        return;
    int B = c->x->shape[0], C = c->x->shape[1];
    int64_t hw = (int64_t)c->x->shape[2] * c->x->shape[3];
    float inv = 1.0f / (float)C;
    for (int b = 0; b < B; b++) {
        const float *dmax = c->out->grad + (int64_t)b * 2 * hw, *dmean = dmax + hw;
        const int32_t *arg = c->arg + b * hw;
        float *dx = c->x->grad + (int64_t)b * C * hw;
        for (int ch = 0; ch < C; ch++) {
            float *dxc = dx + ch * hw;
            for (int64_t i = 0; i < hw; i++)
                dxc[i] += dmean[i] * inv;
        }
        for (int64_t i = 0; i < hw; i++)
            dx[arg[i] * hw + i] += dmax[i];
    }
}

tensor *op_channel_pool(graph *g, tensor *x) {
    HEED_ASSERT(x->ndim == 4 && x->data && x->shape[1] >= 1);
    int B = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    int64_t hw = (int64_t)H * W;
    tensor *in[1] = {x};
    bool grad = graph_wants_grad(g, 1, in);
    tensor *out = graph_new(g, DTYPE_F32, 4, (int[]){B, 2, H, W}, grad);
    int32_t *arg = arena_alloc(graph_arena(g), sizeof(int32_t) * ((size_t)B * hw + 1));
    float inv = 1.0f / (float)C;
    for (int b = 0; b < B; b++) {
        const float *xb = x->data + (int64_t)b * C * hw;
        float *mx = out->data + (int64_t)b * 2 * hw, *mean = mx + hw;
        int32_t *ab = arg + b * hw;
        memcpy(mx, xb, sizeof(float) * hw);
        memcpy(mean, xb, sizeof(float) * hw);
        for (int64_t i = 0; i < hw; i++)
            ab[i] = 0;
        /* channel-outer loops keep the inner loop contiguous */
        for (int ch = 1; ch < C; ch++) {
            const float *xc = xb + ch * hw;
            for (int64_t i = 0; i < hw; i++) {
                mean[i] += xc[i];
                if (xc[i] > mx[i]) {
                    mx[i] = xc[i];
                    ab[i] = ch;
                }
            }
        }
        for (int64_t i = 0; i < hw; i++)
            mean[i] *= inv;
    }
    if (grad) {
        channel_pool_ctx *c = graph_record(g, channel_pool_backward_entry, sizeof *c, 1, in);
        *c = (channel_pool_ctx){out, x, arg};
    }
    return out;
}

/* ---- gating ------------------------------------------------------------ */

typedef struct scale_ctx {
    tensor *out, *x, *s;
    bool spatial;
} scale_ctx;

/* out (B, C, HW) = x * s, s indexed by (b, c) or by (b, hw); backward:
 * dx += dout * s, ds += sum of dout * x over the broadcast axis. */
static void scale_backward_entry(void *p) {
    scale_ctx *c = p;
    int B = c->x->shape[0], C = c->x->shape[1];
    int64_t hw = (int64_t)c->x->shape[2] * c->x->shape[3];
    for (int b = 0; b < B; b++)
        for (int ch = 0; ch < C; ch++) {
            int64_t base = ((int64_t)b * C + ch) * hw;
            const float *d = c->out->grad + base, *x = c->x->data + base;
            if (c->spatial) {
                const float *s = c->s->data + b * hw;
                if (c->x->grad)
                    for (int64_t i = 0; i < hw; i++)
                        c->x->grad[base + i] += d[i] * s[i];
                if (c->s->grad) {
                    float *ds = c->s->grad + b * hw;
                    for (int64_t i = 0; i < hw; i++)
                        ds[i] += d[i] * x[i];
                }
            } else {
                float s = c->s->data[b * C + ch];
                if (c->x->grad)
                    for (int64_t i = 0; i < hw; i++)
                        c->x->grad[base + i] += d[i] * s;
                if (c->s->grad) {
                    float acc = 0.0f;
                    for (int64_t i = 0; i < hw; i++)
                        acc += d[i] * x[i];
                    c->s->grad[b * C + ch] += acc;
                }
            }
        }
}

static tensor *scale_op(graph *g, tensor *x, tensor *s, bool spatial) {
    HEED_ASSERT(x->ndim == 4 && x->data && s->data);
    int B = x->shape[0], C = x->shape[1];
    int64_t hw = (int64_t)x->shape[2] * x->shape[3];
    if (spatial)
        HEED_ASSERT(s->ndim == 4 && s->shape[0] == B && s->shape[1] == 1 &&
                    s->shape[2] == x->shape[2] && s->shape[3] == x->shape[3]);
    else
        HEED_ASSERT(s->ndim == 2 && s->shape[0] == B && s->shape[1] == C);
    tensor *in[2] = {x, s};
    bool grad = graph_wants_grad(g, 2, in);
    tensor *out = graph_new_like(g, x, grad);
    for (int b = 0; b < B; b++)
        for (int ch = 0; ch < C; ch++) {
            int64_t base = ((int64_t)b * C + ch) * hw;
            const float *xr = x->data + base;
            float *o = out->data + base;
            if (spatial) {
                const float *sr = s->data + b * hw;
                for (int64_t i = 0; i < hw; i++)
                    o[i] = xr[i] * sr[i];
            } else {
                float sv = s->data[b * C + ch];
                for (int64_t i = 0; i < hw; i++)
                    o[i] = xr[i] * sv;
            }
        }
    if (grad) {
        scale_ctx *c = graph_record(g, scale_backward_entry, sizeof *c, 2, in);
        *c = (scale_ctx){out, x, s, spatial};
    }
    return out;
}

tensor *op_scale_channels(graph *g, tensor *x, tensor *s) {
    return scale_op(g, x, s, false);
}

tensor *op_scale_spatial(graph *g, tensor *x, tensor *s) {
    return scale_op(g, x, s, true);
}
