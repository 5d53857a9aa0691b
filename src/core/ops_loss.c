/*
 * ops_loss.c - cross-entropy from logits (fused log-softmax), accuracy, and
 * the padding masks derived from token ids.
 */
#include "core/ops.h"

#include "core/check.h"

#include <math.h>

typedef struct ce_ctx {
    tensor *out, *logits;
    const tensor *labels;
    float *lse; /* (N) log-sum-exp of each row */
    float smoothing;
    int N, K, counted;
} ce_ctx;

static void ce_backward_entry(void *p) {
    ce_ctx *c = p;
    if (!c->counted)
        return;
    int K = c->K;
    float scale = c->out->grad[0] / c->counted;
    float off = c->smoothing / K, on = 1.0f - c->smoothing + off;
    for (int n = 0; n < c->N; n++) {
        int y = c->labels->idata[n];
        if (y < 0)
            continue;
        const float *z = c->logits->data + (int64_t)n * K;
        float *dz = c->logits->grad + (int64_t)n * K;
        for (int k = 0; k < K; k++) {
            float prob = expf(z[k] - c->lse[n]);
            dz[k] += scale * (prob - (k == y ? on : off));
        }
    }
}

tensor *op_cross_entropy(graph *g, tensor *logits, const tensor *labels, float smoothing) {
    HEED_ASSERT(logits->ndim == 2 && labels->dtype == DTYPE_I32);
    int N = logits->shape[0], K = logits->shape[1];
    HEED_ASSERT(labels->numel == N);
    tensor *in[1] = {logits};
    bool grad = graph_wants_grad(g, 1, in);
    tensor *out = graph_new(g, DTYPE_F32, 1, (int[]){1}, grad);
    float *lse = arena_alloc(graph_arena(g), sizeof(float) * (N + 1));
    double total = 0.0;
    int counted = 0;
    for (int n = 0; n < N; n++) {
        const float *z = logits->data + (int64_t)n * K;
        float maxv = z[0];
        for (int k = 1; k < K; k++)
            maxv = z[k] > maxv ? z[k] : maxv;
        float sum = 0.0f;
        for (int k = 0; k < K; k++)
            sum += expf(z[k] - maxv);
        lse[n] = maxv + logf(sum);
        int y = labels->idata[n];
        if (y < 0)
            continue;
        HEED_ASSERT(y < K);
        float mean_nll = 0.0f;
        if (smoothing > 0.0f) {
            for (int k = 0; k < K; k++)
                mean_nll += lse[n] - z[k];
            mean_nll /= K;
        }
        total += (1.0f - smoothing) * (lse[n] - z[y]) + smoothing * mean_nll;
        counted++;
    }
    out->data[0] = counted ? (float)(total / counted) : 0.0f;
    if (grad) {
        ce_ctx *c = graph_record(g, ce_backward_entry, sizeof *c, 1, in);
        *c = (ce_ctx){out, logits, labels, lse, smoothing, N, K, counted};
    }
    return out;
}

int64_t count_correct(const tensor *logits, const tensor *labels) {
    int N = logits->shape[0], K = logits->shape[1];
    int64_t correct = 0;
    for (int n = 0; n < N; n++) {
        int y = labels->idata[n];
        if (y < 0)
            continue;
        const float *z = logits->data + (int64_t)n * K;
        int best = 0;
        for (int k = 1; k < K; k++)
            if (z[k] > z[best])
                best = k;
        correct += best == y;
    }
    return correct;
}

tensor *mask_from_valid(graph *g, const tensor *valid) {
    tensor *m = graph_new(g, DTYPE_F32, valid->ndim, valid->shape, false);
    for (int64_t i = 0; i < valid->numel; i++)
        m->data[i] = valid->idata[i] ? 0.0f : -INFINITY;
    return m;
}

tensor *valid_from_ids(graph *g, const tensor *ids, int pad_id) {
    tensor *v = graph_new(g, DTYPE_I32, ids->ndim, ids->shape, false);
    for (int64_t i = 0; i < ids->numel; i++)
        v->idata[i] = ids->idata[i] != pad_id;
    return v;
}
