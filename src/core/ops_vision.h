/*
 * ops_vision.h - differentiable operations on images (B, C, H, W).
 *
 * Same contract as ops.h: graph first, inputs, then sizes; the output lives
 * in the graph's arena; backward kernels ADD into input gradients; shapes are
 * checked with HEED_ASSERT (a mismatch is a bug in model code). Scratch
 * (im2col columns) comes from the arena too: no malloc in forward/backward.
 */
#ifndef HEED_CORE_OPS_VISION_H
#define HEED_CORE_OPS_VISION_H

#include "core/graph.h"
#include "core/tensor.h"

/* ---- ops_conv.c ------------------------------------------------------ */

typedef struct conv2d_geom {
    int stride, pad, dilation, groups; /* all >= 1 except pad >= 0 */
} conv2d_geom;

/* 2-D cross-correlation as PyTorch's Conv2d: x (B, C, H, W), w (OC, C/G,
 * KH, KW), b (OC) or NULL. Returns (B, OC, OH, OW) with
 * OH = (H + 2 pad - dilation (KH - 1) - 1) / stride + 1 (same for W).
 * im2col + cblas_sgemm per sample and group; a 1x1 stride-1 unpadded conv
 * multiplies the input directly. */
tensor *op_conv2d(graph *g, tensor *x, tensor *w, tensor *b, conv2d_geom geom);

/* ---- ops_pool2d.c ---------------------------------------------------- */

/* K x K max / average pooling with stride S and zero padding P (padding never
 * wins a max; the average counts the padding, PyTorch's default). */
tensor *op_max_pool2d(graph *g, tensor *x, int K, int S, int P);
tensor *op_avg_pool2d(graph *g, tensor *x, int K, int S, int P);
/* Mean / max over H and W: x (B, C, H, W) -> (B, C). */
tensor *op_global_avg_pool(graph *g, tensor *x);
tensor *op_global_max_pool(graph *g, tensor *x);
/* CBAM's channel pooling: x (B, C, H, W) -> (B, 2, H, W) with channel 0 the
 * max over C and channel 1 the mean over C. */
tensor *op_channel_pool(graph *g, tensor *x);
/* Gating: x (B, C, H, W) * s, with s (B, C) one factor per channel, or
 * s (B, 1, H, W) one factor per position. Both carry gradients. */
tensor *op_scale_channels(graph *g, tensor *x, tensor *s);
tensor *op_scale_spatial(graph *g, tensor *x, tensor *s);

/* ---- ops_batchnorm.c ------------------------------------------------- */

/* Batch norm over (B, H, W) per channel of x (B, C, H, W) or (B, C), with
 * weight w (C) and bias b (C). In training mode it normalises with the
 * batch's mean and biased variance and updates the running statistics in
 * place: rm = (1 - momentum) rm + momentum mean, rv likewise with the
 * unbiased variance (PyTorch). In eval mode it uses rm and rv. running_mean
 * and running_var (C) are buffers: read and written, never differentiated. */
tensor *op_batch_norm(graph *g, tensor *x, tensor *w, tensor *b, tensor *running_mean,
                      tensor *running_var, float momentum, float eps);

/* ---- ops_augment.c --------------------------------------------------- */

/* On-the-fly augmentation of images (B, C, H, W), in training mode only
 * (identity otherwise): a random crop of the image zero-padded by `pad` on
 * every side (pad 0: no crop) and, when `flip`, a horizontal flip with
 * probability 1/2. The draws of row b are keyed by (graph_rng_stream,
 * graph_sample_id(b)): a sample is augmented the same way whichever rank or
 * micro-batch it lands in. Not differentiable (inputs are data). */
tensor *op_augment_images(graph *g, tensor *x, int pad, bool flip);

#endif
