/*
 * vit.c - Vision Transformer: P x P patches embedded linearly, a [CLS]
 * token, learned positions, pre-norm encoder blocks, a head on [CLS] (or on
 * the mean of the patch tokens).
 */
#include "models/attention_sink.h"
#include "models/encoder_stack.h"

#include "core/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct vit {
    linear_layer patch_embed;
    tensor *cls_token, *pos_emb;
    encoder_stack enc;
    linear_layer head;
    int patch;
    bool cls_pool;
    float dropout;
} vit;

static void *vit_create(params *ps, const model_config *cfg, const data_shape *shape, char *err,
                        size_t errlen) {
    if (!encoder_config_check(cfg, err, errlen))
        return NULL;
    int P = cfg->patch;
    if (P <= 0 || shape->height % P || shape->width % P) {
        snprintf(err, errlen, "--patch %d must divide the image size %dx%d", P, shape->height,
                 shape->width);
        return NULL;
    }
    bool cls = strcmp(cfg->pool, "cls") == 0;
    if (!cls && strcmp(cfg->pool, "mean") != 0) {
        snprintf(err, errlen, "--pool must be mean or cls, got '%s'", cfg->pool);
        return NULL;
    }
    vit *m = xcalloc(1, sizeof *m);
    int C = cfg->dim, NP = (shape->height / P) * (shape->width / P);
    linear_layer_init(&m->patch_embed, ps, "patch_embed", shape->channels * P * P, C, true);
    m->cls_token = params_add(ps, "cls_token", PARAM_INIT(INIT_TRUNC_NORMAL, 0.02f), 1, (int[]){C});
    m->pos_emb = params_add(ps, "pos_emb.weight", PARAM_INIT(INIT_TRUNC_NORMAL, 0.02f), 2,
                            (int[]){NP + 1, C});
    encoder_block_config bc = encoder_config_from(cfg, true);
    encoder_stack_init(&m->enc, ps, &bc, cfg->depth);
    linear_layer_init(&m->head, ps, "head", C, shape->num_classes, true);
    m->patch = P;
    m->cls_pool = cls;
    m->dropout = cfg->dropout;
    return m;
}

static tensor *vit_forward(void *impl, graph *g, const model_batch *batch, attention_sink *sink) {
    vit *m = impl;
    HEED_ASSERT(batch->images && batch->images->ndim == 4);
    tensor *x = linear_layer_forward(g, &m->patch_embed, op_patchify(g, batch->images, m->patch));
    x = op_prepend_token(g, x, m->cls_token);
    x = op_dropout(g, op_add_positions(g, x, m->pos_emb), m->dropout);
    tensor *probs[ATTENTION_SINK_MAX];
    HEED_ASSERT(m->enc.depth <= ATTENTION_SINK_MAX);
    x = encoder_stack_forward(g, &m->enc, x, NULL, sink ? probs : NULL);
    attention_sink_put_stack(sink, "blocks.", probs, m->enc.depth);
    int P = m->patch;
    attention_sink_set_patches(sink, 1, batch->images->shape[2] / P, batch->images->shape[3] / P,
                               m->cls_pool ? 0 : -1);
    tensor *pooled = m->cls_pool ? op_select_token(g, x, 0) : op_masked_mean(g, x, NULL);
    return linear_layer_forward(g, &m->head, pooled);
}

static void vit_destroy(void *impl) {
    vit *m = impl;
    encoder_stack_free(&m->enc);
    free(m);
}

const model_kind model_kind_vit = {
    .name = "vit",
    .summary = "Vision Transformer (patch embedding, [CLS] token, pre-norm blocks)",
    .options_help = "  --dim C (128) --depth N (2) --heads NH (4) --ffn F (4*dim) --patch P (4)\n"
                    "  --pool cls|mean (mean) --dropout P (0)",
    .needs_images = true,
    .needs_tokens = false,
    .create = vit_create,
    .forward = vit_forward,
    .destroy = vit_destroy,
};
