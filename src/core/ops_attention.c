/*
 * ops_attention.c - fused multi-head scaled dot-product attention.
 *
 * Heads are views, not copies: head h of q (B, T, C) is the T x HS matrix at
 * q + b*T*C + h*HS with leading dimension C, which cblas_sgemm takes as is.
 * So the forward is, per (b, h), one sgemm for the scores, a masked softmax
 * in place, and one sgemm for the output; the backward is four sgemms.
 */
#include "core/ops.h"

#include "core/check.h"
#include "core/fastmath.h"
#include "core/rng.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

typedef struct attention_ctx {
    tensor *out, *q, *k, *v;
    float *probs;   /* (B, NH, T, S) softmax output */
    uint8_t *keep;  /* (B, NH, T, S) dropout mask, or NULL */
    float *scratch; /* (T, S): probs after dropout, then d(probs) */
    int B, T, S, C, NH;
    float p_drop;
} attention_ctx;

/* row (S) = softmax(row * scale + mask), in place; all-masked rows become 0. */
static void softmax_row_inplace(float *row, const float *mask, float scale, int S) {
    float maxv = -INFINITY;
    for (int s = 0; s < S; s++) {
        float x = row[s] * scale + (mask ? mask[s] : 0.0f);
        row[s] = x;
        maxv = x > maxv ? x : maxv;
    }
    if (maxv == -INFINITY) {
        memset(row, 0, sizeof(float) * S);
        return;
    }
    float sum = 0.0f;
    for (int s = 0; s < S; s++) {
        float e = fast_expf(row[s] - maxv);
        row[s] = e;
        sum += e;
    }
    float inv = 1.0f / sum;
    for (int s = 0; s < S; s++)
        row[s] *= inv;
}

/* out (B,T,C), probs (B,NH,T,S); q (B,T,C), k/v (B,S,C), mask (B,S) or NULL */
static void attention_forward(float *out, float *probs, float *scratch, const uint8_t *keep,
                              float keep_scale, const float *q, const float *k, const float *v,
                              const float *mask, int B, int T, int S, int C, int NH) {
    int HS = C / NH;
    float scale = 1.0f / sqrtf((float)HS);
    for (int b = 0; b < B; b++) {
        const float *mask_b = mask ? mask + (size_t)b * S : NULL;
        for (int h = 0; h < NH; h++) {
            const float *q_bh = q + (size_t)b * T * C + h * HS;
            const float *k_bh = k + (size_t)b * S * C + h * HS;
            const float *v_bh = v + (size_t)b * S * C + h * HS;
            float *p_bh = probs + ((size_t)b * NH + h) * T * S;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, S, HS, 1.0f, q_bh, C, k_bh, C,
                        0.0f, p_bh, S);
            for (int t = 0; t < T; t++)
                softmax_row_inplace(p_bh + (size_t)t * S, mask_b, scale, S);
            const float *pv = p_bh;
            if (keep) {
                const uint8_t *keep_bh = keep + ((size_t)b * NH + h) * T * S;
                for (int i = 0; i < T * S; i++)
                    scratch[i] = keep_bh[i] ? p_bh[i] * keep_scale : 0.0f;
                pv = scratch;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, HS, S, 1.0f, pv, S, v_bh, C,
                        0.0f, out + (size_t)b * T * C + h * HS, C);
        }
    }
}

/* dq, dk, dv += (or, with beta_* 0, =) the gradients of q, k, v. For each
 * (b, h) the writes go dv, dq, dk, so one buffer behind several of them is
 * right when only the first written has beta 0. */
static void attention_backward(float *dq, float *dk, float *dv, float beta_q, float beta_k,
                               float beta_v, float *dp, const float *dout, const float *probs,
                               const uint8_t *keep, float keep_scale, const float *q,
                               const float *k, const float *v, int B, int T, int S, int C, int NH) {
    int HS = C / NH;
    float scale = 1.0f / sqrtf((float)HS);
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < NH; h++) {
            size_t qo = (size_t)b * T * C + h * HS, ko = (size_t)b * S * C + h * HS;
            const float *p_bh = probs + ((size_t)b * NH + h) * T * S;
            const uint8_t *keep_bh = keep ? keep + ((size_t)b * NH + h) * T * S : NULL;
            const float *dout_bh = dout + qo;
            if (dv) {
                /* dv (S,HS) += dropout(p)^T (S,T) @ dout (T,HS) */
                const float *pv = p_bh;
                if (keep_bh) {
                    for (int i = 0; i < T * S; i++)
                        dp[i] = keep_bh[i] ? p_bh[i] * keep_scale : 0.0f;
                    pv = dp;
                }
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, S, HS, T, 1.0f, pv, S, dout_bh,
                            C, beta_v, dv + ko, C);
            }
            if (!dq && !dk)
                continue;
            /* dp (T,S) = dout (T,HS) @ v^T (HS,S) */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, S, HS, 1.0f, dout_bh, C, v + ko,
                        C, 0.0f, dp, S);
            /* through dropout, then softmax: ds = p * (dp - sum(dp * p)), times scale */
            for (int t = 0; t < T; t++) {
                float *dp_t = dp + (size_t)t * S;
                const float *p_t = p_bh + (size_t)t * S;
                if (keep_bh) {
                    const uint8_t *keep_t = keep_bh + (size_t)t * S;
                    for (int s = 0; s < S; s++)
                        dp_t[s] = keep_t[s] ? dp_t[s] * keep_scale : 0.0f;
                }
                float dot = 0.0f;
                for (int s = 0; s < S; s++)
                    dot += dp_t[s] * p_t[s];
                for (int s = 0; s < S; s++)
                    dp_t[s] = p_t[s] * (dp_t[s] - dot) * scale;
            }
            if (dq) /* dq (T,HS) += ds (T,S) @ k (S,HS) */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, HS, S, 1.0f, dp, S,
                            k + ko, C, beta_q, dq + qo, C);
            if (dk) /* dk (S,HS) += ds^T (S,T) @ q (T,HS) */
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, S, HS, T, 1.0f, dp, S, q + qo,
                            C, beta_k, dk + ko, C);
        }
    }
}

static void attention_backward_entry(void *p) {
    attention_ctx *c = p;
    float keep_scale = c->keep ? 1.0f / (1.0f - c->p_drop) : 1.0f;
    /* claimed in the order each (b, h) block is written: v, q, k */
    float beta_v = graph_grad_claim(c->v) ? 0.0f : 1.0f;
    float beta_q = graph_grad_claim(c->q) ? 0.0f : 1.0f;
    float beta_k = graph_grad_claim(c->k) ? 0.0f : 1.0f;
    attention_backward(c->q->grad, c->k->grad, c->v->grad, beta_q, beta_k, beta_v, c->scratch,
                       c->out->grad, c->probs, c->keep, keep_scale, c->q->data, c->k->data,
                       c->v->data, c->B, c->T, c->S, c->C, c->NH);
}

/* Dropout mask of the probabilities, keyed per sample like op_dropout. */
static void attention_draw_keep(graph *g, uint8_t *keep, float p, int B, int NH, int T, int S) {
    uint64_t stream = graph_rng_stream(g);
    int64_t per_sample = (int64_t)NH * T * S;
    for (int b = 0; b < B; b++) {
        uint64_t key = rng_key(stream, (uint64_t)graph_sample_id(g, b), 0);
        uint8_t *keep_b = keep + b * per_sample;
        for (int64_t i = 0; i < per_sample; i++)
            keep_b[i] = rng_uniform(key, (uint64_t)i) >= p;
    }
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
    arena *a = graph_arena(g);
    tensor *out = graph_new(g, DTYPE_F32, 3, (int[]){B, T, C}, grad);
    tensor *probs = graph_new(g, DTYPE_F32, 4, (int[]){B, NH, T, S}, false);
    bool dropout = graph_training(g) && p_drop > 0.0f;
    uint8_t *keep = NULL;
    if (dropout) {
        keep = arena_alloc(a, (size_t)B * NH * T * S);
        attention_draw_keep(g, keep, p_drop, B, NH, T, S);
    }
    float *scratch = arena_alloc(a, sizeof(float) * (size_t)T * S);
    float keep_scale = dropout ? 1.0f / (1.0f - p_drop) : 1.0f;
    attention_forward(out->data, probs->data, scratch, keep, keep_scale, q->data, k->data, v->data,
                      mask ? mask->data : NULL, B, T, S, C, NH);
    if (grad) {
        attention_ctx *c = graph_record_claims(g, attention_backward_entry, sizeof *c, 3, in, 7u);
        *c = (attention_ctx){out, q, k, v, probs->data, keep, scratch, B, T, S, C, NH, p_drop};
    }
    if (probs_out)
        *probs_out = probs;
    return out;
}
