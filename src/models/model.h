/*
 * model.h - the interface every model family implements, and the registry.
 *
 * A model is a params set plus a family-specific struct of blocks. The
 * trainer knows models only through this interface: it builds one from a
 * model_config and the shape of the data, then calls forward for logits.
 *
 *   model *m = model_create("vit", &cfg, &shape, err, sizeof err);
 *   tensor *logits = model_forward(m, g, &batch, NULL);   // (B, K)
 *   model_free(m);
 */
#ifndef HEED_MODELS_MODEL_H
#define HEED_MODELS_MODEL_H

#include "core/graph.h"
#include "core/params.h"

#include <stddef.h>
#include <stdio.h>

/* Hyperparameters shared by the model families; each family reads the
 * ones it documents (heed models lists them) and ignores none silently:
 * model_create rejects a value it cannot use. */
typedef struct model_config {
    int dim;     /* width C */
    int depth;   /* encoder blocks */
    int heads;   /* NH */
    int ffn;     /* FFN width (0: 4 * dim) */
    int patch;   /* ViT patch size */
    int max_len; /* text: longest sequence (0: the dataset's) */
    float dropout;
    char pool[8];  /* "mean", "cls" or "" (the model's own: BERT cls, others mean) */
    uint64_t seed; /* initial weights */
    /* CNNs (cbam_cnn, resnet*) */
    int width;         /* base channels (0: the family's default) */
    bool cbam;         /* resnet: CBAM inside every residual block */
    char stem[16];     /* resnet18: "small" (3x3, stride 1) or "imagenet" (7x7/2 + max pool) */
    char block[16];    /* resnet: "basic" or "bottleneck" */
    bool augment;      /* random crop (zero padding crop_pad) + flips in training */
    int crop_pad;      /* augmentation: padding of the random crop (0: no crop) */
    bool flip;         /* augmentation: random horizontal flips */
    float bn_momentum; /* batch-norm running-statistics momentum (PyTorch's 0.1) */
    int embed_dim; /* bilstm/bigru: embedding width (0: dim) */
    /* image+text fusion (fusion.c) */
    char fusion[8];       /* "concat" (pooled features) or "xattn" (cross-attention) */
    int xattn_depth;      /* cross-attention blocks */
    bool xattn_reverse;   /* image tokens also attend to the text */
    bool freeze_image;    /* the image tower gets no updates (and no backward) */
    bool freeze_text;     /* the text tower likewise */
    char image_tower[16]; /* "vit" */
    char text_tower[16];  /* "transformer" */
} model_config;

model_config model_config_default(void);

/* What the model must know about the data. */
typedef struct data_shape {
    int num_classes;
    int channels, height, width; /* 0 when the data has no images */
    int vocab_size, max_len;     /* 0 when the data has no tokens */
    int pad_id, cls_id, mask_id;
    int sep_id; /* text: [SEP] (BERT's MLM never masks it) */
} data_shape;

/* One (micro-)batch as the model sees it. */
typedef struct model_batch {
    int B;
    tensor *images;   /* (B, C, H, W) float, or NULL */
    tensor *tokens;   /* (B, T) int32, T <= max_len, or NULL */
    tensor *segments; /* (B, T) int32, or NULL */
} model_batch;

/* What a model's loss counts for evaluation: right predictions of all made. */
typedef struct model_loss_stats {
    int64_t correct, count;
} model_loss_stats;

/* Where forward puts attention probabilities for export (may be NULL). */
typedef struct attention_sink attention_sink;

typedef struct model_kind {
    const char *name;
    const char *summary;
    const char *options_help; /* one line per option it reads */
    bool needs_images, needs_tokens;
    /* Registers parameters in ps and returns the family's state; NULL with a
     * message in err when the config or data shape cannot be used. */
    void *(*create)(params *ps, const model_config *cfg, const data_shape *shape, char *err,
                    size_t errlen);
    tensor *(*forward)(void *impl, graph *g, const model_batch *batch, attention_sink *sink);
    void (*destroy)(void *impl);
    /* Optional training objective (NULL: cross-entropy of forward's logits
     * against the labels): a scalar, the mean over the batch's samples, so
     * the trainer's micro-batch scaling holds. Adds to stats when not NULL.
     * BERT's MLM uses it; labels may be ignored. */
    tensor *(*loss)(void *impl, graph *g, const model_batch *batch, const tensor *labels,
                    model_loss_stats *stats);
} model_kind;

typedef struct model {
    const model_kind *kind;
    params ps; /* allocated and initialised from cfg.seed by model_create */
    model_config cfg;
    data_shape shape;
    void *impl;
} model;

/* The model called `name` built for `shape`, parameters initialised from
 * cfg->seed; NULL with a message in err (unknown name, bad config). */
model *model_create(const char *name, const model_config *cfg, const data_shape *shape, char *err,
                    size_t errlen);
void model_free(model *m);

/* Logits (B, num_classes). */
tensor *model_forward(model *m, graph *g, const model_batch *batch, attention_sink *sink);

/* The training loss of one batch: kind->loss, or the mean cross-entropy
 * (label smoothing s, class_weights as op_cross_entropy_weighted: K floats
 * or NULL) of model_forward's logits. A model with its own objective
 * ignores s and class_weights. stats may be NULL. */
tensor *model_loss(model *m, graph *g, const model_batch *batch, const tensor *labels, float s,
                   const float *class_weights, model_loss_stats *stats);

/* The pooling the model called `name` runs with cfg: cfg->pool, or the
 * model's own when it is "" ("cls" for bert, "mean" for the others). */
const char *model_pool_effective(const char *name, const model_config *cfg);

/* The registry. */
const model_kind *model_kind_find(const char *name);
int model_kind_count(void);
const model_kind *model_kind_at(int i);
void model_kinds_print(FILE *out);

#endif
