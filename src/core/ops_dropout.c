/*
 * ops_dropout.c - inverted dropout with a mask keyed per sample.
 */
#include "core/ops.h"

#include "core/check.h"
#include "core/rng.h"

typedef struct dropout_ctx {
    tensor *out, *x;
    uint8_t *keep;
    float scale;
} dropout_ctx;

static void dropout_backward_entry(void *p) {
    dropout_ctx *c = p;
    for (int64_t i = 0; i < c->x->numel; i++)
        c->x->grad[i] += c->keep[i] ? c->out->grad[i] * c->scale : 0.0f;
}

tensor *op_dropout(graph *g, tensor *x, float p) {
    if (!graph_training(g) || p <= 0.0f)
        return x;
    HEED_ASSERT(p < 1.0f && x->ndim >= 1);
    tensor *in[1] = {x};
    bool grad = graph_wants_grad(g, 1, in);
    tensor *out = graph_new_like(g, x, grad);
    uint8_t *keep = arena_alloc(graph_arena(g), (size_t)x->numel + 1);
    uint64_t stream = graph_rng_stream(g);
    int B = x->shape[0];
    int64_t per_sample = B ? x->numel / B : 0;
    float scale = 1.0f / (1.0f - p);
    for (int b = 0; b < B; b++) {
        uint64_t key = rng_key(stream, (uint64_t)graph_sample_id(g, b), 0);
        int64_t base = b * per_sample;
        for (int64_t i = 0; i < per_sample; i++) {
            keep[base + i] = rng_uniform(key, (uint64_t)i) >= p;
            out->data[base + i] = keep[base + i] ? x->data[base + i] * scale : 0.0f;
        }
    }
    if (grad) {
        dropout_ctx *c = graph_record(g, dropout_backward_entry, sizeof *c, 1, in);
        *c = (dropout_ctx){out, x, keep, scale};
    }
    return out;
}
