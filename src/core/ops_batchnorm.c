/*
 * ops_batchnorm.c - batch norm with PyTorch's semantics: in training, the
 * batch mean and biased variance normalise, and the running statistics move
 * by `momentum` towards the batch mean and the unbiased variance; in eval,
 * the running statistics normalise.
 *
 * Per-channel sums run over B*H*W values (100k for a batch of 128 at 28x28),
 * so they are accumulated in double: float sums of that length lose about
 * three digits, which would show in the variance.
 *
 * The running statistics are buffers in the parameter buffer (params_add_buffer):
 * checkpoints carry them, the optimiser leaves them alone, and the trainer
 * makes them identical on all ranks after each step (docs/architecture.md).
 *
 * Synchronised batch norm (heed train --sync-bn): with a batch sum installed
 * on the graph (graph_set_batch_sum), the per-channel sums of the forward's
 * two passes and of the backward are summed over the ranks, so the
 * statistics and their gradient are those of the global batch, as PyTorch's
 * SyncBatchNorm; the weight and bias gradients stay the rank's own (the
 * trainer's gradient sum adds them up).
 */
#include "core/ops_vision.h"

#include "core/check.h"
#include "core/fastmath.h"
#include "core/lanes.h"

#include <math.h>

typedef struct bn_dims {
    int B, C;
    int64_t HW;
} bn_dims;

/* Row reductions over one (b, c) plane of HW values in 8 float partial
 * sums (core/lanes.h; the tail goes to lane 0); the planes of a channel are
 * then added in double. */
static inline double lanes_combine(const lanes8 *v) {
    return (double)lanes8_sum(v);
}

/* sum of v - m and sum of (v - m)^2, in one pass */
static inline void row_sums_dev(const float *v, float m, int64_t n, double *sd, double *sq) {
    lanes8 s = {0}, q = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        lanes8 d;
        lanes8_load(&d, v + i);
        d -= m;
        s += d;
        q += d * d;
    }
    for (; i < n; i++) {
        float d = v[i] - m;
        s[0] += d;
        q[0] += d * d;
    }
    *sd += lanes_combine(&s);
    *sq += lanes_combine(&q);
}

/* sum of d and sum of d (x - m), in one pass */
static inline void row_sums_grad(const float *d, const float *x, float m, int64_t n, double *sd,
                                 double *sdx) {
    lanes8 a = {0}, b = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        lanes8 dv, xv;
        lanes8_load(&dv, d + i);
        lanes8_load(&xv, x + i);
        a += dv;
        b += dv * (xv - m);
    }
    for (; i < n; i++) {
        a[0] += d[i];
        b[0] += d[i] * (x[i] - m);
    }
    *sd += lanes_combine(&a);
    *sdx += lanes_combine(&b);
}

/* s (C) = per-channel sums of x (B, C, HW) over (B, HW) */
HEED_SIMD_CLONES static void bn_channel_sums(double *s, const float *x, const bn_dims *d) {
    for (int c = 0; c < d->C; c++) {
        s[c] = 0.0;
        for (int b = 0; b < d->B; b++)
            s[c] += lanes8_row_sum(x + ((int64_t)b * d->C + c) * d->HW, d->HW);
    }
}

/* r (C) = sum of x - m, q (C) = sum of (x - m)^2 per channel, m (C) */
HEED_SIMD_CLONES static void bn_channel_dev_sums(double *r, double *q, const float *x,
                                                 const float *m, const bn_dims *d) {
    for (int c = 0; c < d->C; c++) {
        r[c] = q[c] = 0.0;
        for (int b = 0; b < d->B; b++)
            row_sums_dev(x + ((int64_t)b * d->C + c) * d->HW, m[c], d->HW, &r[c], &q[c]);
    }
}

/* mean, rstd (C) of x (B, C, HW) over (B, HW); var_unbiased (C) too. Two
 * passes (mean first) rather than E[x^2] - m^2, which cancels when
 * |mean| >> std. With a batch sum on g (synchronised batch norm) the sums
 * and the count are those of the global batch; *count gets the count.
 * sums: 2C + 1 doubles of scratch. */
static void bn_batch_stats(float *mean, float *rstd, float *var_unbiased, double *count,
                           double *sums, graph *g, const float *x, const bn_dims *d, float eps) {
    int C = d->C;
    bn_channel_sums(sums, x, d);
    sums[C] = (double)d->B * (double)d->HW;
    graph_batch_sum(g, sums, C + 1);
    double N = sums[C];
    *count = N;
    for (int c = 0; c < C; c++)
        mean[c] = (float)(sums[c] / N); /* rounded: the deviation sums correct it */
    double *r = sums, *q = sums + C;
    bn_channel_dev_sums(r, q, x, mean, d);
    graph_batch_sum(g, sums, 2 * C);
    for (int c = 0; c < C; c++) {
        double dm = r[c] / N;
        double ss = q[c] - N * dm * dm; /* sum (x - m)^2 - N (mean - m)^2 */
        if (ss < 0.0)
            ss = 0.0;
        double var = ss / N;
        mean[c] = (float)((double)mean[c] + dm);
        rstd[c] = (float)(1.0 / sqrt(var + eps));
        var_unbiased[c] = (float)(N > 1 ? ss / (N - 1) : var);
    }
}

/* out (B, C, HW) = (x - mean) * rstd * w + b, per channel */
HEED_SIMD_CLONES static void bn_forward(float *out, const float *x, const float *mean,
                                        const float *rstd, const float *w, const float *b,
                                        const bn_dims *d) {
    for (int n = 0; n < d->B; n++)
        for (int c = 0; c < d->C; c++) {
            int64_t base = ((int64_t)n * d->C + c) * d->HW;
            float sc = rstd[c] * w[c], sh = b[c] - mean[c] * sc;
            const float *xr = x + base;
            float *o = out + base;
            for (int64_t i = 0; i < d->HW; i++)
                o[i] = xr[i] * sc + sh;
        }
}

/* With xhat = (x - mean) rstd and dxhat = w dout, per channel over (B, HW):
 *   training: dx += rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat))
 *   eval:     dx += rstd dxhat        (the statistics are constants)
 *   dw += sum dout xhat,  db += sum dout.  dx, dw, db may be NULL; with
 *   dx_overwrite, dx = instead of +=. Means are over N values: the rank's
 *   own B HW, or the global batch's with synchronised batch norm. */

/* sums[c] = sum dout, sums[C + c] = sum dout xhat of channel c */
static inline void bn_grad_sums(double *sums, const float *dout, const float *x, const float *mean,
                                const float *rstd, const bn_dims *d, int c) {
    double sd = 0.0, sdx = 0.0; /* sum dout, sum dout * (x - mean) */
    for (int n = 0; n < d->B; n++) {
        int64_t base = ((int64_t)n * d->C + c) * d->HW;
        row_sums_grad(dout + base, x + base, mean[c], d->HW, &sd, &sdx);
    }
    sums[c] = sd;
    sums[d->C + c] = sdx * rstd[c];
}

static inline void bn_dx_channel(float *dx, bool dx_overwrite, const float *dout, const float *x,
                                 const float *mean, const float *rstd, const float *w,
                                 const double *sums, double N, const bn_dims *d, int c,
                                 bool batch_stats) {
    float m = mean[c], s = rstd[c], ws = w[c] * s;
    /* mean(dxhat) = w sd / N, mean(dxhat xhat) = w sdx / N */
    float k1 = batch_stats ? (float)(sums[c] / N) : 0.0f;
    float k2 = batch_stats ? (float)(sums[d->C + c] / N) * s : 0.0f;
    for (int n = 0; n < d->B; n++) {
        int64_t base = ((int64_t)n * d->C + c) * d->HW;
        const float *xr = x + base, *dr = dout + base;
        float *dxr = dx + base;
        if (dx_overwrite)
            for (int64_t i = 0; i < d->HW; i++)
                dxr[i] = ws * (dr[i] - k1 - (xr[i] - m) * k2);
        else
            for (int64_t i = 0; i < d->HW; i++)
                dxr[i] += ws * (dr[i] - k1 - (xr[i] - m) * k2);
    }
}

/* Without a batch sum each channel's dx follows its sums while its planes
 * are in cache; with one, all sums first, then one sum over the ranks. */
HEED_SIMD_CLONES static void bn_backward(float *dx, bool dx_overwrite, float *dw, float *db,
                                         const float *dout, const float *x, const float *mean,
                                         const float *rstd, const float *w, double N, double *sums,
                                         graph *sync, const bn_dims *d, bool batch_stats) {
    int C = d->C;
    for (int c = 0; c < C; c++) {
        bn_grad_sums(sums, dout, x, mean, rstd, d, c);
        /* the parameter gradients are the rank's own: the trainer sums them */
        if (db)
            db[c] += (float)sums[c];
        if (dw)
            dw[c] += (float)sums[C + c];
        if (dx && !sync)
            bn_dx_channel(dx, dx_overwrite, dout, x, mean, rstd, w, sums, N, d, c, batch_stats);
    }
    if (!dx || !sync)
        return;
    graph_batch_sum(sync, sums, 2 * C);
    for (int c = 0; c < C; c++)
        bn_dx_channel(dx, dx_overwrite, dout, x, mean, rstd, w, sums, N, d, c, batch_stats);
}

typedef struct bn_ctx {
    tensor *out, *x, *w, *b;
    float *mean, *rstd; /* (C) what normalised the forward */
    double count;       /* N of the means: the rank's B HW, or the global batch's */
    double *sums;       /* (2C) scratch */
    graph *sync;        /* the graph when the statistics are global, else NULL */
    bn_dims d;
    bool batch_stats;
} bn_ctx;

static void bn_backward_entry(void *p) {
    bn_ctx *c = p;
    bool overwrite = graph_grad_claim(c->x);
    bn_backward(c->x->grad, overwrite, c->w->grad, c->b->grad, c->out->grad, c->x->data, c->mean,
                c->rstd, c->w->data, c->count, c->sums, c->sync, &c->d, c->batch_stats);
}

tensor *op_batch_norm(graph *g, tensor *x, tensor *w, tensor *b, tensor *running_mean,
                      tensor *running_var, float momentum, float eps) {
    HEED_ASSERT((x->ndim == 4 || x->ndim == 2) && x->data);
    bn_dims d = {.B = x->shape[0], .C = x->shape[1], .HW = 1};
    if (x->ndim == 4)
        d.HW = (int64_t)x->shape[2] * x->shape[3];
    HEED_ASSERT(w->numel == d.C && b->numel == d.C && running_mean->numel == d.C &&
                running_var->numel == d.C);
    bool batch_stats = graph_training(g);
    /* with global statistics a rank may hold no samples of its own */
    HEED_ASSERT(!batch_stats || graph_has_batch_sum(g) || (int64_t)d.B * d.HW > 0);
    tensor *in[3] = {x, w, b};
    bool grad = graph_wants_grad(g, 3, in);
    tensor *out = graph_new_like(g, x, grad);
    arena *a = graph_arena(g);
    float *mean = arena_alloc(a, sizeof(float) * (size_t)d.C);
    float *rstd = arena_alloc(a, sizeof(float) * (size_t)d.C);
    double *sums = arena_alloc(a, sizeof(double) * (size_t)(2 * d.C + 1));
    double count = (double)d.B * (double)d.HW;
    if (batch_stats) {
        float *var_u = arena_alloc(a, sizeof(float) * (size_t)d.C);
        bn_batch_stats(mean, rstd, var_u, &count, sums, g, x->data, &d, eps);
        for (int c = 0; c < d.C; c++) {
            running_mean->data[c] = (1.0f - momentum) * running_mean->data[c] + momentum * mean[c];
            running_var->data[c] = (1.0f - momentum) * running_var->data[c] + momentum * var_u[c];
        }
    } else {
        for (int c = 0; c < d.C; c++) {
            mean[c] = running_mean->data[c];
            rstd[c] = 1.0f / sqrtf(running_var->data[c] + eps);
        }
    }
    bn_forward(out->data, x->data, mean, rstd, w->data, b->data, &d);
    if (grad) {
        bn_ctx *c = graph_record_claims(g, bn_backward_entry, sizeof *c, 3, in, 1u);
        graph *sync = batch_stats && graph_has_batch_sum(g) ? g : NULL;
        *c = (bn_ctx){out, x, w, b, mean, rstd, count, sums, sync, d, batch_stats};
    }
    return out;
}
