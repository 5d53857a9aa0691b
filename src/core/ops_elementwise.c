/*
 * ops_elementwise.c - add, multiply, scale, bias and position broadcasts.
 */
#include "core/ops.h"

#include "core/check.h"

#include <string.h>

typedef struct binary_ctx {
    tensor *out, *a, *b;
    float s;
} binary_ctx;

static void add_backward_entry(void *p) {
    binary_ctx *c = p;
    const float *dout = c->out->grad;
    int64_t n = c->out->numel;
    if (c->a->grad)
        for (int64_t i = 0; i < n; i++)
            c->a->grad[i] += dout[i];
    if (c->b->grad)
        for (int64_t i = 0; i < n; i++)
            c->b->grad[i] += dout[i];
}

tensor *op_add(graph *g, tensor *a, tensor *b) {
    HEED_ASSERT(a->numel == b->numel);
    tensor *in[2] = {a, b};
    bool grad = graph_wants_grad(g, 2, in);
    tensor *out = graph_new_like(g, a, grad);
    for (int64_t i = 0; i < a->numel; i++)
        out->data[i] = a->data[i] + b->data[i];
    if (grad) {
        binary_ctx *c = graph_record(g, add_backward_entry, sizeof *c, 2, in);
        *c = (binary_ctx){out, a, b, 0};
    }
    return out;
}

static void mul_backward_entry(void *p) {
    binary_ctx *c = p;
    const float *dout = c->out->grad;
    int64_t n = c->out->numel;
    if (c->a->grad)
        for (int64_t i = 0; i < n; i++)
            c->a->grad[i] += dout[i] * c->b->data[i];
    if (c->b->grad)
        for (int64_t i = 0; i < n; i++)
            c->b->grad[i] += dout[i] * c->a->data[i];
}

tensor *op_mul(graph *g, tensor *a, tensor *b) {
    HEED_ASSERT(a->numel == b->numel);
    tensor *in[2] = {a, b};
    bool grad = graph_wants_grad(g, 2, in);
    tensor *out = graph_new_like(g, a, grad);
    for (int64_t i = 0; i < a->numel; i++)
        out->data[i] = a->data[i] * b->data[i];
    if (grad) {
        binary_ctx *c = graph_record(g, mul_backward_entry, sizeof *c, 2, in);
        *c = (binary_ctx){out, a, b, 0};
    }
    return out;
}

static void scale_backward_entry(void *p) {
    binary_ctx *c = p;
    for (int64_t i = 0; i < c->out->numel; i++)
        c->a->grad[i] += c->s * c->out->grad[i];
}

tensor *op_scale(graph *g, tensor *x, float s) {
    tensor *in[1] = {x};
    bool grad = graph_wants_grad(g, 1, in);
    tensor *out = graph_new_like(g, x, grad);
    for (int64_t i = 0; i < x->numel; i++)
        out->data[i] = s * x->data[i];
    if (grad) {
        binary_ctx *c = graph_record(g, scale_backward_entry, sizeof *c, 1, in);
        *c = (binary_ctx){out, x, NULL, s};
    }
    return out;
}

/* out (R, C) = x (R, C) + row-broadcast v (P, C): row r uses v[r % period].
 * Bias: period 1. Positions of x (B, T, C): period T, rows of v beyond T unused. */
typedef struct broadcast_ctx {
    tensor *out, *x, *v;
    int64_t rows;
    int C, period;
} broadcast_ctx;

static void broadcast_add_forward(float *out, const float *x, const float *v, int64_t rows, int C,
                                  int period) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * C, *vr = v + (r % period) * C;
        float *o = out + r * C;
        for (int i = 0; i < C; i++)
            o[i] = xr[i] + vr[i];
    }
}

static void broadcast_add_backward_entry(void *p) {
    broadcast_ctx *c = p;
    const float *dout = c->out->grad;
    int C = c->C;
    if (c->x->grad)
        for (int64_t i = 0; i < c->rows * C; i++)
            c->x->grad[i] += dout[i];
    if (c->v->grad)
        for (int64_t r = 0; r < c->rows; r++) {
            float *dv = c->v->grad + (r % c->period) * C;
            const float *d = dout + r * C;
            for (int i = 0; i < C; i++)
                dv[i] += d[i];
        }
}

static tensor *broadcast_add(graph *g, tensor *x, tensor *v, int period) {
    tensor *in[2] = {x, v};
    bool grad = graph_wants_grad(g, 2, in);
    tensor *out = graph_new_like(g, x, grad);
    int C = tensor_cols(x);
    int64_t rows = tensor_rows(x);
    broadcast_add_forward(out->data, x->data, v->data, rows, C, period);
    if (grad) {
        broadcast_ctx *c = graph_record(g, broadcast_add_backward_entry, sizeof *c, 2, in);
        *c = (broadcast_ctx){out, x, v, rows, C, period};
    }
    return out;
}

tensor *op_bias(graph *g, tensor *x, tensor *b) {
    HEED_ASSERT(b->numel == tensor_cols(x));
    return broadcast_add(g, x, b, 1);
}

tensor *op_add_positions(graph *g, tensor *x, tensor *pos) {
    HEED_ASSERT(x->ndim == 3 && pos->ndim == 2 && pos->shape[1] == x->shape[2]);
    HEED_ASSERT(pos->shape[0] >= x->shape[1]);
    return broadcast_add(g, x, pos, x->shape[1]);
}
