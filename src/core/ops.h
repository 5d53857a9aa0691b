/*
 * ops.h - differentiable operations.
 *
 * Every op takes the graph first, then its inputs, then sizes/options, and
 * returns a new activation in the graph's arena. When a gradient flows into
 * any input (graph_wants_grad), the output gets a grad buffer and the op
 * records its backward on the tape. Backward kernels ADD into input grads.
 * Each op family lives in one file (ops_<family>.c) with its forward and
 * backward kernels side by side; tests/core checks every backward against
 * finite differences and PyTorch.
 *
 * Inputs are never modified. Shapes are checked with HEED_ASSERT: a shape
 * mismatch is a bug in the model code, not user input.
 */
#ifndef HEED_CORE_OPS_H
#define HEED_CORE_OPS_H

#include "core/graph.h"
#include "core/tensor.h"

/* ---- ops_matmul.c ---------------------------------------------------- */

/* x (..., C) @ w^T + b: w is (OC, C) as in PyTorch, b (OC) or NULL.
 * Returns (..., OC). */
tensor *op_linear(graph *g, tensor *x, tensor *w, tensor *b);

/* GELU's two forms: erf (exact, PyTorch's default) and tanh. */
typedef enum gelu_kind { GELU_ERF, GELU_TANH } gelu_kind;

/* op_gelu(op_linear(x, w, b), kind), bit for bit, in one op that keeps
 * GELU'(h) instead of the pre-activation h: its backward does no erf or exp
 * and needs no buffer for dh (it overwrites the output's gradient). */
tensor *op_linear_gelu(graph *g, tensor *x, tensor *w, tensor *b, gelu_kind kind);

/* Batched matrix product over the leading dims: a (..., M, K) or, with
 * trans_a, (..., K, M); b (..., K, N) or, with trans_b, (..., N, K).
 * Returns (..., M, N). 2-D inputs are a batch of one. */
tensor *op_matmul(graph *g, tensor *a, tensor *b, bool trans_a, bool trans_b);

/* ---- ops_attention.c ------------------------------------------------ */

/* Scaled dot-product attention over NH heads, fused (batched sgemm on
 * strided head views, no transposes): q (B, T, C), k and v (B, S, C); head h
 * uses channels [h*HS, (h+1)*HS). scores = q k^T / sqrt(HS) + mask, where
 * mask is an additive (B, S) key-padding mask or NULL; probs = softmax over
 * S (a fully masked row gives zeros); dropout p_drop on probs in training
 * mode; returns probs @ v as (B, T, C). When probs_out is not NULL it
 * receives the (B, NH, T, S) probabilities the output was computed from
 * (before dropout), without grad. */
tensor *op_attention(graph *g, tensor *q, tensor *k, tensor *v, const tensor *mask, int NH,
                     float p_drop, tensor **probs_out);

/* Self-attention with the q, k, v projections fused: the result of
 * op_attention(op_linear(x, w[0], b[0]), op_linear(x, w[1], b[1]),
 * op_linear(x, w[2], b[2]), mask, NH, p_drop, probs_out) up to rounding, from
 * one sgemm of 3C outputs instead of three of C (x read once, one dx
 * product in the backward). x (B, T, C); w[i] (C, C); b[i] (C) or NULL;
 * mask (B, T) or NULL. */
tensor *op_self_attention(graph *g, tensor *x, tensor *const w[3], tensor *const b[3],
                          const tensor *mask, int NH, float p_drop, tensor **probs_out);

/* ---- ops_elementwise.c ----------------------------------------------- */

tensor *op_add(graph *g, tensor *a, tensor *b); /* same shapes */
tensor *op_mul(graph *g, tensor *a, tensor *b); /* same shapes, elementwise */
tensor *op_scale(graph *g, tensor *x, float s);
/* x (..., C) + b (C): a bias broadcast over all rows. */
tensor *op_bias(graph *g, tensor *x, tensor *b);
/* x (B, T, C) + pos[0:T] where pos is (Tmax, C), Tmax >= T: learned or fixed
 * positions broadcast over the batch. pos may have no grad. */
tensor *op_add_positions(graph *g, tensor *x, tensor *pos);

/* ---- ops_activation.c ------------------------------------------------ */

tensor *op_relu(graph *g, tensor *x);
tensor *op_gelu(graph *g, tensor *x, gelu_kind kind);
tensor *op_tanh(graph *g, tensor *x);
tensor *op_sigmoid(graph *g, tensor *x);

/* ---- ops_softmax.c --------------------------------------------------- */

/* Softmax / log-softmax along the last dimension (C). `mask`, if not NULL,
 * is an additive float tensor (M, C) without grad (0 keeps, -INFINITY
 * removes) whose row r / (R / M) applies to row r of x's R rows, so one
 * (B, S) key-padding mask serves scores (B, NH, T, S). A row whose entries
 * are all removed yields zeros (softmax) and has no gradient. */
tensor *op_softmax(graph *g, tensor *x, const tensor *mask);
tensor *op_log_softmax(graph *g, tensor *x, const tensor *mask);

/* ---- ops_norm.c ------------------------------------------------------ */

/* Layer norm over the last dimension C with weight w (C) and bias b (C). */
tensor *op_layer_norm(graph *g, tensor *x, tensor *w, tensor *b, float eps);

/* ---- ops_dropout.c --------------------------------------------------- */

/* Inverted dropout with rate p, in training mode only (identity otherwise).
 * The first dimension of x is the batch; the mask of row b depends only on
 * (seed, step, op number, graph_sample_id(b), element coordinates), never on
 * the rank or the padded length. */
tensor *op_dropout(graph *g, tensor *x, float p);

/* The mask of one sample of per-sample shape dims[0..nd) (each below
 * 2^DROPOUT_COORD_BITS): keep = 1 where 16-bit lane (last coordinate % 4) of
 * rng_bits(key, coordinates packed in DROPOUT_COORD_BITS-bit fields, the
 * last one divided by 4) is >= round(p * 2^16). Keyed by coordinates, not
 * flat offsets, so padding a sequence longer does not move any mask. Shared
 * by op_dropout and attention-probability dropout. */
enum { DROPOUT_COORD_BITS = 20 };
void dropout_draw_keep(uint8_t *keep, uint64_t key, float p, int nd, const int *dims);

/* ---- ops_embedding.c ------------------------------------------------- */

/* ids int32 (...,) into table (V, C): returns (..., C). Backward adds into
 * the rows that were used only. Ids are assumed in [0, V) (datasets are
 * validated on load). */
tensor *op_embedding(graph *g, const tensor *ids, tensor *table);

/* Fixed sinusoidal positions (T, C) as in "Attention is all you need",
 * without grad: feed to op_add_positions. */
tensor *sinusoidal_positions(graph *g, int T, int C);

/* ---- ops_shape.c ----------------------------------------------------- */

/* Concatenates n tensors along `axis` (negative counts from the end); all
 * other dims equal. */
tensor *op_concat(graph *g, int n, tensor *const *xs, int axis);
/* Splits x along `axis` into n parts of sizes[i]; writes them to out[i]. */
void op_split(graph *g, tensor *x, int axis, int n, const int *sizes, tensor **out);
/* x (B, T, C) -> x[:, t, :] as (B, C) (e.g. [CLS] pooling). */
tensor *op_select_token(graph *g, tensor *x, int t);

/* ---- ops_patch.c ----------------------------------------------------- */

/* Images (B, C, H, W) cut into non-overlapping P x P patches, row-major over
 * the patch grid: returns (B, NP, C*P*P) with NP = (H/P)*(W/P), each patch
 * flattened as (c, py, px) like a Conv2d(kernel=stride=P) weight. H and W
 * must be multiples of P. Differentiable (images usually carry no grad). */
tensor *op_patchify(graph *g, tensor *images, int P);
/* Prepends one learned token tok (C) to every sequence of x (B, T, C):
 * returns (B, T + 1, C) ([CLS] of ViT and BERT-style pooling). */
tensor *op_prepend_token(graph *g, tensor *x, tensor *tok);

/* ---- ops_pool.c ------------------------------------------------------ */

/* Mean over tokens of x (B, T, C), counting only positions where
 * valid (B, T, int32) is non-zero (all positions if valid is NULL).
 * Returns (B, C); a row with no valid token gives zeros. */
tensor *op_masked_mean(graph *g, tensor *x, const tensor *valid);
/* Sum over tokens weighted by w: x (B, T, C), w (B, T) -> (B, C). Both may
 * carry gradients (attention pooling). */
tensor *op_weighted_sum(graph *g, tensor *x, tensor *w);

/* ---- ops_loss.c ------------------------------------------------------ */

/* Mean cross-entropy of logits (N, K) against int32 labels (N). Labels equal
 * to -1 are ignored (MLM); the mean is over the others. Label smoothing s
 * puts s/K on every class and 1-s on top. Returns a scalar of shape (1). */
tensor *op_cross_entropy(graph *g, tensor *logits, const tensor *labels, float smoothing);
/* op_cross_entropy with each row's term multiplied by class_weights[label]
 * (K floats, or NULL for all 1); the mean still divides by the number of
 * rows, not by the sum of their weights, so a batch's loss does not depend
 * on which classes it happened to draw. class_weights must stay valid until
 * backward has run. */
tensor *op_cross_entropy_weighted(graph *g, tensor *logits, const tensor *labels, float smoothing,
                                  const float *class_weights);

/* Number of rows whose arg-max equals the label (ignored labels skipped).
 * Not differentiable. */
int64_t count_correct(const tensor *logits, const tensor *labels);

/* Additive key-padding mask (B, T) from valid (B, T): 0 where valid,
 * -INFINITY where not. No grad. */
tensor *mask_from_valid(graph *g, const tensor *valid);
/* valid (B, T) int32: 1 where ids != pad_id. */
tensor *valid_from_ids(graph *g, const tensor *ids, int pad_id);

#endif
