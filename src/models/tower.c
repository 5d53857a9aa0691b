/*
 * tower.c - the tower kinds: a ViT image tower and a Transformer text tower.
 *
 * Each is the trunk of the single-modality model of the same name: `vit`
 * and `transformer` are these towers plus a linear head
 * (tower_classifier.c), so their checkpoints initialise a tower. The layers
 * themselves are the shared blocks (encoder_stack.c, blocks.c).
 */
#include "models/tower.h"

#include "models/cnn_common.h"
#include "models/encoder_stack.h"

#include "core/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool pool_parse(const model_config *cfg, bool *cls, char *err, size_t errlen) {
    *cls = strcmp(cfg->pool, "cls") == 0;
    if (!*cls && cfg->pool[0] && strcmp(cfg->pool, "mean") != 0) {
        snprintf(err, errlen, "--pool must be mean or cls, got '%s'", cfg->pool);
        return false;
    }
    return true;
}

/* The final state of token 0 ([CLS]), (B, C), with the last block run at
 * that token only: what [CLS] pooling reads, without the rest of the
 * sequence's last-block work. */
static tensor *cls_state(graph *g, const encoder_stack *enc, tensor *x, const tensor *mask) {
    return op_select_token(g, encoder_stack_forward_token(g, enc, x, mask, 0), 0);
}

/* ---- ViT image tower ------------------------------------------------- */

typedef struct vit_tower {
    linear_layer patch_embed;
    tensor *cls_token, *pos_emb;
    encoder_stack enc;
    int patch;
    bool cls_pool;
    float dropout;
    cnn_augment aug;
} vit_tower;

static void *vit_tower_create(params *ps, const model_config *cfg, const data_shape *shape,
                              int *width, char *err, size_t errlen) {
    bool cls;
    cnn_augment aug;
    if (!encoder_config_check(cfg, err, errlen) || !pool_parse(cfg, &cls, err, errlen) ||
        !cnn_config_check(cfg, shape, &aug, err, errlen))
        return NULL;
    int P = cfg->patch;
    if (P <= 0 || shape->height % P || shape->width % P) {
        snprintf(err, errlen, "--patch %d must divide the image size %dx%d", P, shape->height,
                 shape->width);
        return NULL;
    }
    vit_tower *t = xcalloc(1, sizeof *t);
    int C = cfg->dim, NP = (shape->height / P) * (shape->width / P);
    linear_layer_init(&t->patch_embed, ps, "patch_embed", shape->channels * P * P, C, true);
    t->cls_token = params_add(ps, "cls_token", PARAM_INIT(INIT_TRUNC_NORMAL, 0.02f), 1, (int[]){C});
    t->pos_emb = params_add(ps, "pos_emb.weight", PARAM_INIT(INIT_TRUNC_NORMAL, 0.02f), 2,
                            (int[]){NP + 1, C});
    encoder_block_config bc = encoder_config_from(cfg, true);
    encoder_stack_init(&t->enc, ps, &bc, cfg->depth);
    t->patch = P;
    t->cls_pool = cls;
    t->dropout = cfg->dropout;
    t->aug = aug;
    *width = C;
    return t;
}

static tower_out vit_tower_encode(void *impl, graph *g, const model_batch *batch,
                                  attention_sink *sink, const char *sink_prefix, bool pooled_only) {
    vit_tower *t = impl;
    HEED_ASSERT(batch->images && batch->images->ndim == 4);
    /* x (B, 1 + NP, C): [CLS] then the patches in row-major grid order */
    tensor *images = cnn_input(g, &t->aug, batch);
    tensor *x = linear_layer_forward(g, &t->patch_embed, op_patchify(g, images, t->patch));
    x = op_prepend_token(g, x, t->cls_token);
    x = op_dropout(g, op_add_positions(g, x, t->pos_emb), t->dropout);
    int grid_h = batch->images->shape[2] / t->patch, grid_w = batch->images->shape[3] / t->patch;
    if (pooled_only && t->cls_pool && !sink)
        return (tower_out){.pooled = cls_state(g, &t->enc, x, NULL),
                           .first = 1,
                           .grid_h = grid_h,
                           .grid_w = grid_w};
    tensor *probs[ATTENTION_SINK_MAX];
    HEED_ASSERT(t->enc.depth <= ATTENTION_SINK_MAX);
    x = encoder_stack_forward(g, &t->enc, x, NULL, sink ? probs : NULL);
    attention_sink_put_stack(sink, sink_prefix, probs, t->enc.depth);
    tensor *pooled = t->cls_pool ? op_select_token(g, x, 0) : op_masked_mean(g, x, NULL);
    return (tower_out){
        .seq = x, .valid = NULL, .pooled = pooled, .first = 1, .grid_h = grid_h, .grid_w = grid_w};
}

static void vit_tower_destroy(void *impl) {
    vit_tower *t = impl;
    encoder_stack_free(&t->enc);
    free(t);
}

/* ---- Transformer text tower ------------------------------------------ */

typedef struct text_tower {
    tensor *tok_emb, *pos_emb;
    encoder_stack enc;
    bool cls_pool;
    int pad_id, max_len;
    float dropout;
} text_tower;

static void *text_tower_create(params *ps, const model_config *cfg, const data_shape *shape,
                               int *width, char *err, size_t errlen) {
    bool cls;
    if (!encoder_config_check(cfg, err, errlen) || !pool_parse(cfg, &cls, err, errlen))
        return NULL;
    int max_len = cfg->max_len > 0 ? cfg->max_len : shape->max_len;
    if (max_len < shape->max_len) {
        snprintf(err, errlen, "--max-len %d is shorter than the dataset's sequences (%d)", max_len,
                 shape->max_len);
        return NULL;
    }
    text_tower *t = xcalloc(1, sizeof *t);
    int C = cfg->dim;
    t->tok_emb = params_add(ps, "tok_emb.weight", PARAM_INIT(INIT_NORMAL, 0.02f), 2,
                            (int[]){shape->vocab_size, C});
    t->pos_emb =
        params_add(ps, "pos_emb.weight", PARAM_INIT(INIT_NORMAL, 0.02f), 2, (int[]){max_len, C});
    encoder_block_config bc = encoder_config_from(cfg, true);
    encoder_stack_init(&t->enc, ps, &bc, cfg->depth);
    t->cls_pool = cls;
    t->pad_id = shape->pad_id;
    t->max_len = max_len;
    t->dropout = cfg->dropout;
    *width = C;
    return t;
}

static tower_out text_tower_encode(void *impl, graph *g, const model_batch *batch,
                                   attention_sink *sink, const char *sink_prefix,
                                   bool pooled_only) {
    text_tower *t = impl;
    tensor *ids = batch->tokens;
    HEED_ASSERT(ids && ids->ndim == 2 && ids->shape[1] <= t->max_len);
    tensor *valid = valid_from_ids(g, ids, t->pad_id);
    tensor *x = op_embedding(g, ids, t->tok_emb);
    x = op_dropout(g, op_add_positions(g, x, t->pos_emb), t->dropout);
    tensor *mask = mask_from_valid(g, valid);
    if (pooled_only && t->cls_pool && !sink)
        return (tower_out){.valid = valid, .pooled = cls_state(g, &t->enc, x, mask)};
    tensor *probs[ATTENTION_SINK_MAX];
    HEED_ASSERT(t->enc.depth <= ATTENTION_SINK_MAX);
    x = encoder_stack_forward(g, &t->enc, x, mask, sink ? probs : NULL);
    attention_sink_put_stack(sink, sink_prefix, probs, t->enc.depth);
    tensor *pooled = t->cls_pool ? op_select_token(g, x, 0) : op_masked_mean(g, x, valid);
    return (tower_out){.seq = x, .valid = valid, .pooled = pooled};
}

static void text_tower_destroy(void *impl) {
    text_tower *t = impl;
    encoder_stack_free(&t->enc);
    free(t);
}

/* ---- the list -------------------------------------------------------- */

static const tower_kind towers[] = {
    {"vit", true, vit_tower_create, vit_tower_encode, vit_tower_destroy},
    {"transformer", false, text_tower_create, text_tower_encode, text_tower_destroy},
};

const tower_kind *tower_kind_find(const char *name, bool images) {
    for (size_t i = 0; i < sizeof towers / sizeof towers[0]; i++)
        if (towers[i].images == images && strcmp(towers[i].name, name) == 0)
            return &towers[i];
    return NULL;
}

const char *tower_kind_names(bool images) {
    return images ? "vit" : "transformer";
}
