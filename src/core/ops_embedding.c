/*
 * ops_embedding.c - embedding lookup and fixed sinusoidal positions.
 */
#include "core/ops.h"

#include "core/check.h"

#include <math.h>
#include <string.h>

typedef struct embedding_ctx {
    tensor *out, *table;
    const tensor *ids;
} embedding_ctx;

/* Only the rows that were looked up receive gradient. */
static void embedding_backward_entry(void *p) {
    embedding_ctx *c = p;
    int C = c->table->shape[1];
    for (int64_t i = 0; i < c->ids->numel; i++) {
        float *dst = c->table->grad + (int64_t)c->ids->idata[i] * C;
        const float *src = c->out->grad + i * C;
        for (int j = 0; j < C; j++)
            dst[j] += src[j];
    }
}

tensor *op_embedding(graph *g, const tensor *ids, tensor *table) {
    HEED_ASSERT(ids->dtype == DTYPE_I32 && table->ndim == 2);
    HEED_ASSERT(ids->ndim < TENSOR_MAX_DIMS);
    int V = table->shape[0], C = table->shape[1];
    int shape[TENSOR_MAX_DIMS];
    for (int i = 0; i < ids->ndim; i++)
        shape[i] = ids->shape[i];
    shape[ids->ndim] = C;
    tensor *in[1] = {table};
    bool grad = graph_wants_grad(g, 1, in);
    tensor *out = graph_new(g, DTYPE_F32, ids->ndim + 1, shape, grad);
    for (int64_t i = 0; i < ids->numel; i++) {
        int32_t id = ids->idata[i];
        HEED_ASSERT(id >= 0 && id < V);
        memcpy(out->data + i * C, table->data + (int64_t)id * C, sizeof(float) * C);
    }
    if (grad) {
        embedding_ctx *c = graph_record(g, embedding_backward_entry, sizeof *c, 1, in);
        *c = (embedding_ctx){out, table, ids};
    }
    return out;
}

tensor *sinusoidal_positions(graph *g, int T, int C) {
    tensor *pe = graph_new(g, DTYPE_F32, 2, (int[]){T, C}, false);
    for (int t = 0; t < T; t++)
        for (int i = 0; i < C; i += 2) {
            double freq = pow(10000.0, -(double)i / C);
            pe->data[(int64_t)t * C + i] = (float)sin(t * freq);
            if (i + 1 < C)
                pe->data[(int64_t)t * C + i + 1] = (float)cos(t * freq);
        }
    return pe;
}
