/*
 * blocks.c - linear, layer norm, multi-head attention, encoder block and
 * additive attention, composed from the ops.
 */
#include "core/blocks.h"

#include "core/check.h"

#include <math.h>

void linear_layer_init(linear_layer *l, params *ps, const char *name, int in, int out, bool bias) {
    float bound = 1.0f / sqrtf((float)in);
    params_push_scope(ps, "%s", name);
    l->weight = params_add(ps, "weight", PARAM_INIT(INIT_UNIFORM, bound), 2, (int[]){out, in});
    l->bias =
        bias ? params_add(ps, "bias", PARAM_INIT(INIT_UNIFORM, bound), 1, (int[]){out}) : NULL;
    params_pop_scope(ps);
    l->in = in;
    l->out = out;
}

tensor *linear_layer_forward(graph *g, const linear_layer *l, tensor *x) {
    return op_linear(g, x, l->weight, l->bias);
}

tensor *linear_layer_gelu_forward(graph *g, const linear_layer *l, tensor *x, gelu_kind kind) {
    return op_linear_gelu(g, x, l->weight, l->bias, kind);
}

void layer_norm_layer_init(layer_norm_layer *l, params *ps, const char *name, int C, float eps) {
    params_push_scope(ps, "%s", name);
    l->weight = params_add(ps, "weight", PARAM_INIT(INIT_ONES, 0), 1, (int[]){C});
    l->bias = params_add(ps, "bias", PARAM_INIT(INIT_ZEROS, 0), 1, (int[]){C});
    params_pop_scope(ps);
    l->eps = eps;
}

tensor *layer_norm_layer_forward(graph *g, const layer_norm_layer *l, tensor *x) {
    return op_layer_norm(g, x, l->weight, l->bias, l->eps);
}

void mha_init(mha *m, params *ps, const char *name, int C, int NH, float p_attn) {
    HEED_ASSERT(NH > 0 && C % NH == 0);
    params_push_scope(ps, "%s", name);
    linear_layer_init(&m->q, ps, "q", C, C, true);
    linear_layer_init(&m->k, ps, "k", C, C, true);
    linear_layer_init(&m->v, ps, "v", C, C, true);
    linear_layer_init(&m->o, ps, "o", C, C, true);
    params_pop_scope(ps);
    m->C = C;
    m->NH = NH;
    m->p_attn = p_attn;
}

tensor *mha_forward(graph *g, const mha *m, tensor *q_in, tensor *kv_in, const tensor *kv_mask,
                    tensor **probs_out) {
    if (q_in == kv_in) {
        /* self-attention: one product for q, k and v */
        tensor *w[3] = {m->q.weight, m->k.weight, m->v.weight};
        tensor *b[3] = {m->q.bias, m->k.bias, m->v.bias};
        tensor *y = op_self_attention(g, q_in, w, b, kv_mask, m->NH, m->p_attn, probs_out);
        return linear_layer_forward(g, &m->o, y);
    }
    tensor *q = linear_layer_forward(g, &m->q, q_in);
    tensor *k = linear_layer_forward(g, &m->k, kv_in);
    tensor *v = linear_layer_forward(g, &m->v, kv_in);
    tensor *y = op_attention(g, q, k, v, kv_mask, m->NH, m->p_attn, probs_out);
    return linear_layer_forward(g, &m->o, y);
}

void encoder_block_init(encoder_block *e, params *ps, const char *name,
                        const encoder_block_config *cfg) {
    params_push_scope(ps, "%s", name);
    layer_norm_layer_init(&e->ln1, ps, "ln1", cfg->C, cfg->ln_eps);
    mha_init(&e->attn, ps, "attn", cfg->C, cfg->NH, cfg->dropout);
    layer_norm_layer_init(&e->ln2, ps, "ln2", cfg->C, cfg->ln_eps);
    linear_layer_init(&e->fc1, ps, "fc1", cfg->C, cfg->FFN, true);
    linear_layer_init(&e->fc2, ps, "fc2", cfg->FFN, cfg->C, true);
    params_pop_scope(ps);
    e->pre_norm = cfg->pre_norm;
    e->act = cfg->act;
    e->dropout = cfg->dropout;
}

static tensor *encoder_ffn(graph *g, const encoder_block *e, tensor *x) {
    tensor *h = linear_layer_gelu_forward(g, &e->fc1, x, e->act);
    return op_dropout(g, linear_layer_forward(g, &e->fc2, h), e->dropout);
}

/* x (B, 1, C): row t of x (B, T, C), as a (B, 1, C) sequence. */
static tensor *token_row(graph *g, tensor *x, int t) {
    return graph_reshape(g, op_select_token(g, x, t), 3, (int[]){x->shape[0], 1, x->shape[2]});
}

/* The block at every token (token < 0) or at one: then its queries and
 * residual stream are that token's row only, and all T tokens serve as keys
 * and values, which is all the block's output at that token depends on. */
static tensor *encoder_block_rows(graph *g, const encoder_block *e, tensor *x, const tensor *mask,
                                  int token, tensor **probs_out) {
    tensor *kv = e->pre_norm ? layer_norm_layer_forward(g, &e->ln1, x) : x;
    tensor *q = token < 0 ? kv : token_row(g, kv, token);
    tensor *a = op_dropout(g, mha_forward(g, &e->attn, q, kv, mask, probs_out), e->dropout);
    tensor *res = token < 0 ? x : token_row(g, x, token);
    if (e->pre_norm) {
        res = op_add(g, res, a);
        tensor *h = layer_norm_layer_forward(g, &e->ln2, res);
        return op_add(g, res, encoder_ffn(g, e, h));
    }
    res = layer_norm_layer_forward(g, &e->ln1, op_add(g, res, a));
    return layer_norm_layer_forward(g, &e->ln2, op_add(g, res, encoder_ffn(g, e, res)));
}

tensor *encoder_block_forward(graph *g, const encoder_block *e, tensor *x, const tensor *mask,
                              tensor **probs_out) {
    return encoder_block_rows(g, e, x, mask, -1, probs_out);
}

tensor *encoder_block_forward_token(graph *g, const encoder_block *e, tensor *x, const tensor *mask,
                                    int token) {
    HEED_ASSERT(x->ndim == 3 && token >= 0 && token < x->shape[1]);
    return encoder_block_rows(g, e, x, mask, token, NULL);
}

void additive_attention_init(additive_attention *a, params *ps, const char *name, int C, int A) {
    params_push_scope(ps, "%s", name);
    linear_layer_init(&a->proj, ps, "proj", C, A, true);
    linear_layer_init(&a->v, ps, "v", A, 1, false);
    params_pop_scope(ps);
    a->C = C;
    a->A = A;
}

tensor *additive_attention_forward(graph *g, const additive_attention *a, tensor *x,
                                   const tensor *mask, tensor **weights_out) {
    int B = x->shape[0], T = x->shape[1];
    tensor *u = op_tanh(g, linear_layer_forward(g, &a->proj, x));
    tensor *e = graph_reshape(g, linear_layer_forward(g, &a->v, u), 2, (int[]){B, T});
    tensor *w = op_softmax(g, e, mask);
    if (weights_out)
        *weights_out = w;
    return op_weighted_sum(g, x, w);
}
