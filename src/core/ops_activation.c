/*
 * ops_activation.c - ReLU, GELU (erf and tanh forms), tanh, sigmoid.
 *
 * Each op saves nothing but its input and output: the backward recomputes
 * from whichever gives the derivative cheaper (tanh and sigmoid from the
 * output, GELU from the input). No libm call sits in a loop: expf, erff and
 * tanhf are scalar calls in glibc and would stop the loops from vectorising,
 * so fastmath.h and tanh_approx below replace them (about 2 ulp).
 */
#include "core/ops.h"

#include "core/check.h"
#include "core/fastmath.h"
#include "core/gelu.h"

#include <math.h>

#define GELU_SQRT_2_OVER_PI 0.7978845608028654f
#define GELU_INV_SQRT_2 0.7071067811865476f
#define GELU_INV_SQRT_2PI 0.3989422804014327f
#define GELU_CUBIC 0.044715f

/* tanh(x), branch-free: Cephes' odd polynomial below |x| = 0.625, where
 * 1 - 2 / (e^2|x| + 1) would cancel, and that form above. */
static inline float tanh_approx(float x) {
    float ax = fabsf(x), x2 = x * x;
    float p = -5.70498872745e-3f;
    p = p * x2 + 2.06390887954e-2f;
    p = p * x2 - 5.37397155531e-2f;
    p = p * x2 + 1.33314422036e-1f;
    p = p * x2 - 3.33332819422e-1f;
    float small = p * x2 * x + x;
    float big = copysignf(1.0f - 2.0f / (fast_expf(2.0f * ax) + 1.0f), x);
    return ax < 0.625f ? small : big;
}

/* ---- relu ------------------------------------------------------------- */

/* out (N) = max(x, 0) */
HEED_SIMD_CLONES static void relu_forward(float *out, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        out[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

/* Every backward below writes dx (N) = v, or with `acc` dx += v: the first
 * writer of a lazily zeroed gradient overwrites it (graph.h). ACT_STORE
 * makes the choice once, outside the loop: a select inside it stops gcc
 * from vectorising. */
#define ACT_STORE(dst, v, acc)                                                                     \
    do {                                                                                           \
        if (acc)                                                                                   \
            for (int64_t i = 0; i < n; i++)                                                        \
                (dst)[i] += (v);                                                                   \
        else                                                                                       \
            for (int64_t i = 0; i < n; i++)                                                        \
                (dst)[i] = (v);                                                                    \
    } while (0)

/* dx (N) (+)= dout where x > 0 (0 at x == 0, as PyTorch) */
HEED_SIMD_CLONES static void relu_backward(float *dx, const float *dout, const float *x, int64_t n,
                                           bool acc) {
    ACT_STORE(dx, x[i] > 0.0f ? dout[i] : 0.0f, acc);
}

/* ---- gelu, exact: x * Phi(x) ------------------------------------------ */

HEED_SIMD_CLONES static void gelu_erf_forward(float *out, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        out[i] = 0.5f * x[i] * (1.0f + fast_erff(x[i] * GELU_INV_SQRT_2));
}

/* d/dx x Phi(x) = Phi(x) + x phi(x) */
static inline float gelu_erf_grad(float x) {
    float cdf = 0.5f * (1.0f + fast_erff(x * GELU_INV_SQRT_2));
    float pdf = GELU_INV_SQRT_2PI * fast_expf(-0.5f * x * x);
    return cdf + x * pdf;
}

HEED_SIMD_CLONES static void gelu_erf_backward(float *dx, const float *dout, const float *x,
                                               int64_t n, bool acc) {
    ACT_STORE(dx, dout[i] * gelu_erf_grad(x[i]), acc);
}

/* out (N) = x Phi(x), and x (N) := Phi(x) + x phi(x), its slope */
HEED_SIMD_CLONES static void gelu_erf_forward_slope(float *out, float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        out[i] = 0.5f * v * (1.0f + fast_erff(v * GELU_INV_SQRT_2));
        x[i] = gelu_erf_grad(v);
    }
}

/* ---- gelu, tanh approximation ----------------------------------------- */

/* 0.5 x (1 + tanh(u)) is x * sigmoid(2u): one exp, and no cancellation in
 * 1 + tanh(u) for negative x. u = sqrt(2/pi) (x + 0.044715 x^3). */
HEED_SIMD_CLONES static void gelu_tanh_forward(float *out, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float u = GELU_SQRT_2_OVER_PI * (x[i] + GELU_CUBIC * x[i] * x[i] * x[i]);
        out[i] = x[i] / (1.0f + fast_expf(-2.0f * u));
    }
}

/* d/dx x s(2u) = s + 2 x s (1 - s) du/dx, s = sigmoid(2u) */
static inline float gelu_tanh_grad(float x) {
    float x2 = x * x;
    float u = GELU_SQRT_2_OVER_PI * (x + GELU_CUBIC * x2 * x);
    float du = GELU_SQRT_2_OVER_PI * (1.0f + 3.0f * GELU_CUBIC * x2);
    float s = 1.0f / (1.0f + fast_expf(-2.0f * u));
    return s + 2.0f * x * s * (1.0f - s) * du;
}

HEED_SIMD_CLONES static void gelu_tanh_forward_slope(float *out, float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        float u = GELU_SQRT_2_OVER_PI * (v + GELU_CUBIC * v * v * v);
        out[i] = v / (1.0f + fast_expf(-2.0f * u));
        x[i] = gelu_tanh_grad(v);
    }
}

HEED_SIMD_CLONES static void gelu_tanh_backward(float *dx, const float *dout, const float *x,
                                                int64_t n, bool acc) {
    ACT_STORE(dx, dout[i] * gelu_tanh_grad(x[i]), acc);
}

/* ---- tanh ------------------------------------------------------------- */

HEED_SIMD_CLONES static void tanh_forward(float *out, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        out[i] = tanh_approx(x[i]);
}

/* dx (N) (+)= dout (1 - out^2) */
HEED_SIMD_CLONES static void tanh_backward(float *dx, const float *dout, const float *out,
                                           int64_t n, bool acc) {
    ACT_STORE(dx, dout[i] * (1.0f - out[i] * out[i]), acc);
}

/* ---- sigmoid ---------------------------------------------------------- */

/* fast_expf clamps its argument, so |x| > 87 saturates instead of giving
 * inf / inf. */
HEED_SIMD_CLONES static void sigmoid_forward(float *out, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        out[i] = 1.0f / (1.0f + fast_expf(-x[i]));
}

/* dx (N) (+)= dout out (1 - out) */
HEED_SIMD_CLONES static void sigmoid_backward(float *dx, const float *dout, const float *out,
                                              int64_t n, bool acc) {
    ACT_STORE(dx, dout[i] * out[i] * (1.0f - out[i]), acc);
}

/* ---- autograd wrappers ------------------------------------------------ */

typedef enum act_kind { ACT_RELU, ACT_GELU_ERF, ACT_GELU_TANH, ACT_TANH, ACT_SIGMOID } act_kind;

typedef struct act_ctx {
    tensor *out, *x;
    act_kind kind;
} act_ctx;

static void act_backward_entry(void *p) {
    act_ctx *c = p;
    float *dx = c->x->grad;
    if (!dx)
        return;
    const float *dout = c->out->grad, *x = c->x->data, *out = c->out->data;
    int64_t n = c->x->numel;
    bool acc = !graph_grad_claim(c->x);
    switch (c->kind) {
    case ACT_RELU:
        relu_backward(dx, dout, x, n, acc);
        break;
    case ACT_GELU_ERF:
        gelu_erf_backward(dx, dout, x, n, acc);
        break;
    case ACT_GELU_TANH:
        gelu_tanh_backward(dx, dout, x, n, acc);
        break;
    case ACT_TANH:
        tanh_backward(dx, dout, out, n, acc);
        break;
    case ACT_SIGMOID:
        sigmoid_backward(dx, dout, out, n, acc);
        break;
    }
}

static tensor *activation(graph *g, tensor *x, act_kind kind) {
    HEED_ASSERT(x->data);
    tensor *in[1] = {x};
    bool grad = graph_wants_grad(g, 1, in);
    tensor *out = graph_new_like(g, x, grad);
    float *o = out->data;
    int64_t n = x->numel;
    switch (kind) {
    case ACT_RELU:
        relu_forward(o, x->data, n);
        break;
    case ACT_GELU_ERF:
        gelu_erf_forward(o, x->data, n);
        break;
    case ACT_GELU_TANH:
        gelu_tanh_forward(o, x->data, n);
        break;
    case ACT_TANH:
        tanh_forward(o, x->data, n);
        break;
    case ACT_SIGMOID:
        sigmoid_forward(o, x->data, n);
        break;
    }
    if (grad) {
        act_ctx *c = graph_record_claims(g, act_backward_entry, sizeof *c, 1, in, 1u);
        *c = (act_ctx){out, x, kind};
    }
    return out;
}

tensor *op_relu(graph *g, tensor *x) {
    return activation(g, x, ACT_RELU);
}

tensor *op_gelu(graph *g, tensor *x, gelu_kind kind) {
    HEED_ASSERT(kind == GELU_ERF || kind == GELU_TANH);
    return activation(g, x, kind == GELU_TANH ? ACT_GELU_TANH : ACT_GELU_ERF);
}

void gelu_forward(float *out, const float *x, int64_t n, gelu_kind kind) {
    if (kind == GELU_TANH)
        gelu_tanh_forward(out, x, n);
    else
        gelu_erf_forward(out, x, n);
}

void gelu_forward_slope(float *out, float *x, int64_t n, gelu_kind kind) {
    if (kind == GELU_TANH)
        gelu_tanh_forward_slope(out, x, n);
    else
        gelu_erf_forward_slope(out, x, n);
}

tensor *op_tanh(graph *g, tensor *x) {
    return activation(g, x, ACT_TANH);
}

tensor *op_sigmoid(graph *g, tensor *x) {
    return activation(g, x, ACT_SIGMOID);
}
