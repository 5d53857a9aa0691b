/*
 * transformer.c - Transformer encoder text classifier: token embeddings plus
 * learned positions, pre-norm encoder blocks, masked mean or [CLS] pooling,
 * a linear head.
 */
#include "models/attention_sink.h"
#include "models/encoder_stack.h"

#include "core/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct transformer {
    tensor *tok_emb, *pos_emb;
    encoder_stack enc;
    linear_layer head;
    bool cls_pool;
    int pad_id, max_len;
    float dropout;
} transformer;

static void *transformer_create(params *ps, const model_config *cfg, const data_shape *shape,
                                char *err, size_t errlen) {
    if (!encoder_config_check(cfg, err, errlen))
        return NULL;
    bool cls = strcmp(cfg->pool, "cls") == 0;
    if (!cls && strcmp(cfg->pool, "mean") != 0) {
        snprintf(err, errlen, "--pool must be mean or cls, got '%s'", cfg->pool);
        return NULL;
    }
    int max_len = cfg->max_len > 0 ? cfg->max_len : shape->max_len;
    if (max_len < shape->max_len) {
        snprintf(err, errlen, "--max-len %d is shorter than the dataset's sequences (%d)", max_len,
                 shape->max_len);
        return NULL;
    }
    transformer *m = xcalloc(1, sizeof *m);
    int C = cfg->dim;
    m->tok_emb = params_add(ps, "tok_emb.weight", PARAM_INIT(INIT_NORMAL, 0.02f), 2,
                            (int[]){shape->vocab_size, C});
    m->pos_emb =
        params_add(ps, "pos_emb.weight", PARAM_INIT(INIT_NORMAL, 0.02f), 2, (int[]){max_len, C});
    encoder_block_config bc = encoder_config_from(cfg, true);
    encoder_stack_init(&m->enc, ps, &bc, cfg->depth);
    linear_layer_init(&m->head, ps, "head", C, shape->num_classes, true);
    m->cls_pool = cls;
    m->pad_id = shape->pad_id;
    m->max_len = max_len;
    m->dropout = cfg->dropout;
    return m;
}

static tensor *transformer_forward(void *impl, graph *g, const model_batch *batch,
                                   attention_sink *sink) {
    transformer *m = impl;
    tensor *ids = batch->tokens;
    HEED_ASSERT(ids && ids->ndim == 2 && ids->shape[1] <= m->max_len);
    tensor *valid = valid_from_ids(g, ids, m->pad_id);
    tensor *mask = mask_from_valid(g, valid);
    tensor *x = op_embedding(g, ids, m->tok_emb);
    x = op_dropout(g, op_add_positions(g, x, m->pos_emb), m->dropout);
    tensor *probs[ATTENTION_SINK_MAX];
    HEED_ASSERT(m->enc.depth <= ATTENTION_SINK_MAX);
    x = encoder_stack_forward(g, &m->enc, x, mask, sink ? probs : NULL);
    attention_sink_put_stack(sink, "blocks.", probs, m->enc.depth);
    attention_sink_set_tokens(sink, m->cls_pool ? 0 : -1);
    tensor *pooled = m->cls_pool ? op_select_token(g, x, 0) : op_masked_mean(g, x, valid);
    return linear_layer_forward(g, &m->head, pooled);
}

static void transformer_destroy(void *impl) {
    transformer *m = impl;
    encoder_stack_free(&m->enc);
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
    .forward = transformer_forward,
    .destroy = transformer_destroy,
};
