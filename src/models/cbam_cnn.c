/*
 * cbam_cnn.c - a small CNN with CBAM attention after each conv stage:
 *
 *   stage s (width W * 2^s, s = 0, 1, 2):
 *       [conv3x3 bn relu] x 2, CBAM, then 2x2 max pool (stages 0 and 1)
 *   global average pool, dropout, linear head.
 *
 * Names: "stages.S.conv1" ... "stages.S.cbam", "head". On 28x28 inputs with
 * W = 32 it is about 0.3M parameters.
 */
#include "models/attention_sink.h"
#include "models/cnn_common.h"

#include "core/blocks_cnn.h"
#include "core/check.h"

#include <stdio.h>
#include <stdlib.h>

enum { CBAM_CNN_STAGES = 3, CBAM_CNN_REDUCTION = 8 };

typedef struct cbam_cnn_stage {
    conv_layer conv1, conv2;
    bn_layer bn1, bn2;
    cbam att;
    bool pool;
} cbam_cnn_stage;

typedef struct cbam_cnn {
    cbam_cnn_stage stages[CBAM_CNN_STAGES];
    linear_layer head;
    cnn_augment aug;
    float dropout;
} cbam_cnn;

static void *cbam_cnn_create(params *ps, const model_config *cfg, const data_shape *shape,
                             char *err, size_t errlen) {
    cnn_augment aug;
    if (!cnn_config_check(cfg, shape, &aug, err, errlen))
        return NULL;
    if (shape->height < 4 || shape->width < 4) {
        snprintf(err, errlen, "cbam_cnn needs images of at least 4x4, got %dx%d", shape->height,
                 shape->width);
        return NULL;
    }
    if (cfg->dropout < 0.0f || cfg->dropout >= 1.0f) {
        snprintf(err, errlen, "--dropout %g must be in [0, 1)", (double)cfg->dropout);
        return NULL;
    }
    cbam_cnn *m = xcalloc(1, sizeof *m);
    m->aug = aug;
    m->dropout = cfg->dropout;
    int W = cfg->width > 0 ? cfg->width : 32, C = shape->channels;
    conv2d_geom same = {.stride = 1, .pad = 1, .dilation = 1, .groups = 1};
    for (int s = 0; s < CBAM_CNN_STAGES; s++) {
        cbam_cnn_stage *st = &m->stages[s];
        int OC = W << s;
        params_push_scope(ps, "stages.%d", s);
        conv_layer_init(&st->conv1, ps, "conv1", C, OC, 3, same, false);
        bn_layer_init(&st->bn1, ps, "bn1", OC, cfg->bn_momentum);
        conv_layer_init(&st->conv2, ps, "conv2", OC, OC, 3, same, false);
        bn_layer_init(&st->bn2, ps, "bn2", OC, cfg->bn_momentum);
        cbam_init(&st->att, ps, "cbam", OC, CBAM_CNN_REDUCTION);
        params_pop_scope(ps);
        st->pool = s < CBAM_CNN_STAGES - 1;
        C = OC;
    }
    linear_layer_init(&m->head, ps, "head", C, shape->num_classes, true);
    return m;
}

static tensor *cbam_cnn_forward(void *impl, graph *g, const model_batch *batch,
                                attention_sink *sink) {
    cbam_cnn *m = impl;
    tensor *x = cnn_input(g, &m->aug, batch);
    for (int s = 0; s < CBAM_CNN_STAGES; s++) {
        const cbam_cnn_stage *st = &m->stages[s];
        x = op_relu(g, bn_layer_forward(g, &st->bn1, conv_layer_forward(g, &st->conv1, x)));
        x = op_relu(g, bn_layer_forward(g, &st->bn2, conv_layer_forward(g, &st->conv2, x)));
        cbam_gates gates;
        x = cbam_forward_gates(g, &st->att, x, &gates);
        char name[ATTENTION_NAME_MAX];
        snprintf(name, sizeof name, "stages.%d.cbam.channel", s);
        attention_sink_put(sink, name, ATTENTION_CHANNEL, gates.channel);
        snprintf(name, sizeof name, "stages.%d.cbam.spatial", s);
        attention_sink_put(sink, name, ATTENTION_SPATIAL, gates.spatial);
        if (st->pool)
            x = op_max_pool2d(g, x, 2, 2, 0);
    }
    tensor *pooled = op_dropout(g, op_global_avg_pool(g, x), m->dropout);
    return linear_layer_forward(g, &m->head, pooled);
}

static void cbam_cnn_destroy(void *impl) {
    free(impl);
}

const model_kind model_kind_cbam_cnn = {
    .name = "cbam_cnn",
    .summary = "small CNN, CBAM attention after each of 3 conv stages",
    .options_help = "  --width W (32: stages of W, 2W, 4W channels) --dropout P (0)\n"
                    "  --augment (off) --crop-pad N (2) --flip (on) --bn-momentum M (0.1)",
    .needs_images = true,
    .needs_tokens = false,
    .create = cbam_cnn_create,
    .forward = cbam_cnn_forward,
    .destroy = cbam_cnn_destroy,
};
