/*
 * fusion.c - image+text classifiers: an image tower and a text tower
 * (tower.h) joined by
 *
 *   concat  the two pooled vectors side by side, (B, 2C);
 *   xattn   --xattn-depth cross-attention blocks in which the text tokens
 *           attend to the image tokens ([CLS] and patches), and with
 *           --xattn-reverse the image tokens to the text tokens as well;
 *           then the pooled fused text and the pooled (fused) image, (B, 2C);
 *
 * followed by the same classifier, fc1 (2C -> C), GELU, dropout, fc2 (C -> K).
 *
 * A cross-attention block is pre-norm like the towers' blocks:
 *
 *   q = q + drop(attn(ln_q(q), ln_kv(kv), kv_mask))
 *   q = q + drop(fc2(gelu(fc1(ln2(q)))))
 *
 * with the shared multi-head attention of blocks.c (queries from one
 * sequence, keys and values from the other). In both directions a layer
 * reads the other modality's states of the layer before, as in ViLBERT's
 * co-attention, so the result does not depend on an order of updates.
 *
 * Parameter names: "image.*" and "text.*" are the towers (named like the
 * single-modality models), "xattn.<i>.*" the text-to-image blocks,
 * "xattn_rev.<i>.*" the image-to-text blocks, "xattn_ln" the final norm of
 * the fused text, "head.fc1", "head.fc2" the classifier.
 *
 * --freeze-image / --freeze-text mark a tower's parameters frozen (Adam
 * skips them) and run that tower without recording the tape, so it costs no
 * backward and its gradients stay zero; the gradient buffer keeps its
 * layout, so the all-reduce runs over the same ranges on every rank and
 * nothing waits for a gradient that never comes.
 */
#include "models/encoder_stack.h"
#include "models/tower.h"

#include "core/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct cross_block {
    layer_norm_layer ln_q, ln_kv, ln2;
    mha attn;
    linear_layer fc1, fc2;
    float dropout;
} cross_block;

typedef struct fusion_tower {
    const tower_kind *kind;
    void *impl;
    int first, last; /* its parameters are [first, last) of the params set */
    bool frozen;
} fusion_tower;

typedef struct fusion {
    fusion_tower image, text;
    bool xattn, reverse, cls_pool;
    int depth;              /* cross-attention blocks (xattn only) */
    cross_block *t2i, *i2t; /* depth each; i2t only with reverse */
    layer_norm_layer ln_text, ln_image;
    linear_layer fc1, fc2;
    float dropout;
} fusion;

static void cross_block_init(cross_block *b, params *ps, const char *name, int C, int NH, int FFN,
                             float dropout) {
    params_push_scope(ps, "%s", name);
    layer_norm_layer_init(&b->ln_q, ps, "ln_q", C, 1e-5f);
    layer_norm_layer_init(&b->ln_kv, ps, "ln_kv", C, 1e-5f);
    mha_init(&b->attn, ps, "attn", C, NH, dropout);
    layer_norm_layer_init(&b->ln2, ps, "ln2", C, 1e-5f);
    linear_layer_init(&b->fc1, ps, "fc1", C, FFN, true);
    linear_layer_init(&b->fc2, ps, "fc2", FFN, C, true);
    params_pop_scope(ps);
    b->dropout = dropout;
}

/* q (B, T, C) attends to kv (B, S, C); kv_mask additive (B, S) or NULL;
 * *probs receives (B, NH, T, S) when probs is not NULL. */
static tensor *cross_block_forward(graph *g, const cross_block *b, tensor *q, tensor *kv,
                                   const tensor *kv_mask, tensor **probs) {
    tensor *kvn = layer_norm_layer_forward(g, &b->ln_kv, kv);
    tensor *h =
        mha_forward(g, &b->attn, layer_norm_layer_forward(g, &b->ln_q, q), kvn, kv_mask, probs);
    q = op_add(g, q, op_dropout(g, h, b->dropout));
    h = linear_layer_gelu_forward(g, &b->fc1, layer_norm_layer_forward(g, &b->ln2, q), GELU_ERF);
    h = linear_layer_forward(g, &b->fc2, h);
    return op_add(g, q, op_dropout(g, h, b->dropout));
}

/* Creates one tower under `scope`; false with a message in err. */
static bool fusion_tower_create(fusion_tower *t, params *ps, const char *scope, const char *kind,
                                bool images, bool frozen, const model_config *cfg,
                                const data_shape *shape, char *err, size_t errlen) {
    t->kind = tower_kind_find(kind, images);
    if (!t->kind) {
        snprintf(err, errlen, "--%s-tower '%s' is not an %s tower (known: %s)", scope, kind, scope,
                 tower_kind_names(images));
        return false;
    }
    t->first = ps->count;
    params_push_scope(ps, "%s", scope);
    int width = 0;
    t->impl = t->kind->create(ps, cfg, shape, &width, err, errlen);
    params_pop_scope(ps);
    t->last = ps->count;
    if (!t->impl)
        return false;
    HEED_ASSERT(width == cfg->dim);
    t->frozen = frozen;
    for (int i = t->first; i < t->last; i++)
        ps->frozen[i] = frozen;
    return true;
}

static void fusion_destroy(void *impl) {
    fusion *m = impl;
    if (!m)
        return;
    if (m->image.impl)
        m->image.kind->destroy(m->image.impl);
    if (m->text.impl)
        m->text.kind->destroy(m->text.impl);
    free(m->t2i);
    free(m->i2t);
    free(m);
}

static void *fusion_create(params *ps, const model_config *cfg, const data_shape *shape, char *err,
                           size_t errlen) {
    if (!encoder_config_check(cfg, err, errlen))
        return NULL;
    bool xattn = strcmp(cfg->fusion, "xattn") == 0;
    if (!xattn && strcmp(cfg->fusion, "concat") != 0) {
        snprintf(err, errlen, "--fusion must be concat or xattn, got '%s'", cfg->fusion);
        return NULL;
    }
    if (xattn && cfg->xattn_depth < 1) {
        snprintf(err, errlen, "--xattn-depth must be at least 1 with --fusion xattn, got %d",
                 cfg->xattn_depth);
        return NULL;
    }
    if (!xattn && cfg->xattn_reverse) {
        snprintf(err, errlen, "--xattn-reverse needs --fusion xattn");
        return NULL;
    }
    fusion *m = xcalloc(1, sizeof *m);
    if (!fusion_tower_create(&m->image, ps, "image", cfg->image_tower, true, cfg->freeze_image, cfg,
                             shape, err, errlen) ||
        !fusion_tower_create(&m->text, ps, "text", cfg->text_tower, false, cfg->freeze_text, cfg,
                             shape, err, errlen)) {
        fusion_destroy(m);
        return NULL;
    }
    int C = cfg->dim, FFN = cfg->ffn > 0 ? cfg->ffn : 4 * C;
    m->xattn = xattn;
    m->reverse = cfg->xattn_reverse;
    m->cls_pool = strcmp(cfg->pool, "cls") == 0;
    m->dropout = cfg->dropout;
    if (xattn) {
        m->depth = cfg->xattn_depth;
        m->t2i = xcalloc(m->depth, sizeof *m->t2i);
        if (m->reverse)
            m->i2t = xcalloc(m->depth, sizeof *m->i2t);
        for (int i = 0; i < m->depth; i++) {
            char name[32];
            snprintf(name, sizeof name, "xattn.%d", i);
            cross_block_init(&m->t2i[i], ps, name, C, cfg->heads, FFN, cfg->dropout);
            if (m->reverse) {
                snprintf(name, sizeof name, "xattn_rev.%d", i);
                cross_block_init(&m->i2t[i], ps, name, C, cfg->heads, FFN, cfg->dropout);
            }
        }
        layer_norm_layer_init(&m->ln_text, ps, "xattn_ln", C, 1e-5f);
        if (m->reverse)
            layer_norm_layer_init(&m->ln_image, ps, "xattn_rev_ln", C, 1e-5f);
    }
    linear_layer_init(&m->fc1, ps, "head.fc1", 2 * C, C, true);
    linear_layer_init(&m->fc2, ps, "head.fc2", C, shape->num_classes, true);
    return m;
}

/* A frozen tower runs with the tape off: no backward, zero gradients. */
static tower_out fusion_tower_encode(const fusion_tower *t, graph *g, const model_batch *batch,
                                     attention_sink *sink, const char *prefix, bool pooled_only) {
    bool grad = graph_grad_enabled(g);
    if (t->frozen)
        graph_set_grad(g, false);
    tower_out out = t->kind->encode(t->impl, g, batch, sink, prefix, pooled_only);
    graph_set_grad(g, grad);
    return out;
}

static tensor *fusion_pool(graph *g, tensor *x, const tensor *valid, bool cls) {
    return cls ? op_select_token(g, x, 0) : op_masked_mean(g, x, valid);
}

static tensor *fusion_forward(void *impl, graph *g, const model_batch *batch,
                              attention_sink *sink) {
    fusion *m = impl;
    HEED_ASSERT(batch->images && batch->tokens);
    /* Image maps first: heed explain rolls out the first tower's maps and
     * draws them over the image (the sink's input is the patch grid). */
    tower_out img = fusion_tower_encode(&m->image, g, batch, sink, "image.blocks.", !m->xattn);
    tower_out txt = fusion_tower_encode(&m->text, g, batch, sink, "text.blocks.", !m->xattn);
    if (img.grid_h > 0)
        attention_sink_set_patches(sink, img.first, img.grid_h, img.grid_w, m->cls_pool ? 0 : -1);
    tensor *feats[2];
    if (!m->xattn) {
        feats[0] = txt.pooled;
        feats[1] = img.pooled;
    } else {
        tensor *text_mask = m->reverse ? mask_from_valid(g, txt.valid) : NULL;
        tensor *t = txt.seq, *v = img.seq;
        for (int i = 0; i < m->depth; i++) {
            tensor *pt = NULL, *pv = NULL;
            tensor *t_next = cross_block_forward(g, &m->t2i[i], t, v, NULL, sink ? &pt : NULL);
            char name[ATTENTION_NAME_MAX];
            snprintf(name, sizeof name, "xattn.%d.attn", i);
            attention_sink_put(sink, name, ATTENTION_CROSS, pt);
            if (m->reverse) {
                v = cross_block_forward(g, &m->i2t[i], v, t, text_mask, sink ? &pv : NULL);
                snprintf(name, sizeof name, "xattn_rev.%d.attn", i);
                attention_sink_put(sink, name, ATTENTION_CROSS, pv);
            }
            t = t_next;
        }
        feats[0] =
            fusion_pool(g, layer_norm_layer_forward(g, &m->ln_text, t), txt.valid, m->cls_pool);
        feats[1] = m->reverse ? fusion_pool(g, layer_norm_layer_forward(g, &m->ln_image, v), NULL,
                                            m->cls_pool)
                              : img.pooled;
    }
    tensor *h = linear_layer_gelu_forward(g, &m->fc1, op_concat(g, 2, feats, -1), GELU_ERF);
    h = op_dropout(g, h, m->dropout);
    return linear_layer_forward(g, &m->fc2, h);
}

const model_kind model_kind_fusion = {
    .name = "fusion",
    .summary = "image+text classifier: image tower, text tower, concat or cross-attention fusion",
    .options_help =
        "  --fusion concat|xattn (xattn) --xattn-depth N (1) --xattn-reverse (off)\n"
        "  --image-tower vit --text-tower transformer --freeze-image --freeze-text (off)\n"
        "  towers: --dim C (128) --depth N (2) --heads NH (4) --ffn F (4*dim) --patch P (4)\n"
        "  --max-len L (dataset's) --pool mean|cls (mean) --dropout P (0)\n"
        "  image tower: --augment (off) --crop-pad N (2) --flip (on)",
    .needs_images = true,
    .needs_tokens = true,
    .create = fusion_create,
    .forward = fusion_forward,
    .destroy = fusion_destroy,
};
