/*
 * birnn.c - BiLSTM and BiGRU text classifiers with additive attention
 * pooling: token embeddings, a stack of bidirectional recurrent layers
 * (ops_rnn.h, packed-sequence padding), additive (Bahdanau) attention over
 * the tokens' hidden states, a linear head. The pooling weights go to the
 * attention sink as "attn" (ATTENTION_ADDITIVE, (B, T)) for heed explain.
 *
 * Options: --dim is the hidden size H of each direction, --depth the number
 * of recurrent layers, --embed-dim the embedding width (0: --dim); the
 * attention's inner width is H. --dropout applies to the embeddings, between
 * recurrent layers and before the head.
 */
#include "models/attention_sink.h"
#include "models/model.h"

#include "core/blocks.h"
#include "core/check.h"
#include "core/ops.h"
#include "core/ops_rnn.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct birnn {
    tensor *tok_emb;
    rnn_stack rnn;
    additive_attention attn;
    linear_layer head;
    int pad_id, max_len;
    float dropout;
} birnn;

static void *birnn_create(rnn_cell cell, params *ps, const model_config *cfg,
                          const data_shape *shape, char *err, size_t errlen) {
    if (cfg->dim <= 0) {
        snprintf(err, errlen, "--dim (hidden size) must be positive, got %d", cfg->dim);
        return NULL;
    }
    if (cfg->depth < 1 || cfg->depth > RNN_MAX_LAYERS) {
        snprintf(err, errlen, "--depth (recurrent layers) must be in 1..%d, got %d", RNN_MAX_LAYERS,
                 cfg->depth);
        return NULL;
    }
    if (cfg->embed_dim < 0) {
        snprintf(err, errlen, "--embed-dim must be >= 0 (0: --dim), got %d", cfg->embed_dim);
        return NULL;
    }
    if (!(cfg->dropout >= 0.0f && cfg->dropout < 1.0f)) {
        snprintf(err, errlen, "--dropout must be in [0, 1), got %g", cfg->dropout);
        return NULL;
    }
    int max_len = cfg->max_len > 0 ? cfg->max_len : shape->max_len;
    if (max_len < shape->max_len) {
        snprintf(err, errlen, "--max-len %d is shorter than the dataset's sequences (%d)", max_len,
                 shape->max_len);
        return NULL;
    }
    birnn *m = xcalloc(1, sizeof *m);
    int H = cfg->dim, E = cfg->embed_dim > 0 ? cfg->embed_dim : cfg->dim;
    /* nn.Embedding's default init */
    m->tok_emb = params_add(ps, "tok_emb.weight", PARAM_INIT(INIT_NORMAL, 1.0f), 2,
                            (int[]){shape->vocab_size, E});
    rnn_stack_init(&m->rnn, ps, "rnn", cell, E, H, cfg->depth, true, cfg->dropout);
    additive_attention_init(&m->attn, ps, "attn", 2 * H, H);
    linear_layer_init(&m->head, ps, "head", 2 * H, shape->num_classes, true);
    m->pad_id = shape->pad_id;
    m->max_len = max_len;
    m->dropout = cfg->dropout;
    return m;
}

static void *bilstm_create(params *ps, const model_config *cfg, const data_shape *shape, char *err,
                           size_t errlen) {
    return birnn_create(RNN_CELL_LSTM, ps, cfg, shape, err, errlen);
}

static void *bigru_create(params *ps, const model_config *cfg, const data_shape *shape, char *err,
                          size_t errlen) {
    return birnn_create(RNN_CELL_GRU, ps, cfg, shape, err, errlen);
}

static tensor *birnn_forward(void *impl, graph *g, const model_batch *batch, attention_sink *sink) {
    birnn *m = impl;
    tensor *ids = batch->tokens;
    HEED_ASSERT(ids && ids->ndim == 2 && ids->shape[1] <= m->max_len);
    tensor *valid = valid_from_ids(g, ids, m->pad_id);
    tensor *x = op_dropout(g, op_embedding(g, ids, m->tok_emb), m->dropout);
    x = rnn_stack_forward(g, &m->rnn, x, valid);
    tensor *weights;
    tensor *pooled =
        additive_attention_forward(g, &m->attn, x, mask_from_valid(g, valid), &weights);
    attention_sink_put(sink, "attn", ATTENTION_ADDITIVE, weights);
    return linear_layer_forward(g, &m->head, op_dropout(g, pooled, m->dropout));
}

static void birnn_destroy(void *impl) {
    free(impl);
}

#define BIRNN_OPTIONS                                                                              \
    "  --dim H (128, hidden size per direction) --depth N (2, layers) --embed-dim E (dim)\n"       \
    "  --max-len L (dataset's) --dropout P (0)"

const model_kind model_kind_bilstm = {
    .name = "bilstm",
    .summary = "bidirectional LSTM text classifier with additive attention pooling",
    .options_help = BIRNN_OPTIONS,
    .needs_images = false,
    .needs_tokens = true,
    .create = bilstm_create,
    .forward = birnn_forward,
    .destroy = birnn_destroy,
};

const model_kind model_kind_bigru = {
    .name = "bigru",
    .summary = "bidirectional GRU text classifier with additive attention pooling",
    .options_help = BIRNN_OPTIONS,
    .needs_images = false,
    .needs_tokens = true,
    .create = bigru_create,
    .forward = birnn_forward,
    .destroy = birnn_destroy,
};
