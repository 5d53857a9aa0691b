/*
 * ops_softmax.c - softmax and log-softmax along the last dimension, with an
 * optional additive mask broadcast over groups of rows.
 *
 * Rows are (R, C); mask row m serves the R / M consecutive rows
 * [m * R/M, (m+1) * R/M), so a (B, S) key-padding mask serves scores
 * (B, NH, T, S). A row whose every entry is -inf after the mask has no
 * distribution: it yields zeros in both ops and passes no gradient, where
 * PyTorch would give NaN.
 *
 * Reductions run in 8 independent partial sums (or maxima), lanes.h,
 * combined in a fixed order: gcc vectorises them without reassociating, and
 * the result is the same on every CPU whatever its vector width.
 */
#include "core/ops.h"

#include "core/check.h"
#include "core/fastmath.h"
#include "core/lanes.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Below this, e^x is under FLT_MIN relative to the row maximum's 1: such an
 * entry (and every -inf one) gets an exact 0 rather than fast_expf's clamped
 * e^-87. */
#define SOFTMAX_EXP_FLOOR (-87.0f)

static inline float exp_or_zero(float d) {
    return d < SOFTMAX_EXP_FLOOR ? 0.0f : fast_expf(d);
}

/* sum of e^(v - maxv) over v (n) */
static inline float lanes_sum_exp(const float *v, float maxv, int n) {
    lanes8 s = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        float e[8];
        for (int j = 0; j < 8; j++)
            e[j] = exp_or_zero(v[i + j] - maxv);
        lanes8 t;
        lanes8_load(&t, e);
        s += t;
    }
    for (; i < n; i++)
        s[0] += exp_or_zero(v[i] - maxv);
    return lanes8_sum(&s);
}

/* out (C) = softmax(x + mask) (log-softmax when `as_log`), mask (C) or NULL.
 * Returns false, with out zeroed, when every entry is -inf. */
static inline bool softmax_row_forward(float *out, const float *x, const float *mask, int C,
                                       bool as_log) {
    if (mask)
        for (int i = 0; i < C; i++)
            out[i] = x[i] + mask[i];
    else
        memcpy(out, x, sizeof(float) * C);
    float maxv = lanes8_row_max(out, C);
    if (maxv == -INFINITY) {
        memset(out, 0, sizeof(float) * C);
        return false;
    }
    if (as_log) {
        /* (x - max) - log(sum), not x - (max + log(sum)): x - max is exact,
         * and the second form loses digits when |max| >> log(sum) */
        float log_sum = logf(lanes_sum_exp(out, maxv, C));
        for (int i = 0; i < C; i++)
            out[i] = (out[i] - maxv) - log_sum;
    } else {
        for (int i = 0; i < C; i++)
            out[i] = exp_or_zero(out[i] - maxv);
        float inv = 1.0f / lanes8_row_sum(out, C);
        for (int i = 0; i < C; i++)
            out[i] *= inv;
    }
    return true;
}

/* out (R, C) = (log-)softmax(x + mask[r / per_mask]); mask (R / per_mask, C)
 * or NULL. live (R), when not NULL, gets 0 for the rows that were entirely
 * -inf and 1 for the others. */
HEED_SIMD_CLONES static void softmax_forward(float *out, uint8_t *live, const float *x,
                                             const float *mask, int64_t rows, int C,
                                             int64_t per_mask, bool as_log) {
    /* rows in groups that share a mask row: no division per row */
    for (int64_t r0 = 0, m = 0; r0 < rows; r0 += per_mask, m++) {
        const float *mr = mask ? mask + m * C : NULL;
        for (int64_t r = r0; r < r0 + per_mask; r++) {
            bool ok = softmax_row_forward(out + r * C, x + r * C, mr, C, as_log);
            if (live)
                live[r] = ok;
        }
    }
}

/* softmax: dx (C) += y (dy - <dy, y>). A dead row has y = 0 and adds 0. */
static inline void softmax_row_backward(float *dx, const float *dy, const float *y, int C) {
    float dot = lanes8_row_dot(dy, y, C);
    for (int i = 0; i < C; i++)
        dx[i] += y[i] * (dy[i] - dot);
}

/* log-softmax: dx (C) += dy - e^y sum(dy). Entries the mask removed (y =
 * -inf) get dy as in PyTorch: d(x_i + mask_i - lse)/dx_i = 1. */
static inline void log_softmax_row_backward(float *dx, const float *dy, const float *y, int C) {
    float sum = lanes8_row_sum(dy, C);
    for (int i = 0; i < C; i++)
        dx[i] += dy[i] - exp_or_zero(y[i]) * sum;
}

/* dx (R, C) += d(out)/dx^T dout; live (R) as written by softmax_forward
 * (only read for log-softmax, whose dead rows hold zeros, not -inf). */
HEED_SIMD_CLONES static void softmax_backward(float *dx, const float *dout, const float *out,
                                              const uint8_t *live, int64_t rows, int C,
                                              bool as_log) {
    for (int64_t r = 0; r < rows; r++) {
        if (as_log) {
            if (live[r])
                log_softmax_row_backward(dx + r * C, dout + r * C, out + r * C, C);
        } else {
            softmax_row_backward(dx + r * C, dout + r * C, out + r * C, C);
        }
    }
}

typedef struct softmax_ctx {
    tensor *out, *x;
    uint8_t *live; /* (R), log-softmax only */
    int64_t rows;
    int C;
    bool as_log;
} softmax_ctx;

static void softmax_backward_entry(void *p) {
    softmax_ctx *c = p;
    if (c->x->grad)
        softmax_backward(c->x->grad, c->out->grad, c->out->data, c->live, c->rows, c->C, c->as_log);
}

static tensor *softmax_op(graph *g, tensor *x, const tensor *mask, bool as_log) {
    HEED_ASSERT(x->ndim >= 1 && x->data);
    int C = tensor_cols(x);
    int64_t rows = tensor_rows(x);
    int64_t per_mask = rows > 0 ? rows : 1;
    if (mask) {
        HEED_ASSERT(mask->data && mask->ndim >= 1 && tensor_cols(mask) == C);
        int64_t mrows = tensor_rows(mask);
        HEED_ASSERT(mrows > 0 && rows % mrows == 0);
        if (rows > 0)
            per_mask = rows / mrows;
    }
    tensor *in[1] = {x};
    bool grad = graph_wants_grad(g, 1, in);
    tensor *out = graph_new_like(g, x, grad);
    /* only log-softmax needs to tell a dead row (zeros) from a live one */
    uint8_t *live = grad && as_log ? arena_alloc(graph_arena(g), (size_t)rows + 1) : NULL;
    softmax_forward(out->data, live, x->data, mask ? mask->data : NULL, rows, C, per_mask, as_log);
    if (grad) {
        softmax_ctx *c = graph_record(g, softmax_backward_entry, sizeof *c, 1, in);
        *c = (softmax_ctx){out, x, live, rows, C, as_log};
    }
    return out;
}

tensor *op_softmax(graph *g, tensor *x, const tensor *mask) {
    return softmax_op(g, x, mask, false);
}

tensor *op_log_softmax(graph *g, tensor *x, const tensor *mask) {
    return softmax_op(g, x, mask, true);
}
