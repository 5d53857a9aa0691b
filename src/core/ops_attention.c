/*
 * ops_attention.c - fused multi-head scaled dot-product attention, and
 * self-attention with its q, k, v projections fused into one product.
 *
 * Heads are views, not copies: head h of q (B, T, ldq) is the T x HS matrix
 * at q + b*T*ldq + h*HS with leading dimension ldq. So the forward is, per
 * (b, h), one product for the scores, a masked softmax in place, and one
 * product for the output; the backward is four products. These are small
 * (64 x 64 x 32 for the benchmark Transformer) and run through small_gemm,
 * at about twice OpenBLAS's rate on them; the k (and, backward, v) of the
 * head is transposed into scratch first, since small_gemm reads B (K, N) in
 * rows. op_attention has q, k, v of their own (ld = C); op_self_attention
 * computes them as the column blocks of one (B*T, 3C) product (ld = 3C), so
 * x is read once, and the backward writes their gradients into one (B*T, 3C)
 * buffer that two sgemms turn into dx and d[wq; wk; wv].
 */
#include "core/ops.h"

#include "core/check.h"
#include "core/fastmath.h"
#include "core/lanes.h"
#include "core/linear.h"
#include "core/rng.h"
#include "core/small_gemm.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* Sizes and leading dimensions: q and dq rows are ldq apart, k/dk ldk, v/dv
 * ldv, out/dout ldo. */
typedef struct attn_dims {
    int B, T, S, C, NH;
    int ldq, ldk, ldv, ldo;
} attn_dims;

/* Row reductions go through lanes.h: fixed partial sums, so the results do
 * not depend on which clone (vector width) runs. */
/* p (T, S) = softmax over each row of p + mask, in place; mask (S) or NULL
 * (the 1/sqrt(HS) scale is the scores sgemm's alpha); all-masked rows
 * become 0. The exponentials run over the whole block in one loop: per row,
 * ViT's 50-wide rows spent as much on the scalar tail as on the vectors. A
 * row left all -inf (fully masked) gives e^-inf = 0 everywhere and a zero
 * sum, and stays 0. */
HEED_SIMD_CLONES static void softmax_block(float *p, const float *mask, int T, int S) {
    for (int t = 0; t < T; t++) {
        float *row = p + (size_t)t * S;
        if (mask)
            for (int s = 0; s < S; s++)
                row[s] += mask[s];
        float maxv = lanes8_row_max(row, S);
        if (maxv != -INFINITY)
            for (int s = 0; s < S; s++)
                row[s] -= maxv;
    }
    int64_t n = (int64_t)T * S;
    for (int64_t i = 0; i < n; i++)
        p[i] = fast_expf(p[i]);
    for (int t = 0; t < T; t++) {
        float *row = p + (size_t)t * S;
        float sum = lanes8_row_sum(row, S);
        if (sum == 0.0f)
            continue;
        float inv = 1.0f / sum;
        for (int s = 0; s < S; s++)
            row[s] *= inv;
    }
}

/* dp (T, S) = scale * p * (d - <d, p>) per row, where d is dp itself, or,
 * with dropout, dp where keep and 0 elsewhere, times keep_scale. */
HEED_SIMD_CLONES static void softmax_block_backward(float *dp, const float *p, const uint8_t *keep,
                                                    float keep_scale, float scale, int T, int S) {
    for (int t = 0; t < T; t++) {
        float *d = dp + (size_t)t * S;
        const float *pt = p + (size_t)t * S;
        if (keep) {
            const uint8_t *kt = keep + (size_t)t * S;
            for (int s = 0; s < S; s++)
                d[s] = kt[s] ? d[s] * keep_scale : 0.0f;
        }
        float dot = lanes8_row_dot(d, pt, S);
        for (int s = 0; s < S; s++)
            d[s] = pt[s] * (d[s] - dot) * scale;
    }
}

/* dst (n) = src where keep, else 0, times keep_scale */
HEED_SIMD_CLONES static void dropout_block(float *dst, const float *src, const uint8_t *keep,
                                           float keep_scale, int n) {
    for (int i = 0; i < n; i++)
        dst[i] = keep[i] ? src[i] * keep_scale : 0.0f;
}

/* out (B, T, ldo), probs (B, NH, T, S); q (B, T, ldq), k (B, S, ldk),
 * v (B, S, ldv); mask (B, S) or NULL; scratch (T, S); kt (HS, S) */
static void attention_forward(float *out, float *probs, float *scratch, float *kt,
                              const uint8_t *keep, float keep_scale, const float *q, const float *k,
                              const float *v, const float *mask, const attn_dims *d) {
    int T = d->T, S = d->S, NH = d->NH, HS = d->C / NH;
    float scale = 1.0f / sqrtf((float)HS);
    for (int b = 0; b < d->B; b++) {
        const float *mask_b = mask ? mask + (size_t)b * S : NULL;
        for (int h = 0; h < NH; h++) {
            const float *q_bh = q + (size_t)b * T * d->ldq + h * HS;
            const float *k_bh = k + (size_t)b * S * d->ldk + h * HS;
            const float *v_bh = v + (size_t)b * S * d->ldv + h * HS;
            float *p_bh = probs + ((size_t)b * NH + h) * T * S;
            small_transpose(kt, k_bh, S, HS, d->ldk);
            small_gemm(false, T, S, HS, scale, q_bh, d->ldq, kt, S, false, p_bh, S);
            softmax_block(p_bh, mask_b, T, S);
            const float *pv = p_bh;
            if (keep) {
                dropout_block(scratch, p_bh, keep + ((size_t)b * NH + h) * T * S, keep_scale,
                              T * S);
                pv = scratch;
            }
            small_gemm(false, T, HS, S, 1.0f, pv, S, v_bh, d->ldv, false,
                       out + (size_t)b * T * d->ldo + h * HS, d->ldo);
        }
    }
}

/* dq, dk, dv += (or, with set_* true, =) the gradients of q, k, v (laid out
 * as q, k, v); any may be NULL. For each (b, h) the writes go dv, dq, dk, so
 * one buffer behind several of them is right when only the first written
 * is set. dp (T, S) and vt (HS, S) are scratch. */
static void attention_backward(float *dq, float *dk, float *dv, bool set_q, bool set_k, bool set_v,
                               float *dp, float *vt, const float *dout, const float *probs,
                               const uint8_t *keep, float keep_scale, const float *q,
                               const float *k, const float *v, const attn_dims *d) {
    int T = d->T, S = d->S, NH = d->NH, HS = d->C / NH;
    int ldq = d->ldq, ldk = d->ldk, ldv = d->ldv;
    float scale = 1.0f / sqrtf((float)HS);
    for (int b = 0; b < d->B; b++) {
        for (int h = 0; h < NH; h++) {
            size_t qo = (size_t)b * T * ldq + h * HS, ko = (size_t)b * S * ldk + h * HS;
            size_t vo = (size_t)b * S * ldv + h * HS;
            const float *p_bh = probs + ((size_t)b * NH + h) * T * S;
            const uint8_t *keep_bh = keep ? keep + ((size_t)b * NH + h) * T * S : NULL;
            const float *dout_bh = dout + (size_t)b * T * d->ldo + h * HS;
            if (dv) {
                /* dv (S,HS) += dropout(p)^T (S,T) @ dout (T,HS) */
                const float *pv = p_bh;
                if (keep_bh) {
                    dropout_block(dp, p_bh, keep_bh, keep_scale, T * S);
                    pv = dp;
                }
                small_gemm(true, S, HS, T, 1.0f, pv, S, dout_bh, d->ldo, !set_v, dv + vo, ldv);
            }
            if (!dq && !dk)
                continue;
            /* dp (T,S) = dout (T,HS) @ v^T (HS,S) */
            small_transpose(vt, v + vo, S, HS, ldv);
            small_gemm(false, T, S, HS, 1.0f, dout_bh, d->ldo, vt, S, false, dp, S);
            /* through dropout, then softmax: ds = p * (dp - sum(dp * p)), times scale */
            softmax_block_backward(dp, p_bh, keep_bh, keep_scale, scale, T, S);
            if (dq) /* dq (T,HS) += ds (T,S) @ k (S,HS) */
                small_gemm(false, T, HS, S, 1.0f, dp, S, k + ko, ldk, !set_q, dq + qo, ldq);
            if (dk) /* dk (S,HS) += ds^T (S,T) @ q (T,HS) */
                small_gemm(true, S, HS, T, 1.0f, dp, S, q + qo, ldq, !set_k, dk + ko, ldk);
        }
    }
}

/* Dropout mask of the probabilities, keyed per sample like op_dropout. */
static void attention_draw_keep(graph *g, uint8_t *keep, float p, int B, int NH, int T, int S) {
    uint64_t stream = graph_rng_stream(g);
    int64_t per_sample = (int64_t)NH * T * S;
    HEED_ASSERT(T < (1 << DROPOUT_COORD_BITS) && S < (1 << DROPOUT_COORD_BITS));
    for (int b = 0; b < B; b++) {
        uint64_t key = rng_key(stream, (uint64_t)graph_sample_id(g, b), 0);
        dropout_draw_keep(keep + b * per_sample, key, p, 3, (int[]){NH, T, S});
    }
}

/* What both ops' forward share: the output, probabilities, dropout mask. */
typedef struct attn_core {
    tensor *out, *probs;
    uint8_t *keep;  /* (B, NH, T, S), or NULL */
    float *scratch; /* (T, S) */
    float *kt;      /* (HS, S): k, then v, of one head transposed */
    float keep_scale;
} attn_core;

static attn_core attention_run(graph *g, const float *q, const float *k, const float *v,
                               const tensor *mask, float p_drop, bool grad, const attn_dims *d) {
    arena *a = graph_arena(g);
    attn_core r = {0};
    r.out = graph_new(g, DTYPE_F32, 3, (int[]){d->B, d->T, d->C}, grad);
    r.probs = graph_new(g, DTYPE_F32, 4, (int[]){d->B, d->NH, d->T, d->S}, false);
    bool dropout = graph_training(g) && p_drop > 0.0f;
    if (dropout) {
        r.keep = arena_alloc(a, (size_t)d->B * d->NH * d->T * d->S);
        attention_draw_keep(g, r.keep, p_drop, d->B, d->NH, d->T, d->S);
    }
    r.scratch = arena_alloc(a, sizeof(float) * (size_t)d->T * d->S);
    r.kt = arena_alloc(a, sizeof(float) * (size_t)(d->C / d->NH) * d->S);
    r.keep_scale = dropout ? 1.0f / (1.0f - p_drop) : 1.0f;
    attention_forward(r.out->data, r.probs->data, r.scratch, r.kt, r.keep, r.keep_scale, q, k, v,
                      mask ? mask->data : NULL, d);
    return r;
}

/* ---- op_attention ------------------------------------------------------ */

typedef struct attention_ctx {
    tensor *q, *k, *v;
    attn_core core;
    attn_dims d;
} attention_ctx;

static void attention_backward_entry(void *p) {
    attention_ctx *c = p;
    /* claimed in the order each (b, h) block is written: v, q, k */
    bool set_v = graph_grad_claim(c->v);
    bool set_q = graph_grad_claim(c->q);
    bool set_k = graph_grad_claim(c->k);
    attention_backward(c->q->grad, c->k->grad, c->v->grad, set_q, set_k, set_v, c->core.scratch,
                       c->core.kt, c->core.out->grad, c->core.probs->data, c->core.keep,
                       c->core.keep_scale, c->q->data, c->k->data, c->v->data, &c->d);
}

tensor *op_attention(graph *g, tensor *q, tensor *k, tensor *v, const tensor *mask, int NH,
                     float p_drop, tensor **probs_out) {
    HEED_ASSERT(q->ndim == 3 && k->ndim == 3 && v->ndim == 3);
    int B = q->shape[0], T = q->shape[1], C = q->shape[2], S = k->shape[1];
    HEED_ASSERT(k->shape[0] == B && k->shape[2] == C && tensor_same_shape(k, v));
    HEED_ASSERT(NH > 0 && C % NH == 0);
    HEED_ASSERT(!mask || (mask->numel == (int64_t)B * S && mask->data));
    tensor *in[3] = {q, k, v};
    bool grad = graph_wants_grad(g, 3, in);
    attn_dims d = {B, T, S, C, NH, C, C, C, C};
    attn_core core = attention_run(g, q->data, k->data, v->data, mask, p_drop, grad, &d);
    if (grad) {
        attention_ctx *c = graph_record_claims(g, attention_backward_entry, sizeof *c, 3, in, 7u);
        *c = (attention_ctx){q, k, v, core, d};
    }
    if (probs_out)
        *probs_out = core.probs;
    return core.out;
}

/* ---- op_self_attention ------------------------------------------------- */

typedef struct self_attention_ctx {
    tensor *x, *w[3], *b[3];
    float *wqkv; /* (3C, C): wq, wk, wv stacked */
    float *qkv;  /* (N, 3C), N = B*T */
    float *dqkv; /* (N, 3C) scratch */
    float *dw;   /* (3C, C) scratch */
    attn_core core;
    attn_dims d;
} self_attention_ctx;

/* db (n) += column sums of g (rows, ld) */
HEED_SIMD_CLONES static void column_sums_add(float *db, const float *g, int64_t rows, int n,
                                             int ld) {
    for (int64_t r = 0; r < rows; r++) {
        const float *row = g + r * ld;
        for (int i = 0; i < n; i++)
            db[i] += row[i];
    }
}

static void self_attention_backward_entry(void *p) {
    self_attention_ctx *c = p;
    const attn_dims *d = &c->d;
    int C = d->C, C3 = 3 * C;
    int64_t N = (int64_t)d->B * d->T;
    float *dqkv = c->dqkv;
    /* every (b, h) block of dq, dk, dv is written once: set, no zero-fill */
    attention_backward(dqkv, dqkv + C, dqkv + 2 * C, true, true, true, c->core.scratch, c->core.kt,
                       c->core.out->grad, c->core.probs->data, c->core.keep, c->core.keep_scale,
                       c->qkv, c->qkv + C, c->qkv + 2 * C, d);
    if (c->w[0]->grad || c->w[1]->grad || c->w[2]->grad) {
        /* d[wq; wk; wv] (3C, C) = dqkv^T (3C, N) @ x (N, C) */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C3, C, (int)N, 1.0f, dqkv, C3,
                    c->x->data, C, 0.0f, c->dw, C);
        for (int j = 0; j < 3; j++) {
            float *gw = c->w[j]->grad;
            const float *dw = c->dw + (size_t)j * C * C;
            if (gw)
                for (int i = 0; i < C * C; i++)
                    gw[i] += dw[i];
        }
    }
    for (int j = 0; j < 3; j++)
        if (c->b[j] && c->b[j]->grad)
            column_sums_add(c->b[j]->grad, dqkv + j * C, N, C, C3);
    if (c->x->grad) {
        /* dx (N, C) (+)= dqkv (N, 3C) @ [wq; wk; wv] (3C, C) */
        float beta = graph_grad_claim(c->x) ? 0.0f : 1.0f;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, C, C3, 1.0f, dqkv, C3,
                    c->wqkv, C, beta, c->x->grad, C);
    }
}

tensor *op_self_attention(graph *g, tensor *x, tensor *const w[3], tensor *const b[3],
                          const tensor *mask, int NH, float p_drop, tensor **probs_out) {
    HEED_ASSERT(x->ndim == 3 && x->data);
    int B = x->shape[0], T = x->shape[1], C = x->shape[2];
    HEED_ASSERT(NH > 0 && C % NH == 0);
    HEED_ASSERT(!mask || (mask->numel == (int64_t)B * T && mask->data));
    for (int j = 0; j < 3; j++) {
        HEED_ASSERT(w[j]->ndim == 2 && w[j]->shape[0] == C && w[j]->shape[1] == C);
        HEED_ASSERT(!b[j] || b[j]->numel == C);
    }
    int C3 = 3 * C;
    int64_t N = (int64_t)B * T;
    tensor *in[7] = {x, w[0], w[1], w[2], b[0], b[1], b[2]};
    bool grad = graph_wants_grad(g, 7, in);
    arena *a = graph_arena(g);
    float *wqkv = arena_alloc(a, sizeof(float) * (size_t)C3 * C);
    float *bqkv = arena_alloc(a, sizeof(float) * (size_t)C3);
    for (int j = 0; j < 3; j++) {
        memcpy(wqkv + (size_t)j * C * C, w[j]->data, sizeof(float) * (size_t)C * C);
        if (b[j])
            memcpy(bqkv + (size_t)j * C, b[j]->data, sizeof(float) * C);
        else
            memset(bqkv + (size_t)j * C, 0, sizeof(float) * C);
    }
    /* qkv (N, 3C) = x (N, C) @ wqkv^T + bqkv */
    float *qkv = arena_alloc(a, sizeof(float) * (size_t)(N + 1) * C3);
    linear_forward(qkv, x->data, wqkv, bqkv, (int)N, C, C3);
    attn_dims d = {B, T, T, C, NH, C3, C3, C3, C};
    attn_core core = attention_run(g, qkv, qkv + C, qkv + 2 * C, mask, p_drop, grad, &d);
    if (grad) {
        self_attention_ctx *c =
            graph_record_claims(g, self_attention_backward_entry, sizeof *c, 7, in, 1u);
        *c = (self_attention_ctx){.x = x,
                                  .w = {w[0], w[1], w[2]},
                                  .b = {b[0], b[1], b[2]},
                                  .wqkv = wqkv,
                                  .qkv = qkv,
                                  .dqkv = arena_alloc(a, sizeof(float) * (size_t)(N + 1) * C3),
                                  .dw = arena_alloc(a, sizeof(float) * (size_t)C3 * C),
                                  .core = core,
                                  .d = d};
    }
    if (probs_out)
        *probs_out = core.probs;
    return core.out;
}
