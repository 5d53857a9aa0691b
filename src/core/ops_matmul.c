/*
 * ops_matmul.c - linear layers and batched matrix products on cblas_sgemm.
 */
#include "core/ops.h"

#include "core/check.h"
#include "core/gelu.h"
#include "core/linear.h"

#include <cblas.h>
#include <string.h>

/* ---- linear ---------------------------------------------------------- */

void linear_forward(float *out, const float *inp, const float *w, const float *b, int N, int C,
                    int OC) {
    if (b)
        for (int n = 0; n < N; n++)
            memcpy(out + (size_t)n * OC, b, sizeof(float) * OC);
    if (N > 0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1.0f, inp, C, w, C,
                    b ? 1.0f : 0.0f, out, OC);
}

/* dinp (N, C) = dinp_beta * dinp + dout @ w (dinp_beta 0: overwrite);
 * dw (OC, C) += dout^T @ inp; db (OC) += sum_n dout */
static void linear_backward(float *dinp, float dinp_beta, float *dw, float *db, const float *dout,
                            const float *inp, const float *w, int N, int C, int OC) {
    if (dinp)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, OC, 1.0f, dout, OC, w, C,
                    dinp_beta, dinp, C);
    if (dw)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f,
                    dw, C);
    if (db) {
        for (int n = 0; n < N; n++) {
            const float *row = dout + (size_t)n * OC;
            for (int o = 0; o < OC; o++)
                db[o] += row[o];
        }
    }
}

typedef struct linear_ctx {
    tensor *out, *x, *w, *b;
    int N, C, OC;
} linear_ctx;

static void linear_backward_entry(void *p) {
    linear_ctx *c = p;
    float beta = graph_grad_claim(c->x) ? 0.0f : 1.0f;
    linear_backward(c->x->grad, beta, c->w->grad, c->b ? c->b->grad : NULL, c->out->grad,
                    c->x->data, c->w->data, c->N, c->C, c->OC);
}

/* The output (..., OC) of x (..., C) through w (OC, C) and b (OC) or NULL,
 * after checking their shapes; *grad: whether a gradient flows. */
static tensor *linear_output(graph *g, tensor *x, tensor *w, tensor *b, int *N, int *C, int *OC,
                             bool *grad) {
    *C = tensor_cols(x);
    HEED_ASSERT(w->ndim == 2 && w->shape[1] == *C);
    *OC = w->shape[0];
    HEED_ASSERT(!b || (b->ndim == 1 && b->shape[0] == *OC));
    *N = (int)tensor_rows(x);
    int shape[TENSOR_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->ndim - 1] = *OC;
    tensor *in[3] = {x, w, b};
    *grad = graph_wants_grad(g, 3, in);
    return graph_new(g, DTYPE_F32, x->ndim, shape, *grad);
}

tensor *op_linear(graph *g, tensor *x, tensor *w, tensor *b) {
    int N, C, OC;
    bool grad;
    tensor *out = linear_output(g, x, w, b, &N, &C, &OC, &grad);
    tensor *in[3] = {x, w, b};
    linear_forward(out->data, x->data, w->data, b ? b->data : NULL, N, C, OC);
    if (grad) {
        /* claims x: its gradient is written by one sgemm, beta 0 or 1 */
        linear_ctx *c = graph_record_claims(g, linear_backward_entry, sizeof *c, 3, in, 1u);
        *c = (linear_ctx){out, x, w, b, N, C, OC};
    }
    return out;
}

/* ---- linear + GELU ---------------------------------------------------- */

/* The forward keeps GELU'(h) where the pre-activation h was, and the
 * backward forms dh = d(out) GELU'(h) in place of d(out), adding up the bias
 * gradient in the same pass: no pass over h with erf and exp in the
 * backward, no buffer for dh, no second pass for the bias. */
enum { LINEAR_GELU_BLOCK_FLOATS = 1 << 18 };

typedef struct linear_gelu_ctx {
    tensor *out, *x, *w, *b;
    float *slope; /* (N, OC) GELU'(h), in the arena */
    int N, C, OC;
} linear_gelu_ctx;

/* d (N, OC) *= slope; db (OC) += sum_n d, rows in order as linear_backward */
static void scale_rows_sum(float *d, const float *slope, float *db, int N, int OC) {
    for (int n = 0; n < N; n++) {
        float *row = d + (size_t)n * OC;
        const float *s = slope + (size_t)n * OC;
        for (int o = 0; o < OC; o++)
            row[o] *= s[o];
        if (db)
            for (int o = 0; o < OC; o++)
                db[o] += row[o];
    }
}

static void linear_gelu_backward_entry(void *p) {
    linear_gelu_ctx *c = p;
    /* Every reader of out's gradient ran before its producer: it is ours to
     * overwrite with dh. */
    float *dh = c->out->grad;
    scale_rows_sum(dh, c->slope, c->b ? c->b->grad : NULL, c->N, c->OC);
    float beta = graph_grad_claim(c->x) ? 0.0f : 1.0f;
    linear_backward(c->x->grad, beta, c->w->grad, NULL, dh, c->x->data, c->w->data, c->N, c->C,
                    c->OC);
}

tensor *op_linear_gelu(graph *g, tensor *x, tensor *w, tensor *b, gelu_kind kind) {
    HEED_ASSERT(kind == GELU_ERF || kind == GELU_TANH);
    int N, C, OC;
    bool grad;
    tensor *out = linear_output(g, x, w, b, &N, &C, &OC, &grad);
    tensor *in[3] = {x, w, b};
    /* Without a backward, h is the output itself and GELU runs in place. */
    float *h = grad ? arena_alloc(graph_arena(g), sizeof(float) * (size_t)out->numel) : out->data;
    /* By blocks of rows of about 1 MB (in L2), so GELU reads h as the sgemm
     * left it. Rows are independent: the same bits as one sgemm. */
    int R = LINEAR_GELU_BLOCK_FLOATS / OC > 0 ? LINEAR_GELU_BLOCK_FLOATS / OC : 1;
    for (int r0 = 0; r0 < N; r0 += R) {
        int r = N - r0 < R ? N - r0 : R;
        size_t off = (size_t)r0 * OC;
        linear_forward(h + off, x->data + (size_t)r0 * C, w->data, b ? b->data : NULL, r, C, OC);
        if (grad)
            gelu_forward_slope(out->data + off, h + off, (int64_t)r * OC, kind);
        else
            gelu_forward(out->data + off, h + off, (int64_t)r * OC, kind);
    }
    if (!grad)
        return out;
    /* claims x, as op_linear */
    linear_gelu_ctx *c = graph_record_claims(g, linear_gelu_backward_entry, sizeof *c, 3, in, 1u);
    *c = (linear_gelu_ctx){out, x, w, b, h, N, C, OC};
    return out;
}

/* ---- batched matmul --------------------------------------------------- */

typedef struct matmul_ctx {
    tensor *out, *a, *b;
    bool ta, tb;
    int batch, M, N, K;
} matmul_ctx;

/* out[i] (M, N) = op(a[i]) @ op(b[i]) (+ beta * out[i]) for each batch i. */
static void matmul_forward(float *out, const float *a, const float *b, bool ta, bool tb, int batch,
                           int M, int N, int K) {
    int lda = ta ? M : K, ldb = tb ? K : N;
    for (int i = 0; i < batch; i++)
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                    M, N, K, 1.0f, a + (size_t)i * M * K, lda, b + (size_t)i * K * N, ldb, 0.0f,
                    out + (size_t)i * M * N, N);
}

static void matmul_backward_entry(void *p) {
    matmul_ctx *c = p;
    int M = c->M, N = c->N, K = c->K;
    /* Claimed in the order written, so a @ a (one buffer) is right: for each
     * batch entry the da write (beta 0) precedes the db write (beta 1). */
    float beta_a = graph_grad_claim(c->a) ? 0.0f : 1.0f;
    float beta_b = graph_grad_claim(c->b) ? 0.0f : 1.0f;
    for (int i = 0; i < c->batch; i++) {
        const float *a = c->a->data + (size_t)i * M * K;
        const float *b = c->b->data + (size_t)i * K * N;
        const float *dout = c->out->grad + (size_t)i * M * N;
        if (c->a->grad) {
            float *da = c->a->grad + (size_t)i * M * K;
            /* A = op(a) (M,K): dA = dout @ op(b)^T. If ta, da (K,M) = op(b) @ dout^T. */
            if (!c->ta)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, c->tb ? CblasNoTrans : CblasTrans, M, K, N,
                            1.0f, dout, N, b, c->tb ? K : N, beta_a, da, K);
            else
                cblas_sgemm(CblasRowMajor, c->tb ? CblasTrans : CblasNoTrans, CblasTrans, K, M, N,
                            1.0f, b, c->tb ? K : N, dout, N, beta_a, da, M);
        }
        if (c->b->grad) {
            float *db = c->b->grad + (size_t)i * K * N;
            /* B = op(b) (K,N): dB = op(a)^T @ dout. If tb, db (N,K) = dout^T @ op(a). */
            if (!c->tb)
                cblas_sgemm(CblasRowMajor, c->ta ? CblasNoTrans : CblasTrans, CblasNoTrans, K, N, M,
                            1.0f, a, c->ta ? M : K, dout, N, beta_b, db, N);
            else
                cblas_sgemm(CblasRowMajor, CblasTrans, c->ta ? CblasTrans : CblasNoTrans, N, K, M,
                            1.0f, dout, N, a, c->ta ? M : K, beta_b, db, K);
        }
    }
}

tensor *op_matmul(graph *g, tensor *a, tensor *b, bool trans_a, bool trans_b) {
    HEED_ASSERT(a->ndim >= 2 && a->ndim == b->ndim);
    int nd = a->ndim;
    int batch = 1;
    for (int i = 0; i < nd - 2; i++) {
        HEED_ASSERT(a->shape[i] == b->shape[i]);
        batch *= a->shape[i];
    }
    int M = trans_a ? a->shape[nd - 1] : a->shape[nd - 2];
    int K = trans_a ? a->shape[nd - 2] : a->shape[nd - 1];
    int Kb = trans_b ? b->shape[nd - 1] : b->shape[nd - 2];
    int N = trans_b ? b->shape[nd - 2] : b->shape[nd - 1];
    HEED_ASSERT(K == Kb);
    int shape[TENSOR_MAX_DIMS];
    memcpy(shape, a->shape, sizeof shape);
    shape[nd - 2] = M;
    shape[nd - 1] = N;
    tensor *in[2] = {a, b};
    bool grad = graph_wants_grad(g, 2, in);
    tensor *out = graph_new(g, DTYPE_F32, nd, shape, grad);
    matmul_forward(out->data, a->data, b->data, trans_a, trans_b, batch, M, N, K);
    if (grad) {
        matmul_ctx *c = graph_record_claims(g, matmul_backward_entry, sizeof *c, 2, in, 3u);
        *c = (matmul_ctx){out, a, b, trans_a, trans_b, batch, M, N, K};
    }
    return out;
}
