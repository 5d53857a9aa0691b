/*
 * blocks_cnn.h - convolutional building blocks: conv and batch-norm layers,
 * CBAM attention, and ResNet's basic and bottleneck residual blocks.
 *
 * Same contract as blocks.h: *_init registers parameters under a name (names
 * read like PyTorch state_dict keys: "layer1.0.conv1.weight",
 * "layer1.0.bn1.running_mean"), *_forward runs on a graph, blocks own no
 * memory. Images are (B, C, H, W).
 */
#ifndef HEED_CORE_BLOCKS_CNN_H
#define HEED_CORE_BLOCKS_CNN_H

#include "core/blocks.h"
#include "core/ops_vision.h"

/* Conv2d "<name>.weight" (OC, C/G, K, K) Kaiming-normal (fan_in, ReLU gain),
 * "<name>.bias" (OC) zeros, or none. */
typedef struct conv_layer {
    tensor *weight, *bias;
    conv2d_geom geom;
} conv_layer;

void conv_layer_init(conv_layer *l, params *ps, const char *name, int C, int OC, int K,
                     conv2d_geom geom, bool bias);
tensor *conv_layer_forward(graph *g, const conv_layer *l, tensor *x);

/* BatchNorm2d/1d: "<name>.weight" ones, ".bias" zeros, buffers
 * ".running_mean" zeros and ".running_var" ones (C each); PyTorch's
 * momentum 0.1 and eps 1e-5 unless changed. */
typedef struct bn_layer {
    tensor *weight, *bias, *running_mean, *running_var;
    float momentum, eps;
} bn_layer;

void bn_layer_init(bn_layer *l, params *ps, const char *name, int C, float momentum);
tensor *bn_layer_forward(graph *g, const bn_layer *l, tensor *x);

/* CBAM (Woo et al. 2018): channel attention then spatial attention.
 *   channel: s = sigmoid(mlp(avgpool(x)) + mlp(maxpool(x))), x = x * s
 *            with one mlp "<name>.mlp.fc1" (C -> C/R, ReLU), ".mlp.fc2"
 *            (C/R -> C) shared by both descriptors (both run as one
 *            batch of 2B rows);
 *   spatial: a = sigmoid(conv7x7([max_c x, mean_c x]) ), x = x * a with
 *            "<name>.spatial" (1, 2, 7, 7) plus bias. */
typedef struct cbam {
    linear_layer fc1, fc2;
    conv_layer spatial;
} cbam;

void cbam_init(cbam *m, params *ps, const char *name, int C, int reduction);
tensor *cbam_forward(graph *g, const cbam *m, tensor *x);

/* The gates a CBAM forward applied, for attention export: channel (B, C) and
 * spatial (B, H, W), sigmoid values in the graph's arena. */
typedef struct cbam_gates {
    tensor *channel, *spatial;
} cbam_gates;

/* cbam_forward that also hands back its gates (gates may be NULL). */
tensor *cbam_forward_gates(graph *g, const cbam *m, tensor *x, cbam_gates *gates);

/* ResNet residual block (He et al. 2016, torchvision layout), with an
 * optional CBAM on the residual branch before the addition:
 *   basic:      conv3x3(stride) bn relu conv3x3 bn        (OC = planes)
 *   bottleneck: conv1x1 bn relu conv3x3(stride) bn relu conv1x1 bn
 *               (OC = 4 planes)
 *   out = relu(branch(x) + shortcut(x)), the shortcut a 1x1 conv + bn
 *   ("<name>.downsample.0/.1") when the stride or the width changes,
 *   identity otherwise. */
typedef struct residual_block {
    conv_layer conv1, conv2, conv3, down;
    bn_layer bn1, bn2, bn3, down_bn;
    cbam att;
    bool bottleneck, has_down, has_cbam;
} residual_block;

enum { RESNET_BOTTLENECK_EXPANSION = 4 };

void residual_block_init(residual_block *r, params *ps, const char *name, int C, int planes,
                         int stride, bool bottleneck, bool with_cbam, float bn_momentum);
/* Output channels of the block. */
int residual_block_out(const residual_block *r);
tensor *residual_block_forward(graph *g, const residual_block *r, tensor *x);
/* The same, handing back the CBAM gates (NULLs without CBAM; gates may be
 * NULL). */
tensor *residual_block_forward_gates(graph *g, const residual_block *r, tensor *x,
                                     cbam_gates *gates);

#endif
