/*
 * tower_classifier.c - the single-modality classifiers that are a tower
 * (tower.c) plus a linear head: `vit` (patch embedding, [CLS] token,
 * learned positions, pre-norm blocks; head on [CLS] or on the mean of the
 * tokens) and `transformer` (token embeddings plus learned positions,
 * pre-norm blocks, masked mean or [CLS] pooling). The same trunks serve the
 * fusion model, so a `vit` or `transformer` checkpoint initialises a tower.
 */
#include "models/tower.h"

#include "core/blocks.h"
#include "core/check.h"

#include <stdlib.h>
#include <string.h>

typedef struct tower_classifier {
    const tower_kind *tower;
    void *impl;
    linear_layer head;
    bool cls_pool;
} tower_classifier;

static void *tower_classifier_create(const char *tower, bool images, params *ps,
                                     const model_config *cfg, const data_shape *shape, char *err,
                                     size_t errlen) {
    const tower_kind *kind = tower_kind_find(tower, images);
    HEED_ASSERT(kind);
    int C = 0;
    void *impl = kind->create(ps, cfg, shape, &C, err, errlen);
    if (!impl)
        return NULL;
    tower_classifier *m = xcalloc(1, sizeof *m);
    m->tower = kind;
    m->impl = impl;
    linear_layer_init(&m->head, ps, "head", C, shape->num_classes, true);
    m->cls_pool = strcmp(cfg->pool, "cls") == 0;
    return m;
}

static void *vit_create(params *ps, const model_config *cfg, const data_shape *shape, char *err,
                        size_t errlen) {
    return tower_classifier_create("vit", true, ps, cfg, shape, err, errlen);
}

static void *transformer_create(params *ps, const model_config *cfg, const data_shape *shape,
                                char *err, size_t errlen) {
    return tower_classifier_create("transformer", false, ps, cfg, shape, err, errlen);
}

static tensor *tower_classifier_forward(void *impl, graph *g, const model_batch *batch,
                                        attention_sink *sink) {
    tower_classifier *m = impl;
    tower_out out = m->tower->encode(m->impl, g, batch, sink, "blocks.", true);
    int pool_token = m->cls_pool ? 0 : -1;
    if (m->tower->images)
        attention_sink_set_patches(sink, out.first, out.grid_h, out.grid_w, pool_token);
    else
        attention_sink_set_tokens(sink, pool_token);
    return linear_layer_forward(g, &m->head, out.pooled);
}

static void tower_classifier_destroy(void *impl) {
    tower_classifier *m = impl;
    m->tower->destroy(m->impl);
    free(m);
}

const model_kind model_kind_transformer = {
    .name = "transformer",
    .summary = "Transformer encoder text classifier (pre-norm, learned positions)",
    .options_help = "  --dim C (128) --depth N (2) --heads NH (4) --ffn F (4*dim) --max-len L "
                    "(dataset's)\n  --pool mean|cls (mean) --dropout P (0)",
    .needs_images = false,
    .needs_tokens = true,
    .create = transformer_create,
    .forward = tower_classifier_forward,
    .destroy = tower_classifier_destroy,
};

const model_kind model_kind_vit = {
    .name = "vit",
    .summary = "Vision Transformer (patch embedding, [CLS] token, pre-norm blocks)",
    .options_help = "  --dim C (128) --depth N (2) --heads NH (4) --ffn F (4*dim) --patch P (4)\n"
                    "  --pool cls|mean (mean) --dropout P (0)\n"
                    "  --augment (off) --crop-pad N (2) --flip (on)",
    .needs_images = true,
    .needs_tokens = false,
    .create = vit_create,
    .forward = tower_classifier_forward,
    .destroy = tower_classifier_destroy,
};
