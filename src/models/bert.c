/*
 * bert.c - BERT: token + learned position + segment embeddings with layer
 * norm, post-norm encoder blocks with erf GELU (the shared encoder_stack), a
 * tanh pooler over [CLS]; model "bert" adds a classification head on the
 * pooled output, model "bert_mlm" the masked-language-model head with its
 * decoder tied to the token embeddings. Names map 1:1 onto Hugging Face's
 * (bert.h has the table), so an imported checkpoint loads by a rename.
 */
#include "models/bert.h"

#include "models/attention_sink.h"
#include "models/encoder_stack.h"

#include "core/check.h"
#include "core/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct bert {
    tensor *tok_emb, *pos_emb, *seg_emb;
    layer_norm_layer emb_ln;
    encoder_stack enc;
    linear_layer pooler;
    linear_layer head;      /* "bert" */
    linear_layer mlm_dense; /* "bert_mlm" */
    layer_norm_layer mlm_ln;
    tensor *mlm_bias;
    bool mlm;
    bool mean_pool; /* --pool mean: the pooler over the mean of the tokens, not [CLS] */
    int vocab, max_len, pad_id, cls_id, sep_id, mask_id;
    float dropout;
} bert;

/* BERT's layer-norm epsilon (HF layer_norm_eps): 1e-12, not PyTorch's 1e-5. */
static const float BERT_LN_EPS = 1e-12f;

/* BERT initialises every matrix and embedding N(0, 0.02) (HF
 * initializer_range; truncated at 2 sigma as in the original TF code) and
 * every bias to zero; layer norms stay ones/zeros. Applied to the tensors
 * registered since `first`, before params_alloc draws them. */
static void bert_init_rule(params *ps, int first) {
    for (int i = first; i < ps->count; i++) {
        tensor *t = ps->tensors[i];
        bool is_norm = strstr(t->name, "ln") != NULL;
        if (t->ndim >= 2)
            ps->init[i] = PARAM_INIT(INIT_TRUNC_NORMAL, 0.02f);
        else if (!is_norm)
            ps->init[i] = PARAM_INIT(INIT_ZEROS, 0);
    }
}

static void *bert_create_common(params *ps, const model_config *cfg, const data_shape *shape,
                                bool mlm, char *err, size_t errlen) {
    if (!encoder_config_check(cfg, err, errlen))
        return NULL;
    int max_len = cfg->max_len > 0 ? cfg->max_len : shape->max_len;
    if (max_len < shape->max_len) {
        snprintf(err, errlen, "--max-len %d is shorter than the dataset's sequences (%d)", max_len,
                 shape->max_len);
        return NULL;
    }
    if (cfg->pool[0] && strcmp(cfg->pool, "mean") && strcmp(cfg->pool, "cls")) {
        snprintf(err, errlen, "--pool must be cls (BERT's) or mean, got '%s'", cfg->pool);
        return NULL;
    }
    if (mlm && (shape->mask_id < 0 || shape->mask_id >= shape->vocab_size)) {
        snprintf(err, errlen, "bert_mlm needs a [MASK] id in the vocabulary, got %d",
                 shape->mask_id);
        return NULL;
    }
    bert *m = xcalloc(1, sizeof *m);
    int C = cfg->dim, V = shape->vocab_size, first = ps->count;
    param_init emb_init = PARAM_INIT(INIT_TRUNC_NORMAL, 0.02f);
    m->tok_emb = params_add(ps, "tok_emb.weight", emb_init, 2, (int[]){V, C});
    m->pos_emb = params_add(ps, "pos_emb.weight", emb_init, 2, (int[]){max_len, C});
    m->seg_emb = params_add(ps, "seg_emb.weight", emb_init, 2, (int[]){BERT_TYPE_VOCAB, C});
    layer_norm_layer_init(&m->emb_ln, ps, "emb_ln", C, BERT_LN_EPS);
    encoder_block_config bc = encoder_config_from(cfg, false);
    bc.ln_eps = BERT_LN_EPS;
    encoder_stack_init(&m->enc, ps, &bc, cfg->depth);
    linear_layer_init(&m->pooler, ps, "pooler", C, C, true);
    if (mlm) {
        linear_layer_init(&m->mlm_dense, ps, "mlm.dense", C, C, true);
        layer_norm_layer_init(&m->mlm_ln, ps, "mlm.ln", C, BERT_LN_EPS);
        m->mlm_bias = params_add(ps, "mlm.bias", PARAM_INIT(INIT_ZEROS, 0), 1, (int[]){V});
    } else {
        linear_layer_init(&m->head, ps, "head", C, shape->num_classes, true);
    }
    bert_init_rule(ps, first);
    m->mlm = mlm;
    m->vocab = V;
    m->max_len = max_len;
    m->pad_id = shape->pad_id;
    m->cls_id = shape->cls_id;
    m->sep_id = shape->sep_id;
    m->mask_id = shape->mask_id;
    m->dropout = cfg->dropout;
    m->mean_pool = strcmp(cfg->pool, "mean") == 0;
    return m;
}

static void *bert_create(params *ps, const model_config *cfg, const data_shape *shape, char *err,
                         size_t errlen) {
    return bert_create_common(ps, cfg, shape, false, err, errlen);
}

static void *bert_mlm_create(params *ps, const model_config *cfg, const data_shape *shape,
                             char *err, size_t errlen) {
    return bert_create_common(ps, cfg, shape, true, err, errlen);
}

/* ids (B, T) -> last hidden state (B, T, C), or with cls_only its [CLS]
 * row (B, 1, C); the key-padding mask comes from valid_ids (the uncorrupted
 * ids: MLM never turns a token into padding). */
static tensor *bert_trunk(const bert *m, graph *g, const tensor *ids, const tensor *segments,
                          const tensor *valid_ids, tensor **hidden, attention_sink *sink,
                          bool cls_only) {
    HEED_ASSERT(ids && ids->ndim == 2 && ids->shape[1] <= m->max_len);
    HEED_ASSERT(!cls_only || (!hidden && !sink));
    int B = ids->shape[0], T = ids->shape[1];
    tensor *mask = mask_from_valid(g, valid_from_ids(g, valid_ids, m->pad_id));
    if (!segments) {
        tensor *zeros = graph_new(g, DTYPE_I32, 2, (int[]){B, T}, false);
        memset(zeros->idata, 0, sizeof(int32_t) * B * T);
        segments = zeros;
    }
    HEED_ASSERT(segments->numel == (int64_t)B * T);
    tensor *x = op_add(g, op_embedding(g, ids, m->tok_emb), op_embedding(g, segments, m->seg_emb));
    x = layer_norm_layer_forward(g, &m->emb_ln, op_add_positions(g, x, m->pos_emb));
    x = op_dropout(g, x, m->dropout);
    if (hidden)
        hidden[0] = x;
    tensor *probs[ATTENTION_SINK_MAX];
    HEED_ASSERT(m->enc.depth <= ATTENTION_SINK_MAX);
    /* Block by block (the stack has no final norm when post-norm) so every
     * layer's output can be handed out. */
    for (int i = 0; i < m->enc.depth; i++) {
        if (cls_only && i == m->enc.depth - 1)
            x = encoder_block_forward_token(g, &m->enc.blocks[i], x, mask, 0);
        else
            x = encoder_block_forward(g, &m->enc.blocks[i], x, mask, sink ? &probs[i] : NULL);
        if (hidden)
            hidden[i + 1] = x;
    }
    attention_sink_put_stack(sink, "blocks.", probs, m->enc.depth);
    attention_sink_set_tokens(sink, m->mean_pool ? -1 : 0);
    return x;
}

/* The pooler (dense + tanh) over [CLS], or over the mean of the non-pad
 * positions (--pool mean) of x (B, T, C) for ids (B, T). */
static tensor *bert_pool(const bert *m, graph *g, tensor *x, const tensor *ids) {
    tensor *h = m->mean_pool ? op_masked_mean(g, x, valid_from_ids(g, ids, m->pad_id))
                             : op_select_token(g, x, 0);
    return op_tanh(g, linear_layer_forward(g, &m->pooler, h));
}

tensor *bert_encode(const model *mod, graph *g, const model_batch *batch, tensor **hidden,
                    tensor **pooled) {
    const bert *m = mod->impl;
    tensor *x =
        bert_trunk(m, g, batch->tokens, batch->segments, batch->tokens, hidden, NULL, false);
    if (pooled)
        *pooled = bert_pool(m, g, x, batch->tokens);
    return x;
}

/* MLM head on rows h (N, C): transform, GELU, layer norm, tied decoder. */
static tensor *bert_mlm_logits(const bert *m, graph *g, tensor *h) {
    h = linear_layer_gelu_forward(g, &m->mlm_dense, h, GELU_ERF);
    h = layer_norm_layer_forward(g, &m->mlm_ln, h);
    return op_linear(g, h, m->tok_emb, m->mlm_bias);
}

static tensor *bert_forward(void *impl, graph *g, const model_batch *batch, attention_sink *sink) {
    bert *m = impl;
    /* The classifier reads [CLS] alone, so its last block runs at [CLS]
     * only, unless a sink asks for the full attention maps. */
    bool cls_only = !m->mlm && !m->mean_pool && !sink;
    tensor *x =
        bert_trunk(m, g, batch->tokens, batch->segments, batch->tokens, NULL, sink, cls_only);
    if (m->mlm) /* (B, T, V): predictions at every position of the given ids */
        return bert_mlm_logits(m, g, x);
    return linear_layer_forward(g, &m->head,
                                op_dropout(g, bert_pool(m, g, x, batch->tokens), m->dropout));
}

int bert_mlm_corrupt(uint64_t key, int64_t sample_id, const int32_t *ids, int T, int V, int pad_id,
                     int cls_id, int sep_id, int mask_id, int32_t *out, int32_t *target) {
    uint64_t k_pick = rng_key(key, (uint64_t)sample_id, 0);
    uint64_t k_how = rng_key(key, (uint64_t)sample_id, 1);
    uint64_t k_tok = rng_key(key, (uint64_t)sample_id, 2);
    int chosen = 0, best = -1;
    float best_u = 2.0f;
    for (int t = 0; t < T; t++) {
        out[t] = ids[t];
        target[t] = -1;
        int id = ids[t];
        if (id == pad_id || id == cls_id || id == sep_id)
            continue;
        float u = rng_uniform(k_pick, (uint64_t)t);
        if (u < best_u) {
            best_u = u;
            best = t;
        }
        if (u < 0.15f) {
            target[t] = id;
            chosen++;
        }
    }
    /* A short sequence may draw no position: take its likeliest one, so
     * every sample with a real token has a prediction to learn from. */
    if (chosen == 0 && best >= 0) {
        target[best] = ids[best];
        chosen = 1;
    }
    for (int t = 0; t < T; t++) {
        if (target[t] < 0)
            continue;
        float r = rng_uniform(k_how, (uint64_t)t);
        if (r < 0.8f) {
            out[t] = mask_id;
        } else if (r < 0.9f && V > 1) {
            int tok = (int)(rng_bits(k_tok, (uint64_t)t) % (uint64_t)(V - 1));
            out[t] = tok >= pad_id ? tok + 1 : tok; /* never padding */
        }
    }
    return chosen;
}

/* Mean over the samples of each sample's mean cross-entropy over its chosen
 * positions. Per-sample means (not a mean over all chosen tokens of the
 * micro-batch) keep the loss a plain mean over samples, so the trainer's
 * n / global_batch scaling gives the same gradient whatever the ranks and
 * micro-batches. Computed only at the chosen rows: gather (an embedding
 * lookup into the hidden states), head, log-softmax, pick, weighted sum. */
static tensor *bert_mlm_loss(void *impl, graph *g, const model_batch *batch, const tensor *labels,
                             model_loss_stats *stats) {
    bert *m = impl;
    const tensor *ids = batch->tokens;
    HEED_ASSERT(ids && ids->ndim == 2);
    int B = ids->shape[0], T = ids->shape[1], V = m->vocab;
    uint64_t key = graph_rng_stream(g);
    tensor *input = graph_new(g, DTYPE_I32, 2, (int[]){B, T}, false);
    int32_t *target = arena_alloc(graph_arena(g), sizeof(int32_t) * B * T);
    int *per_sample = arena_alloc(graph_arena(g), sizeof(int) * B);
    int M = 0;
    for (int b = 0; b < B; b++) {
        per_sample[b] = bert_mlm_corrupt(key, graph_sample_id(g, b), ids->idata + (int64_t)b * T, T,
                                         V, m->pad_id, m->cls_id, m->sep_id, m->mask_id,
                                         input->idata + (int64_t)b * T, target + (int64_t)b * T);
        M += per_sample[b];
    }
    bool none = M == 0; /* nothing but special tokens: one dummy row of weight 0 */
    int rows = none ? 1 : M;
    tensor *where = graph_new(g, DTYPE_I32, 1, (int[]){rows}, false);
    tensor *pick = graph_new(g, DTYPE_I32, 1, (int[]){rows}, false);
    tensor *weight = graph_new(g, DTYPE_F32, 2, (int[]){1, rows}, false);
    int32_t *want = arena_alloc(graph_arena(g), sizeof(int32_t) * rows);
    if (none) {
        where->idata[0] = 0;
        want[0] = ids->idata[0];
        pick->idata[0] = want[0];
        weight->data[0] = 0.0f;
    }
    for (int b = 0, r = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            int32_t y = target[(int64_t)b * T + t];
            if (y < 0)
                continue;
            where->idata[r] = b * T + t;
            want[r] = y;
            pick->idata[r] = r * V + y;
            weight->data[r] = -1.0f / ((float)per_sample[b] * (float)B);
            r++;
        }
    tensor *x = bert_trunk(m, g, input, batch->segments, ids, NULL, NULL, false);
    tensor *h = op_embedding(g, where, graph_reshape(g, x, 2, (int[]){B * T, x->shape[2]}));
    tensor *logits = bert_mlm_logits(m, g, h); /* (rows, V) */
    tensor *logp = op_log_softmax(g, logits, NULL);
    tensor *lp = op_embedding(g, pick, graph_reshape(g, logp, 2, (int[]){rows * V, 1}));
    tensor *loss = op_weighted_sum(g, graph_reshape(g, lp, 3, (int[]){1, rows, 1}), weight);
    if (stats && !none) {
        for (int r = 0; r < rows; r++) {
            const float *row = logits->data + (int64_t)r * V;
            int arg = 0;
            for (int v = 1; v < V; v++)
                if (row[v] > row[arg])
                    arg = v;
            stats->correct += arg == want[r];
        }
        stats->count += rows;
    }
    (void)labels;
    return graph_reshape(g, loss, 1, (int[]){1});
}

static void bert_destroy(void *impl) {
    bert *m = impl;
    encoder_stack_free(&m->enc);
    free(m);
}

#define BERT_OPTIONS                                                                               \
    "  --dim C (128; base 768) --depth N (2; base 12) --heads NH (4; base 12)\n"                   \
    "  --ffn F (4*dim) --max-len L (dataset's; HF checkpoints 512) --dropout P (0; BERT 0.1)\n"    \
    "  --init-from FILE (a bert_mlm export/checkpoint or scripts/convert_hf_bert.py output)"

const model_kind model_kind_bert = {
    .name = "bert",
    .summary = "BERT classifier (post-norm, token+position+segment embeddings, tanh pooler on "
               "[CLS])",
    .options_help = BERT_OPTIONS "\n  --pool cls|mean (cls; mean: the pooler over the mean of the "
                                 "tokens)",
    .needs_images = false,
    .needs_tokens = true,
    .create = bert_create,
    .forward = bert_forward,
    .destroy = bert_destroy,
};

const model_kind model_kind_bert_mlm = {
    .name = "bert_mlm",
    .summary = "BERT masked-language-model pretraining (15% of tokens, 80/10/10, tied decoder; "
               "eval accuracy = masked-token accuracy)",
    .options_help = BERT_OPTIONS,
    .needs_images = false,
    .needs_tokens = true,
    .create = bert_mlm_create,
    .forward = bert_forward,
    .destroy = bert_destroy,
    .loss = bert_mlm_loss,
};
