#include "models/encoder_stack.h"

#include "core/check.h"

#include <stdio.h>
#include <stdlib.h>

void encoder_stack_init(encoder_stack *s, params *ps, const encoder_block_config *cfg, int depth) {
    s->depth = depth;
    s->pre_norm = cfg->pre_norm;
    s->blocks = xcalloc(depth > 0 ? depth : 1, sizeof *s->blocks);
    for (int i = 0; i < depth; i++) {
        char name[32];
        snprintf(name, sizeof name, "blocks.%d", i);
        encoder_block_init(&s->blocks[i], ps, name, cfg);
    }
    if (s->pre_norm)
        layer_norm_layer_init(&s->ln_f, ps, "ln_f", cfg->C, cfg->ln_eps);
}

void encoder_stack_free(encoder_stack *s) {
    free(s->blocks);
    s->blocks = NULL;
}

tensor *encoder_stack_forward(graph *g, const encoder_stack *s, tensor *x, const tensor *mask,
                              tensor **probs_out) {
    for (int i = 0; i < s->depth; i++)
        x = encoder_block_forward(g, &s->blocks[i], x, mask, probs_out ? &probs_out[i] : NULL);
    return s->pre_norm ? layer_norm_layer_forward(g, &s->ln_f, x) : x;
}

tensor *encoder_stack_forward_token(graph *g, const encoder_stack *s, tensor *x, const tensor *mask,
                                    int token) {
    for (int i = 0; i + 1 < s->depth; i++)
        x = encoder_block_forward(g, &s->blocks[i], x, mask, NULL);
    if (s->depth > 0)
        x = encoder_block_forward_token(g, &s->blocks[s->depth - 1], x, mask, token);
    else
        x = graph_reshape(g, op_select_token(g, x, token), 3, (int[]){x->shape[0], 1, x->shape[2]});
    return s->pre_norm ? layer_norm_layer_forward(g, &s->ln_f, x) : x;
}

encoder_block_config encoder_config_from(const model_config *cfg, bool pre_norm) {
    return (encoder_block_config){.C = cfg->dim,
                                  .NH = cfg->heads,
                                  .FFN = cfg->ffn > 0 ? cfg->ffn : 4 * cfg->dim,
                                  .pre_norm = pre_norm,
                                  .act = GELU_ERF,
                                  .dropout = cfg->dropout,
                                  .ln_eps = 1e-5f};
}

bool encoder_config_check(const model_config *cfg, char *err, size_t errlen) {
    if (cfg->dim <= 0 || cfg->heads <= 0 || cfg->dim % cfg->heads != 0) {
        snprintf(err, errlen, "--dim (%d) must be a positive multiple of --heads (%d)", cfg->dim,
                 cfg->heads);
        return false;
    }
    if (cfg->depth < 0 || cfg->ffn < 0) {
        snprintf(err, errlen, "--depth and --ffn must not be negative");
        return false;
    }
    if (cfg->dropout < 0.0f || cfg->dropout >= 1.0f) {
        snprintf(err, errlen, "--dropout must be in [0, 1), got %g", cfg->dropout);
        return false;
    }
    return true;
}
