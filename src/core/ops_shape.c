/*
 * ops_shape.c - concatenation, splitting and token selection.
 *
 * Along any axis a, a row-major tensor is an (outer, inner) matrix with
 * outer = prod(shape[:a]) and inner = prod(shape[a:]); concatenating or
 * splitting along a is then a strided copy of column blocks, whatever a is.
 */
#include "core/ops.h"

#include "core/check.h"

#include <string.h>

static int normalise_axis(int axis, int ndim) {
    int a = axis < 0 ? axis + ndim : axis;
    HEED_ASSERT(a >= 0 && a < ndim);
    return a;
}

static int64_t prod_dims(const int *shape, int from, int to) {
    int64_t p = 1;
    for (int i = from; i < to; i++)
        p *= shape[i];
    return p;
}

/* ---- concat ------------------------------------------------------------ */

typedef struct concat_ctx {
    tensor *out;
    int64_t outer, out_inner;
    int n;
    tensor *xs[]; /* n inputs */
} concat_ctx;

/* out (outer, out_inner)[:, off:off+inner] = x (outer, inner) */
static void concat_forward(float *out, const float *x, int64_t outer, int64_t inner,
                           int64_t out_inner, int64_t off) {
    for (int64_t o = 0; o < outer; o++)
        memcpy(out + o * out_inner + off, x + o * inner, sizeof(float) * inner);
}

/* dx (outer, inner) += dout (outer, out_inner)[:, off:off+inner] */
static void concat_backward(float *dx, const float *dout, int64_t outer, int64_t inner,
                            int64_t out_inner, int64_t off) {
    for (int64_t o = 0; o < outer; o++) {
        float *d = dx + o * inner;
        const float *s = dout + o * out_inner + off;
        for (int64_t i = 0; i < inner; i++)
            d[i] += s[i];
    }
}

static void concat_backward_entry(void *p) {
    concat_ctx *c = p;
    int64_t off = 0;
    for (int k = 0; k < c->n; k++) {
        tensor *x = c->xs[k];
        int64_t inner = x->numel / (c->outer ? c->outer : 1);
        if (x->grad)
            concat_backward(x->grad, c->out->grad, c->outer, inner, c->out_inner, off);
        off += inner;
    }
}

tensor *op_concat(graph *g, int n, tensor *const *xs, int axis) {
    HEED_ASSERT(n >= 1);
    int nd = xs[0]->ndim;
    int a = normalise_axis(axis, nd);
    int shape[TENSOR_MAX_DIMS];
    memcpy(shape, xs[0]->shape, sizeof shape);
    shape[a] = 0;
    for (int k = 0; k < n; k++) {
        HEED_ASSERT(xs[k]->dtype == DTYPE_F32 && xs[k]->ndim == nd);
        for (int i = 0; i < nd; i++)
            HEED_ASSERT(i == a || xs[k]->shape[i] == xs[0]->shape[i]);
        shape[a] += xs[k]->shape[a];
    }
    int64_t outer = prod_dims(shape, 0, a), out_inner = prod_dims(shape, a, nd);
    bool grad = graph_wants_grad(g, n, xs);
    tensor *out = graph_new(g, DTYPE_F32, nd, shape, grad);
    int64_t off = 0;
    for (int k = 0; k < n; k++) {
        int64_t inner = prod_dims(xs[k]->shape, a, nd);
        concat_forward(out->data, xs[k]->data, outer, inner, out_inner, off);
        off += inner;
    }
    if (grad) {
        concat_ctx *c =
            graph_record(g, concat_backward_entry, sizeof *c + sizeof(tensor *) * n, n, xs);
        c->out = out;
        c->outer = outer;
        c->out_inner = out_inner;
        c->n = n;
        memcpy(c->xs, xs, sizeof(tensor *) * n);
    }
    return out;
}

/* ---- split ------------------------------------------------------------- */

typedef struct split_ctx {
    tensor *out, *x;
    int64_t outer, inner, x_inner, off;
} split_ctx;

/* out (outer, inner) = x (outer, x_inner)[:, off:off+inner] */
static void split_forward(float *out, const float *x, int64_t outer, int64_t inner, int64_t x_inner,
                          int64_t off) {
    for (int64_t o = 0; o < outer; o++)
        memcpy(out + o * inner, x + o * x_inner + off, sizeof(float) * inner);
}

/* dx (outer, x_inner)[:, off:off+inner] += dout (outer, inner) */
static void split_backward(float *dx, const float *dout, int64_t outer, int64_t inner,
                           int64_t x_inner, int64_t off) {
    for (int64_t o = 0; o < outer; o++) {
        float *d = dx + o * x_inner + off;
        const float *s = dout + o * inner;
        for (int64_t i = 0; i < inner; i++)
            d[i] += s[i];
    }
}

static void split_backward_entry(void *p) {
    split_ctx *c = p;
    split_backward(c->x->grad, c->out->grad, c->outer, c->inner, c->x_inner, c->off);
}

void op_split(graph *g, tensor *x, int axis, int n, const int *sizes, tensor **out) {
    HEED_ASSERT(n >= 1 && x->dtype == DTYPE_F32);
    int nd = x->ndim;
    int a = normalise_axis(axis, nd);
    int total = 0;
    for (int k = 0; k < n; k++) {
        HEED_ASSERT(sizes[k] >= 0);
        total += sizes[k];
    }
    HEED_ASSERT(total == x->shape[a]);
    int64_t outer = prod_dims(x->shape, 0, a), x_inner = prod_dims(x->shape, a, nd);
    int64_t rest = prod_dims(x->shape, a + 1, nd);
    tensor *in[1] = {x};
    bool grad = graph_wants_grad(g, 1, in);
    int shape[TENSOR_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    int64_t off = 0;
    for (int k = 0; k < n; k++) {
        shape[a] = sizes[k];
        int64_t inner = sizes[k] * rest;
        out[k] = graph_new(g, DTYPE_F32, nd, shape, grad);
        split_forward(out[k]->data, x->data, outer, inner, x_inner, off);
        if (grad) {
            /* One entry per part: each part's gradient lands in its own slice,
             * so the entries are independent and their order is free. */
            split_ctx *c = graph_record(g, split_backward_entry, sizeof *c, 1, in);
            *c = (split_ctx){out[k], x, outer, inner, x_inner, off};
        }
        off += inner;
    }
}

/* ---- select token ------------------------------------------------------ */

typedef struct select_ctx {
    tensor *out, *x;
    int B, T, C, t;
} select_ctx;

/* out (B, C) = x (B, T, C)[:, t, :] */
static void select_token_forward(float *out, const float *x, int B, int T, int C, int t) {
    for (int b = 0; b < B; b++)
        memcpy(out + (size_t)b * C, x + ((size_t)b * T + t) * C, sizeof(float) * C);
}

/* dx (B, T, C)[:, t, :] += dout (B, C) */
static void select_token_backward(float *dx, const float *dout, int B, int T, int C, int t) {
    for (int b = 0; b < B; b++) {
        float *d = dx + ((size_t)b * T + t) * C;
        const float *s = dout + (size_t)b * C;
        for (int c = 0; c < C; c++)
            d[c] += s[c];
    }
}

static void select_backward_entry(void *p) {
    select_ctx *c = p;
    select_token_backward(c->x->grad, c->out->grad, c->B, c->T, c->C, c->t);
}

tensor *op_select_token(graph *g, tensor *x, int t) {
    HEED_ASSERT(x->ndim == 3 && x->dtype == DTYPE_F32);
    int B = x->shape[0], T = x->shape[1], C = x->shape[2];
    /* Negative t counts from the end: -1 is the last token (RNN pooling). */
    if (t < 0)
        t += T;
    HEED_ASSERT(t >= 0 && t < T);
    tensor *in[1] = {x};
    bool grad = graph_wants_grad(g, 1, in);
    tensor *out = graph_new(g, DTYPE_F32, 2, (int[]){B, C}, grad);
    select_token_forward(out->data, x->data, B, T, C, t);
    if (grad) {
        select_ctx *c = graph_record(g, select_backward_entry, sizeof *c, 1, in);
        *c = (select_ctx){out, x, B, T, C, t};
    }
    return out;
}
