/*
 * ops_elementwise.c - add, multiply, scale, bias and position broadcasts.
 *
 * Every kernel is a flat loop over contiguous memory so that it vectorises.
 * A bias (C) over rows of C and positions (T, C) over a batch of (T, C)
 * blocks are the same broadcast: a vector of `cols` added to each of `rows`
 * rows, so one kernel pair serves both with no modulo per element.
 */
#include "core/ops.h"

#include "core/check.h"

#include <string.h>

/* ---- shared pieces ---------------------------------------------------- */

/* dst (N) += src (N): the backward of every add-shaped op. */
static void accumulate(float *dst, const float *src, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        dst[i] += src[i];
}

typedef struct binary_ctx {
    tensor *out, *a, *b;
} binary_ctx;

/* ---- add -------------------------------------------------------------- */

/* out (N) = a + b */
static void add_forward(float *out, const float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        out[i] = a[i] + b[i];
}

/* d (N) = dout when `overwrite`, else d += dout; d may be NULL. */
static void add_backward_one(float *d, bool overwrite, const float *dout, int64_t n) {
    if (!d)
        return;
    if (overwrite)
        memcpy(d, dout, sizeof(float) * n);
    else
        accumulate(d, dout, n);
}

/* a's gradient is complete before b is claimed: when the op added a tensor
 * to itself, b's claim then says accumulate (graph.h). */
static void add_backward_entry(void *p) {
    binary_ctx *c = p;
    int64_t n = c->out->numel;
    add_backward_one(c->a->grad, graph_grad_claim(c->a), c->out->grad, n);
    add_backward_one(c->b->grad, graph_grad_claim(c->b), c->out->grad, n);
}

tensor *op_add(graph *g, tensor *a, tensor *b) {
    HEED_ASSERT(tensor_same_shape(a, b) && a->data && b->data);
    tensor *in[2] = {a, b};
    bool grad = graph_wants_grad(g, 2, in);
    tensor *out = graph_new_like(g, a, grad);
    add_forward(out->data, a->data, b->data, a->numel);
    if (grad) {
        binary_ctx *c = graph_record_claims(g, add_backward_entry, sizeof *c, 2, in, 3u);
        *c = (binary_ctx){out, a, b};
    }
    return out;
}

/* ---- mul -------------------------------------------------------------- */

/* out (N) = a * b */
static void mul_forward(float *out, const float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        out[i] = a[i] * b[i];
}

/* da (N) += dout * b; db (N) += dout * a. Two loops, not one, so that
 * op_mul(x, x) (da == db) accumulates both terms. */
static void mul_backward(float *da, float *db, const float *dout, const float *a, const float *b,
                         int64_t n) {
    if (da)
        for (int64_t i = 0; i < n; i++)
            da[i] += dout[i] * b[i];
    if (db)
        for (int64_t i = 0; i < n; i++)
            db[i] += dout[i] * a[i];
}

static void mul_backward_entry(void *p) {
    binary_ctx *c = p;
    mul_backward(c->a->grad, c->b->grad, c->out->grad, c->a->data, c->b->data, c->out->numel);
}

tensor *op_mul(graph *g, tensor *a, tensor *b) {
    HEED_ASSERT(tensor_same_shape(a, b) && a->data && b->data);
    tensor *in[2] = {a, b};
    bool grad = graph_wants_grad(g, 2, in);
    tensor *out = graph_new_like(g, a, grad);
    mul_forward(out->data, a->data, b->data, a->numel);
    if (grad) {
        binary_ctx *c = graph_record(g, mul_backward_entry, sizeof *c, 2, in);
        *c = (binary_ctx){out, a, b};
    }
    return out;
}

/* ---- scale ------------------------------------------------------------ */

typedef struct scale_ctx {
    tensor *out, *x;
    float s;
} scale_ctx;

/* out (N) = s * x */
static void scale_forward(float *out, const float *x, float s, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        out[i] = s * x[i];
}

/* dx (N) += s * dout */
static void scale_backward(float *dx, const float *dout, float s, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        dx[i] += s * dout[i];
}

static void scale_backward_entry(void *p) {
    scale_ctx *c = p;
    if (c->x->grad)
        scale_backward(c->x->grad, c->out->grad, c->s, c->out->numel);
}

tensor *op_scale(graph *g, tensor *x, float s) {
    HEED_ASSERT(x->data);
    tensor *in[1] = {x};
    bool grad = graph_wants_grad(g, 1, in);
    tensor *out = graph_new_like(g, x, grad);
    scale_forward(out->data, x->data, s, x->numel);
    if (grad) {
        scale_ctx *c = graph_record(g, scale_backward_entry, sizeof *c, 1, in);
        *c = (scale_ctx){out, x, s};
    }
    return out;
}

/* ---- row broadcast: bias and positions -------------------------------- */

typedef struct rowvec_ctx {
    tensor *out, *x, *v;
    int64_t rows, cols;
} rowvec_ctx;

/* out (rows, cols) = x + v, v (cols) repeated on every row */
static void rowvec_add_forward(float *out, const float *x, const float *v, int64_t rows,
                               int64_t cols) {
    for (int64_t r = 0; r < rows; r++)
        add_forward(out + r * cols, x + r * cols, v, cols);
}

/* dx (rows, cols) += dout; dv (cols) += sum over rows of dout. The row
 * loop is outside so dv stays in L1 while every row is added into it. */
static void rowvec_add_backward(float *dx, float *dv, const float *dout, int64_t rows,
                                int64_t cols) {
    if (dx)
        accumulate(dx, dout, rows * cols);
    if (dv)
        for (int64_t r = 0; r < rows; r++)
            accumulate(dv, dout + r * cols, cols);
}

static void rowvec_add_backward_entry(void *p) {
    rowvec_ctx *c = p;
    rowvec_add_backward(c->x->grad, c->v->grad, c->out->grad, c->rows, c->cols);
}

static tensor *rowvec_add(graph *g, tensor *x, tensor *v, int64_t rows, int64_t cols) {
    tensor *in[2] = {x, v};
    bool grad = graph_wants_grad(g, 2, in);
    tensor *out = graph_new_like(g, x, grad);
    rowvec_add_forward(out->data, x->data, v->data, rows, cols);
    if (grad) {
        rowvec_ctx *c = graph_record(g, rowvec_add_backward_entry, sizeof *c, 2, in);
        *c = (rowvec_ctx){out, x, v, rows, cols};
    }
    return out;
}

tensor *op_bias(graph *g, tensor *x, tensor *b) {
    HEED_ASSERT(x->ndim >= 1 && x->data && b->data);
    int C = tensor_cols(x);
    HEED_ASSERT(b->numel == C);
    return rowvec_add(g, x, b, tensor_rows(x), C);
}

tensor *op_add_positions(graph *g, tensor *x, tensor *pos) {
    /* x (B, T, C), pos (Tmax, C): pos[0:T] is its first T*C floats. */
    HEED_ASSERT(x->ndim == 3 && pos->ndim == 2 && x->data && pos->data);
    HEED_ASSERT(pos->shape[1] == x->shape[2] && pos->shape[0] >= x->shape[1]);
    int B = x->shape[0], T = x->shape[1], C = x->shape[2];
    return rowvec_add(g, x, pos, B, (int64_t)T * C);
}
