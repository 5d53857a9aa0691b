/*
 * ops_mask.c - padding masks: which tokens are real, as int32 flags and as
 * an additive float mask for softmax/attention. Neither carries a gradient.
 */
#include "core/ops.h"

#include "core/check.h"

#include <math.h>

/* mask (B, T) = 0 where valid (B, T) != 0, -inf elsewhere */
static void mask_from_valid_forward(float *mask, const int32_t *valid, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        mask[i] = valid[i] ? 0.0f : -INFINITY;
}

/* valid (B, T) = ids (B, T) != pad_id */
static void valid_from_ids_forward(int32_t *valid, const int32_t *ids, int pad_id, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        valid[i] = ids[i] != pad_id;
}

tensor *mask_from_valid(graph *g, const tensor *valid) {
    HEED_ASSERT(valid->dtype == DTYPE_I32);
    tensor *mask = graph_new(g, DTYPE_F32, valid->ndim, valid->shape, false);
    mask_from_valid_forward(mask->data, valid->idata, valid->numel);
    return mask;
}

tensor *valid_from_ids(graph *g, const tensor *ids, int pad_id) {
    HEED_ASSERT(ids->dtype == DTYPE_I32);
    tensor *valid = graph_new(g, DTYPE_I32, ids->ndim, ids->shape, false);
    valid_from_ids_forward(valid->idata, ids->idata, pad_id, ids->numel);
    return valid;
}
