/*
 * resnet.c - residual networks (He et al. 2016) in two layouts:
 *
 *   resnet20, resnet56 (CIFAR layout): conv3x3 stem of W channels, three
 *       stages of n = (depth - 2) / 6 basic blocks of W, 2W, 4W channels
 *       (W = 16), strides 1, 2, 2; with --block bottleneck n = (depth - 2) / 9
 *       bottleneck blocks of 4x those widths.
 *   resnet18 (ImageNet layout): stem conv7x7/2 + max pool 3x3/2
 *       (--stem imagenet) or conv3x3/1 for small images (--stem small, the
 *       default), four stages of 2 blocks of W, 2W, 4W, 8W channels (W = 64),
 *       strides 1, 2, 2, 2.
 *
 * Both end in global average pooling and a linear head. Shortcuts are 1x1
 * projections (conv + bn) where the shape changes. --cbam puts a CBAM block
 * on every residual branch. Names follow torchvision: "conv1", "bn1",
 * "layer1.0.conv1", "layer1.0.downsample.0", "fc".
 */
#include "models/attention_sink.h"
#include "models/cnn_common.h"

#include "core/blocks_cnn.h"
#include "core/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { RESNET_MAX_STAGES = 4 };

typedef struct resnet {
    conv_layer stem;
    bn_layer stem_bn;
    bool stem_pool;
    residual_block *blocks;
    char (*block_names)[32]; /* "layer<s>.<i>", the blocks' parameter scopes */
    int n_blocks;
    linear_layer fc;
    cnn_augment aug;
} resnet;

typedef struct resnet_layout {
    const char *name;
    int stages, base_width, cifar_depth; /* cifar_depth 0: ImageNet layout */
    int blocks[RESNET_MAX_STAGES];       /* ImageNet layout */
} resnet_layout;

static void *resnet_create(params *ps, const model_config *cfg, const data_shape *shape,
                           const resnet_layout *lay, char *err, size_t errlen) {
    cnn_augment aug;
    if (!cnn_config_check(cfg, shape, &aug, err, errlen))
        return NULL;
    bool bottleneck = strcmp(cfg->block, "bottleneck") == 0;
    if (!bottleneck && strcmp(cfg->block, "basic") != 0) {
        snprintf(err, errlen, "--block must be basic or bottleneck, got '%s'", cfg->block);
        return NULL;
    }
    bool imagenet_stem = false;
    if (lay->cifar_depth == 0) {
        imagenet_stem = strcmp(cfg->stem, "imagenet") == 0;
        if (!imagenet_stem && cfg->stem[0] && strcmp(cfg->stem, "small") != 0) {
            snprintf(err, errlen, "--stem must be small or imagenet, got '%s'", cfg->stem);
            return NULL;
        }
    } else if (cfg->stem[0] && strcmp(cfg->stem, "small") != 0) {
        snprintf(err, errlen, "%s has the CIFAR stem only (--stem small), got '%s'", lay->name,
                 cfg->stem);
        return NULL;
    }
    int per_stage[RESNET_MAX_STAGES];
    for (int s = 0; s < lay->stages; s++)
        per_stage[s] =
            lay->cifar_depth ? (lay->cifar_depth - 2) / (bottleneck ? 9 : 6) : lay->blocks[s];
    if (lay->cifar_depth && (lay->cifar_depth - 2) % (bottleneck ? 9 : 6)) {
        snprintf(err, errlen, "%s: depth %d is not 9n+2, so --block bottleneck cannot build it",
                 lay->name, lay->cifar_depth);
        return NULL;
    }
    resnet *m = xcalloc(1, sizeof *m);
    m->aug = aug;
    int W = cfg->width > 0 ? cfg->width : lay->base_width;
    conv2d_geom g3 = {.stride = 1, .pad = 1, .dilation = 1, .groups = 1};
    conv2d_geom g7 = {.stride = 2, .pad = 3, .dilation = 1, .groups = 1};
    conv_layer_init(&m->stem, ps, "conv1", shape->channels, W, imagenet_stem ? 7 : 3,
                    imagenet_stem ? g7 : g3, false);
    bn_layer_init(&m->stem_bn, ps, "bn1", W, cfg->bn_momentum);
    m->stem_pool = imagenet_stem;
    for (int s = 0; s < lay->stages; s++)
        m->n_blocks += per_stage[s];
    m->blocks = xcalloc((size_t)m->n_blocks, sizeof *m->blocks);
    m->block_names = xcalloc((size_t)m->n_blocks, sizeof *m->block_names);
    int C = W, k = 0;
    for (int s = 0; s < lay->stages; s++) {
        int planes = W << s;
        for (int i = 0; i < per_stage[s]; i++) {
            char *name = m->block_names[k];
            snprintf(name, sizeof m->block_names[k], "layer%d.%d", s + 1, i);
            int stride = i == 0 && s > 0 ? 2 : 1;
            residual_block_init(&m->blocks[k], ps, name, C, planes, stride, bottleneck, cfg->cbam,
                                cfg->bn_momentum);
            C = residual_block_out(&m->blocks[k]);
            k++;
        }
    }
    linear_layer_init(&m->fc, ps, "fc", C, shape->num_classes, true);
    return m;
}

static tensor *resnet_forward(void *impl, graph *g, const model_batch *batch,
                              attention_sink *sink) {
    resnet *m = impl;
    tensor *x = cnn_input(g, &m->aug, batch);
    x = op_relu(g, bn_layer_forward(g, &m->stem_bn, conv_layer_forward(g, &m->stem, x)));
    if (m->stem_pool)
        x = op_max_pool2d(g, x, 3, 2, 1);
    for (int i = 0; i < m->n_blocks; i++) {
        cbam_gates gates;
        x = residual_block_forward_gates(g, &m->blocks[i], x, &gates);
        if (gates.channel) {
            char name[ATTENTION_NAME_MAX];
            snprintf(name, sizeof name, "%s.cbam.channel", m->block_names[i]);
            attention_sink_put(sink, name, ATTENTION_CHANNEL, gates.channel);
            snprintf(name, sizeof name, "%s.cbam.spatial", m->block_names[i]);
            attention_sink_put(sink, name, ATTENTION_SPATIAL, gates.spatial);
        }
    }
    return linear_layer_forward(g, &m->fc, op_global_avg_pool(g, x));
}

static void resnet_destroy(void *impl) {
    resnet *m = impl;
    free(m->blocks);
    free(m->block_names);
    free(m);
}

static const resnet_layout layout_resnet20 = {"resnet20", 3, 16, 20, {0}};
static const resnet_layout layout_resnet56 = {"resnet56", 3, 16, 56, {0}};
static const resnet_layout layout_resnet18 = {"resnet18", 4, 64, 0, {2, 2, 2, 2}};

static void *resnet20_create(params *ps, const model_config *cfg, const data_shape *shape,
                             char *err, size_t errlen) {
    return resnet_create(ps, cfg, shape, &layout_resnet20, err, errlen);
}
static void *resnet56_create(params *ps, const model_config *cfg, const data_shape *shape,
                             char *err, size_t errlen) {
    return resnet_create(ps, cfg, shape, &layout_resnet56, err, errlen);
}
static void *resnet18_create(params *ps, const model_config *cfg, const data_shape *shape,
                             char *err, size_t errlen) {
    return resnet_create(ps, cfg, shape, &layout_resnet18, err, errlen);
}

#define RESNET_COMMON_HELP                                                                         \
    "  --cbam (off) --augment (off) --crop-pad N (2) --flip (on) --bn-momentum M (0.1)"

const model_kind model_kind_resnet20 = {
    .name = "resnet20",
    .summary = "CIFAR-style ResNet-20 (3 stages of 3 basic blocks, 16/32/64 channels)",
    .options_help = "  --width W (16) --block basic|bottleneck (basic; bottleneck: 2 per "
                    "stage)\n" RESNET_COMMON_HELP,
    .needs_images = true,
    .create = resnet20_create,
    .forward = resnet_forward,
    .destroy = resnet_destroy,
};

const model_kind model_kind_resnet56 = {
    .name = "resnet56",
    .summary = "CIFAR-style ResNet-56 (3 stages of 9 basic blocks, 16/32/64 channels)",
    .options_help = "  --width W (16) --block basic|bottleneck (basic; bottleneck: 6 per "
                    "stage)\n" RESNET_COMMON_HELP,
    .needs_images = true,
    .create = resnet56_create,
    .forward = resnet_forward,
    .destroy = resnet_destroy,
};

const model_kind model_kind_resnet18 = {
    .name = "resnet18",
    .summary = "ImageNet-style ResNet-18 (4 stages of 2 blocks, 64..512 channels)",
    .options_help = "  --width W (64) --stem small|imagenet (small) --block basic|bottleneck "
                    "(basic)\n" RESNET_COMMON_HELP,
    .needs_images = true,
    .create = resnet18_create,
    .forward = resnet_forward,
    .destroy = resnet_destroy,
};
