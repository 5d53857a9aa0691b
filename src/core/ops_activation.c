/*
 * ops_activation.c - ReLU, GELU (erf and tanh forms), tanh, sigmoid.
 *
 * Each saves nothing but its input (and output where the derivative is
 * cheaper from it); the backward recomputes what it needs.
 */
#include "core/ops.h"

#include "core/check.h"
#include "core/fastmath.h"

#include <math.h>

typedef enum act_kind { ACT_RELU, ACT_GELU_ERF, ACT_GELU_TANH, ACT_TANH, ACT_SIGMOID } act_kind;

typedef struct act_ctx {
    tensor *out, *x;
    act_kind kind;
} act_ctx;

#define GELU_SQRT_2_OVER_PI 0.7978845608028654f
#define GELU_INV_SQRT_2 0.7071067811865476f
#define GELU_INV_SQRT_2PI 0.3989422804014327f

/* Cloned for AVX2 so the polynomial loops run 8 wide where the CPU allows,
 * while the binary still runs on any x86-64. */
__attribute__((target_clones("avx2", "default"))) static void
act_forward(float *out, const float *x, int64_t n, act_kind kind) {
    switch (kind) {
    case ACT_RELU:
        for (int64_t i = 0; i < n; i++)
            out[i] = x[i] > 0.0f ? x[i] : 0.0f;
        break;
    case ACT_GELU_ERF:
        for (int64_t i = 0; i < n; i++)
            out[i] = 0.5f * x[i] * (1.0f + fast_erff(x[i] * GELU_INV_SQRT_2));
        break;
    case ACT_GELU_TANH:
        for (int64_t i = 0; i < n; i++) {
            float u = GELU_SQRT_2_OVER_PI * (x[i] + 0.044715f * x[i] * x[i] * x[i]);
            out[i] = 0.5f * x[i] * (1.0f + tanhf(u));
        }
        break;
    case ACT_TANH:
        for (int64_t i = 0; i < n; i++)
            out[i] = tanhf(x[i]);
        break;
    case ACT_SIGMOID:
        for (int64_t i = 0; i < n; i++)
            out[i] = 1.0f / (1.0f + fast_expf(-x[i]));
        break;
    }
}

__attribute__((target_clones("avx2", "default"))) static void
act_backward(float *dx, const float *dout, const float *x, const float *out, int64_t n,
             act_kind kind) {
    switch (kind) {
    case ACT_RELU:
        for (int64_t i = 0; i < n; i++)
            dx[i] += x[i] > 0.0f ? dout[i] : 0.0f;
        break;
    case ACT_GELU_ERF:
        /* d/dx x*Phi(x) = Phi(x) + x*phi(x) */
        for (int64_t i = 0; i < n; i++) {
            float cdf = 0.5f * (1.0f + fast_erff(x[i] * GELU_INV_SQRT_2));
            float pdf = GELU_INV_SQRT_2PI * fast_expf(-0.5f * x[i] * x[i]);
            dx[i] += dout[i] * (cdf + x[i] * pdf);
        }
        break;
    case ACT_GELU_TANH:
        for (int64_t i = 0; i < n; i++) {
            float x3 = x[i] * x[i] * x[i];
            float t = tanhf(GELU_SQRT_2_OVER_PI * (x[i] + 0.044715f * x3));
            float du = GELU_SQRT_2_OVER_PI * (1.0f + 3.0f * 0.044715f * x[i] * x[i]);
            dx[i] += dout[i] * (0.5f * (1.0f + t) + 0.5f * x[i] * (1.0f - t * t) * du);
        }
        break;
    case ACT_TANH:
        for (int64_t i = 0; i < n; i++)
            dx[i] += dout[i] * (1.0f - out[i] * out[i]);
        break;
    case ACT_SIGMOID:
        for (int64_t i = 0; i < n; i++)
            dx[i] += dout[i] * out[i] * (1.0f - out[i]);
        break;
    }
}

static void act_backward_entry(void *p) {
    act_ctx *c = p;
    act_backward(c->x->grad, c->out->grad, c->x->data, c->out->data, c->x->numel, c->kind);
}

static tensor *activation(graph *g, tensor *x, act_kind kind) {
    tensor *in[1] = {x};
    bool grad = graph_wants_grad(g, 1, in);
    tensor *out = graph_new_like(g, x, grad);
    act_forward(out->data, x->data, x->numel, kind);
    if (grad) {
        act_ctx *c = graph_record(g, act_backward_entry, sizeof *c, 1, in);
        *c = (act_ctx){out, x, kind};
    }
    return out;
}

tensor *op_relu(graph *g, tensor *x) {
    return activation(g, x, ACT_RELU);
}

tensor *op_gelu(graph *g, tensor *x, gelu_kind kind) {
    return activation(g, x, kind == GELU_TANH ? ACT_GELU_TANH : ACT_GELU_ERF);
}

tensor *op_tanh(graph *g, tensor *x) {
    return activation(g, x, ACT_TANH);
}

tensor *op_sigmoid(graph *g, tensor *x) {
    return activation(g, x, ACT_SIGMOID);
}
