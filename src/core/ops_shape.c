/*
 * ops_shape.c - concat, split and token selection: copies between a tensor
 * and slices of another along one axis.
 *
 * Viewing a tensor as (outer, dim, inner) around the axis, a slice [lo, hi)
 * along it is `outer` blocks of (hi - lo) * inner contiguous floats.
 */
#include "core/ops.h"

#include "core/check.h"

#include <string.h>

typedef struct axis_view {
    int64_t outer, inner;
    int dim;
} axis_view;

static axis_view axis_view_of(const tensor *t, int axis) {
    axis_view v = {1, 1, t->shape[axis]};
    for (int i = 0; i < axis; i++)
        v.outer *= t->shape[i];
    for (int i = axis + 1; i < t->ndim; i++)
        v.inner *= t->shape[i];
    return v;
}

typedef enum slice_mode {
    SLICE_WHOLE_TO_PART, /* part = whole[:, lo:lo+len, :] */
    SLICE_PART_TO_WHOLE, /* whole[:, lo:lo+len, :] = part */
    SLICE_ADD_TO_PART,   /* part += whole[...] (concat backward) */
    SLICE_ADD_TO_WHOLE,  /* whole[...] += part (split backward) */
} slice_mode;

/* part is (outer, len, inner); whole is (outer, dim, inner). */
static void slice_copy(float *whole, float *part, axis_view v, int lo, int len, slice_mode mode) {
    int64_t n = (int64_t)len * v.inner;
    for (int64_t o = 0; o < v.outer; o++) {
        float *w = whole + (o * v.dim + lo) * v.inner;
        float *p = part + o * n;
        switch (mode) {
        case SLICE_WHOLE_TO_PART:
            memcpy(p, w, sizeof(float) * n);
            break;
        case SLICE_PART_TO_WHOLE:
            memcpy(w, p, sizeof(float) * n);
            break;
        case SLICE_ADD_TO_PART:
            for (int64_t i = 0; i < n; i++)
                p[i] += w[i];
            break;
        case SLICE_ADD_TO_WHOLE:
            for (int64_t i = 0; i < n; i++)
                w[i] += p[i];
            break;
        }
    }
}

static int normalise_axis(const tensor *t, int axis) {
    if (axis < 0)
        axis += t->ndim;
    HEED_ASSERT(axis >= 0 && axis < t->ndim);
    return axis;
}

typedef struct slice_ctx {
    tensor *whole, *part;
    axis_view v;
    int lo, len;
    slice_mode backward;
} slice_ctx;

static void slice_backward_entry(void *p) {
    slice_ctx *c = p;
    if (c->backward == SLICE_ADD_TO_WHOLE)
        slice_copy(c->whole->grad, c->part->grad, c->v, c->lo, c->len, SLICE_ADD_TO_WHOLE);
    else
        slice_copy(c->whole->grad, c->part->grad, c->v, c->lo, c->len, SLICE_ADD_TO_PART);
}

static void record_slice(graph *g, tensor *whole, tensor *part, axis_view v, int lo, int len,
                         slice_mode backward, tensor *input) {
    tensor *in[1] = {input};
    slice_ctx *c = graph_record(g, slice_backward_entry, sizeof *c, 1, in);
    *c = (slice_ctx){whole, part, v, lo, len, backward};
}

tensor *op_concat(graph *g, int n, tensor *const *xs, int axis) {
    HEED_ASSERT(n > 0);
    axis = normalise_axis(xs[0], axis);
    int shape[TENSOR_MAX_DIMS];
    memcpy(shape, xs[0]->shape, sizeof shape);
    shape[axis] = 0;
    for (int k = 0; k < n; k++) {
        HEED_ASSERT(xs[k]->ndim == xs[0]->ndim);
        for (int i = 0; i < xs[0]->ndim; i++)
            HEED_ASSERT(i == axis || xs[k]->shape[i] == xs[0]->shape[i]);
        shape[axis] += xs[k]->shape[axis];
    }
    bool grad = graph_wants_grad(g, n, xs);
    tensor *out = graph_new(g, DTYPE_F32, xs[0]->ndim, shape, grad);
    axis_view v = axis_view_of(out, axis);
    int lo = 0;
    for (int k = 0; k < n; k++) {
        int len = xs[k]->shape[axis];
        slice_copy(out->data, xs[k]->data, v, lo, len, SLICE_PART_TO_WHOLE);
        if (grad && xs[k]->grad)
            record_slice(g, out, xs[k], v, lo, len, SLICE_ADD_TO_PART, xs[k]);
        lo += len;
    }
    return out;
}

static tensor *slice_out(graph *g, tensor *x, int axis, int lo, int len, bool grad) {
    int shape[TENSOR_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[axis] = len;
    axis_view v = axis_view_of(x, axis);
    tensor *out = graph_new(g, DTYPE_F32, x->ndim, shape, grad);
    slice_copy(x->data, out->data, v, lo, len, SLICE_WHOLE_TO_PART);
    if (grad)
        record_slice(g, x, out, v, lo, len, SLICE_ADD_TO_WHOLE, x);
    return out;
}

void op_split(graph *g, tensor *x, int axis, int n, const int *sizes, tensor **out) {
    axis = normalise_axis(x, axis);
    tensor *in[1] = {x};
    bool grad = graph_wants_grad(g, 1, in);
    int lo = 0;
    for (int k = 0; k < n; k++) {
        out[k] = slice_out(g, x, axis, lo, sizes[k], grad);
        lo += sizes[k];
    }
    HEED_ASSERT(lo == x->shape[axis]);
}

tensor *op_select_token(graph *g, tensor *x, int t) {
    HEED_ASSERT(x->ndim == 3 && t >= 0 && t < x->shape[1]);
    tensor *in[1] = {x};
    tensor *tok = slice_out(g, x, 1, t, 1, graph_wants_grad(g, 1, in));
    return graph_reshape(g, tok, 2, (int[]){x->shape[0], x->shape[2]});
}
