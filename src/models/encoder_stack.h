/*
 * encoder_stack.h - N Transformer encoder blocks and a final layer norm, the
 * trunk that the Transformer classifier, BERT and ViT share.
 */
#ifndef HEED_MODELS_ENCODER_STACK_H
#define HEED_MODELS_ENCODER_STACK_H

#include "core/blocks.h"
#include "models/model.h"

typedef struct encoder_stack {
    encoder_block *blocks; /* owned, depth of them */
    int depth;
    layer_norm_layer ln_f; /* only with pre-norm blocks */
    bool pre_norm;
} encoder_stack;

/* Registers "blocks.<i>.*" and, for pre-norm, "ln_f.*". */
void encoder_stack_init(encoder_stack *s, params *ps, const encoder_block_config *cfg, int depth);
void encoder_stack_free(encoder_stack *s);

/* x (B, T, C), mask additive (B, T) or NULL. probs_out, if not NULL, has
 * room for depth pointers and receives each block's (B, NH, T, T) probs. */
tensor *encoder_stack_forward(graph *g, const encoder_stack *s, tensor *x, const tensor *mask,
                              tensor **probs_out);

/* The stack's output at token `token` only, (B, 1, C): the last block runs
 * through encoder_block_forward_token. For classifiers that read one token;
 * up to rounding, row `token` of encoder_stack_forward. */
tensor *encoder_stack_forward_token(graph *g, const encoder_stack *s, tensor *x, const tensor *mask,
                                    int token);

/* The config of a block from the model config (FFN 0 means 4 * dim). */
encoder_block_config encoder_config_from(const model_config *cfg, bool pre_norm);

/* Checks dim/heads/depth; false with a message naming the option. */
bool encoder_config_check(const model_config *cfg, char *err, size_t errlen);

#endif
