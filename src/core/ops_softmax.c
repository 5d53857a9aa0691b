/*
 * ops_softmax.c - softmax and log-softmax along the last dimension, with an
 * optional additive mask broadcast over groups of rows.
 */
#include "core/ops.h"

#include "core/check.h"

#include <math.h>
#include <string.h>

typedef struct softmax_ctx {
    tensor *out, *x;
    int64_t rows;
    int C;
    bool log;
} softmax_ctx;

/* out (R, C) = (log-)softmax(x + mask[r / per_mask]); a fully masked row
 * gives 0 (softmax) or -inf (log-softmax) and no NaN. */
static void softmax_forward(float *out, const float *x, const float *mask, int64_t rows, int C,
                            int64_t per_mask, bool log) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * C;
        const float *mr = mask ? mask + (r / per_mask) * C : NULL;
        float *o = out + r * C;
        float maxv = -INFINITY;
        for (int i = 0; i < C; i++) {
            float v = xr[i] + (mr ? mr[i] : 0.0f);
            o[i] = v;
            maxv = v > maxv ? v : maxv;
        }
        if (maxv == -INFINITY) {
            for (int i = 0; i < C; i++)
                o[i] = log ? -INFINITY : 0.0f;
            continue;
        }
        float sum = 0.0f;
        if (log) {
            for (int i = 0; i < C; i++)
                sum += expf(o[i] - maxv);
            float lse = maxv + logf(sum);
            for (int i = 0; i < C; i++)
                o[i] -= lse;
        } else {
            for (int i = 0; i < C; i++) {
                o[i] = expf(o[i] - maxv);
                sum += o[i];
            }
            float inv = 1.0f / sum;
            for (int i = 0; i < C; i++)
                o[i] *= inv;
        }
    }
}

static void softmax_backward(float *dx, const float *dout, const float *out, int64_t rows, int C,
                             bool log) {
    for (int64_t r = 0; r < rows; r++) {
        const float *d = dout + r * C, *o = out + r * C;
        float *dxr = dx + r * C;
        if (log) {
            /* dx = d - softmax * sum(d); masked entries (o = -inf) get 0 */
            if (o[0] == -INFINITY && C > 0) {
                bool all = true;
                for (int i = 0; i < C && all; i++)
                    all = o[i] == -INFINITY;
                if (all)
                    continue;
            }
            float sum = 0.0f;
            for (int i = 0; i < C; i++)
                sum += d[i];
            for (int i = 0; i < C; i++)
                dxr[i] += o[i] == -INFINITY ? 0.0f : d[i] - expf(o[i]) * sum;
        } else {
            float dot = 0.0f;
            for (int i = 0; i < C; i++)
                dot += d[i] * o[i];
            for (int i = 0; i < C; i++)
                dxr[i] += o[i] * (d[i] - dot);
        }
    }
}

static void softmax_backward_entry(void *p) {
    softmax_ctx *c = p;
    softmax_backward(c->x->grad, c->out->grad, c->out->data, c->rows, c->C, c->log);
}

static tensor *softmax_op(graph *g, tensor *x, const tensor *mask, bool log) {
    int C = tensor_cols(x);
    int64_t rows = tensor_rows(x);
    int64_t per_mask = rows;
    if (mask) {
        HEED_ASSERT(mask->data && tensor_cols(mask) == C);
        int64_t mrows = tensor_rows(mask);
        HEED_ASSERT(mrows > 0 && rows % mrows == 0);
        per_mask = rows / mrows;
    }
    tensor *in[1] = {x};
    bool grad = graph_wants_grad(g, 1, in);
    tensor *out = graph_new_like(g, x, grad);
    softmax_forward(out->data, x->data, mask ? mask->data : NULL, rows, C, per_mask ? per_mask : 1,
                    log);
    if (grad) {
        softmax_ctx *c = graph_record(g, softmax_backward_entry, sizeof *c, 1, in);
        *c = (softmax_ctx){out, x, rows, C, log};
    }
    return out;
}

tensor *op_softmax(graph *g, tensor *x, const tensor *mask) {
    return softmax_op(g, x, mask, false);
}

tensor *op_log_softmax(graph *g, tensor *x, const tensor *mask) {
    return softmax_op(g, x, mask, true);
}
