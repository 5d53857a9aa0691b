/*
 * blocks.h - the shared building blocks every model composes.
 *
 * A block is a plain struct of parameter tensors plus sizes. *_init
 * registers its parameters under the given name (a params scope), so names
 * read like PyTorch's state_dict keys ("blocks.0.attn.q.weight");
 * *_forward runs it on a graph. Blocks own no memory: parameters belong to
 * the params set, activations to the graph.
 *
 * The same multi-head attention serves BERT, the Transformer classifier, ViT
 * and cross-modal fusion; every attention block can hand back the attention
 * probabilities it used (for export and drawing).
 */
#ifndef HEED_CORE_BLOCKS_H
#define HEED_CORE_BLOCKS_H

#include "core/graph.h"
#include "core/ops.h"
#include "core/params.h"

/* Linear layer: "<name>.weight" (OUT, IN), "<name>.bias" (OUT). PyTorch's
 * default init: weight and bias U(-1/sqrt(IN), 1/sqrt(IN)). */
typedef struct linear_layer {
    tensor *weight, *bias; /* bias NULL when built without */
    int in, out;
} linear_layer;

void linear_layer_init(linear_layer *l, params *ps, const char *name, int in, int out, bool bias);
tensor *linear_layer_forward(graph *g, const linear_layer *l, tensor *x);
/* GELU(linear(x)) through op_linear_gelu. */
tensor *linear_layer_gelu_forward(graph *g, const linear_layer *l, tensor *x, gelu_kind kind);

/* Layer norm: "<name>.weight" (C) ones, "<name>.bias" (C) zeros. */
typedef struct layer_norm_layer {
    tensor *weight, *bias;
    float eps;
} layer_norm_layer;

void layer_norm_layer_init(layer_norm_layer *l, params *ps, const char *name, int C, float eps);
tensor *layer_norm_layer_forward(graph *g, const layer_norm_layer *l, tensor *x);

/* Scaled dot-product multi-head attention with separate projections
 * "<name>.q", ".k", ".v", ".o" (each C x C with bias). Self-attention passes
 * the same tensor as q_in and kv_in; cross-attention passes queries from one
 * sequence (B, T, C) and keys/values from another (B, S, C). kv_mask is an
 * additive (B, S) key-padding mask (mask_from_valid) or NULL. When probs_out
 * is not NULL it receives the (B, NH, T, S) attention probabilities. Dropout
 * p_attn applies to the probabilities in training mode. Returns (B, T, C). */
typedef struct mha {
    linear_layer q, k, v, o;
    int C, NH;
    float p_attn;
} mha;

void mha_init(mha *m, params *ps, const char *name, int C, int NH, float p_attn);
tensor *mha_forward(graph *g, const mha *m, tensor *q_in, tensor *kv_in, const tensor *kv_mask,
                    tensor **probs_out);

/* Transformer encoder block, pre-norm (x + attn(ln1(x)); x + ffn(ln2(x))) or
 * post-norm (ln1(x + attn(x)); ln2(x + ffn(x)), as in BERT). FFN is
 * fc1 (C -> FFN), GELU, fc2 (FFN -> C); dropout p on the attention output,
 * on the FFN output, and on the attention probabilities.
 * Names: "<name>.ln1", ".attn", ".ln2", ".fc1", ".fc2". */
typedef struct encoder_block {
    layer_norm_layer ln1, ln2;
    mha attn;
    linear_layer fc1, fc2;
    bool pre_norm;
    gelu_kind act;
    float dropout;
} encoder_block;

typedef struct encoder_block_config {
    int C, NH, FFN;
    bool pre_norm;
    gelu_kind act;
    float dropout;
    float ln_eps;
} encoder_block_config;

void encoder_block_init(encoder_block *e, params *ps, const char *name,
                        const encoder_block_config *cfg);
/* x (B, T, C); mask additive (B, T) or NULL; probs_out as in mha_forward. */
tensor *encoder_block_forward(graph *g, const encoder_block *e, tensor *x, const tensor *mask,
                              tensor **probs_out);
/* The block's output at token `token` only, (B, 1, C), up to rounding
 * equal to that row of encoder_block_forward: the other tokens enter as keys
 * and values only, so their queries, output projection and FFN are skipped.
 * A classifier that reads one token ([CLS]) runs its last block this way. */
tensor *encoder_block_forward_token(graph *g, const encoder_block *e, tensor *x, const tensor *mask,
                                    int token);

/* Additive (Bahdanau) attention pooling over tokens:
 *   e_t = v . tanh(W h_t + b),  a = softmax_t(e + mask),  out = sum_t a_t h_t.
 * Names: "<name>.proj" (A x C with bias), "<name>.v" (1 x A, no bias).
 * x (B, T, C), mask additive (B, T) or NULL; weights_out receives (B, T).
 * Returns (B, C). */
typedef struct additive_attention {
    linear_layer proj, v;
    int C, A;
} additive_attention;

void additive_attention_init(additive_attention *a, params *ps, const char *name, int C, int A);
tensor *additive_attention_forward(graph *g, const additive_attention *a, tensor *x,
                                   const tensor *mask, tensor **weights_out);

#endif
