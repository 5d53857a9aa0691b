/*
 * tower.h - one modality's encoder inside a multi-modal model.
 *
 * A tower turns its part of the batch (the images or the tokens) into a
 * token sequence and a pooled vector, which is all a fusion model needs:
 *
 *   seq    (B, N, C)  the final token states (image patches, text tokens)
 *   valid  (B, N)     int32 1/0 per token, NULL when every token is real
 *   pooled (B, C)     what the single-modality classifier would read
 *   grid_h, grid_w    image towers: seq[:, first + i] is cell i of this grid
 *                     (row-major), for drawing attention; 0 for text
 *
 * Towers register their parameters under the caller's params scope with the
 * names of the single-modality model they come from ("patch_embed.weight",
 * "blocks.0.attn.q.weight"), so a fusion model that pushes the scope
 * "image" holds "image.patch_embed.weight" and can be initialised from a
 * "vit" checkpoint by stripping the prefix. To add a tower kind (ResNet,
 * BERT), write its create/encode/destroy and list it in tower.c.
 */
#ifndef HEED_MODELS_TOWER_H
#define HEED_MODELS_TOWER_H

#include "models/attention_sink.h"
#include "models/model.h"

typedef struct tower_out {
    tensor *seq;    /* (B, N, C) */
    tensor *valid;  /* (B, N) int32, or NULL: all valid */
    tensor *pooled; /* (B, C) */
    int first, grid_h, grid_w;
} tower_out;

typedef struct tower_kind {
    const char *name;
    bool images; /* reads batch->images; else batch->tokens */
    /* Registers parameters in ps (under its current scope); NULL with a
     * message in err when cfg or shape cannot be used. *width receives C. */
    void *(*create)(params *ps, const model_config *cfg, const data_shape *shape, int *width,
                    char *err, size_t errlen);
    /* Self-attention maps go to sink (may be NULL) as "<prefix><i>.attn";
     * the caller sets the sink's input layout. pooled_only says the caller
     * reads .pooled alone: with [CLS] pooling and no sink the last block
     * then runs at [CLS] only, and .seq is NULL. */
    tower_out (*encode)(void *impl, graph *g, const model_batch *batch, attention_sink *sink,
                        const char *sink_prefix, bool pooled_only);
    void (*destroy)(void *impl);
} tower_kind;

/* The image (images true) or text tower called `name`, or NULL. */
const tower_kind *tower_kind_find(const char *name, bool images);
/* "vit" or "transformer": the names tower_kind_find knows, for messages. */
const char *tower_kind_names(bool images);

#endif
