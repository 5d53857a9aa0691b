/*
 * registry.c - maps model names to families, and the shared create/free.
 */
#include "models/model.h"

#include "core/check.h"
#include "core/ops.h"

#include <stdlib.h>
#include <string.h>

extern const model_kind model_kind_transformer;
extern const model_kind model_kind_vit;
extern const model_kind model_kind_cbam_cnn;
extern const model_kind model_kind_resnet20;
extern const model_kind model_kind_resnet56;
extern const model_kind model_kind_resnet18;
extern const model_kind model_kind_bilstm;
extern const model_kind model_kind_bigru;
extern const model_kind model_kind_fusion;
extern const model_kind model_kind_bert;
extern const model_kind model_kind_bert_mlm;

static const model_kind *const registry[] = {
    &model_kind_transformer,
    &model_kind_vit,
    &model_kind_cbam_cnn,
    &model_kind_resnet20,
    &model_kind_resnet56,
    &model_kind_resnet18,
    &model_kind_bilstm,
    &model_kind_bigru,
    &model_kind_fusion,
    &model_kind_bert,
    &model_kind_bert_mlm,
};

enum { REGISTRY_COUNT = sizeof registry / sizeof registry[0] };

model_config model_config_default(void) {
    model_config c = {.dim = 128,
                      .depth = 2,
                      .heads = 4,
                      .ffn = 0,
                      .patch = 4,
                      .max_len = 0,
                      .dropout = 0.0f,
                      .seed = 0};
    c.pool[0] = '\0'; /* the model's own: mean, BERT [CLS] */
    strcpy(c.block, "basic");
    c.crop_pad = 2;
    c.flip = true;
    c.bn_momentum = 0.1f;
    strcpy(c.fusion, "xattn");
    c.xattn_depth = 1;
    strcpy(c.image_tower, "vit");
    strcpy(c.text_tower, "transformer");
    return c;
}

const model_kind *model_kind_find(const char *name) {
    for (int i = 0; i < REGISTRY_COUNT; i++)
        if (strcmp(registry[i]->name, name) == 0)
            return registry[i];
    return NULL;
}

int model_kind_count(void) {
    return REGISTRY_COUNT;
}

const model_kind *model_kind_at(int i) {
    return i >= 0 && i < REGISTRY_COUNT ? registry[i] : NULL;
}

void model_kinds_print(FILE *out) {
    for (int i = 0; i < REGISTRY_COUNT; i++) {
        const model_kind *k = registry[i];
        fprintf(out, "%-14s %s (data: %s)\n%s\n", k->name, k->summary,
                k->needs_images && k->needs_tokens ? "images + tokens"
                : k->needs_images                  ? "images"
                                                   : "tokens",
                k->options_help);
    }
}

model *model_create(const char *name, const model_config *cfg, const data_shape *shape, char *err,
                    size_t errlen) {
    const model_kind *kind = model_kind_find(name);
    if (!kind) {
        int n = snprintf(err, errlen, "unknown model '%s'; known models:", name);
        for (int i = 0; i < REGISTRY_COUNT && n < (int)errlen; i++)
            n += snprintf(err + n, errlen - n, " %s", registry[i]->name);
        return NULL;
    }
    if (kind->needs_images && shape->channels == 0) {
        snprintf(err, errlen, "model '%s' needs images, and the dataset has none", name);
        return NULL;
    }
    if (kind->needs_tokens && shape->vocab_size == 0) {
        snprintf(err, errlen, "model '%s' needs tokens, and the dataset has none", name);
        return NULL;
    }
    model *m = xcalloc(1, sizeof *m);
    m->kind = kind;
    m->cfg = *cfg;
    m->shape = *shape;
    params_init(&m->ps);
    m->impl = kind->create(&m->ps, cfg, shape, err, errlen);
    if (!m->impl) {
        params_free(&m->ps);
        free(m);
        return NULL;
    }
    params_alloc(&m->ps, cfg->seed);
    return m;
}

void model_free(model *m) {
    if (!m)
        return;
    m->kind->destroy(m->impl);
    params_free(&m->ps);
    free(m);
}

tensor *model_forward(model *m, graph *g, const model_batch *batch, attention_sink *sink) {
    return m->kind->forward(m->impl, g, batch, sink);
}

const char *model_pool_effective(const char *name, const model_config *cfg) {
    if (cfg->pool[0])
        return cfg->pool;
    return strncmp(name, "bert", 4) == 0 ? "cls" : "mean";
}

tensor *model_loss(model *m, graph *g, const model_batch *batch, const tensor *labels, float s,
                   const float *class_weights, model_loss_stats *stats) {
    if (m->kind->loss)
        return m->kind->loss(m->impl, g, batch, labels, stats);
    tensor *logits = m->kind->forward(m->impl, g, batch, NULL);
    if (stats) {
        stats->correct += count_correct(logits, labels);
        stats->count += labels->numel;
    }
    return op_cross_entropy_weighted(g, logits, labels, s, class_weights);
}
