/*
 * attention_sink.h - where a model's forward pass leaves the attention
 * probabilities it used, so `heed explain` can export and draw them.
 *
 * The caller owns the sink and clears it before each forward pass; a model
 * that is handed a sink (not NULL) puts every attention map it computed,
 * each under its parameter-scope name ("blocks.0.attn"), and says how its
 * tokens are laid out (a [CLS] token first? a grid of image patches?). The
 * sink holds pointers only: the maps live in the graph arena and stay valid
 * until graph_reset.
 *
 *   attention_sink sink;
 *   attention_sink_clear(&sink);
 *   tensor *logits = model_forward(m, g, &batch, &sink);
 *   for (int i = 0; i < sink.count; i++) ... sink.maps[i].probs ...
 */
#ifndef HEED_MODELS_ATTENTION_SINK_H
#define HEED_MODELS_ATTENTION_SINK_H

#include "core/tensor.h"

#include <stdbool.h>

typedef enum attention_kind {
    ATTENTION_SELF,     /* (B, NH, T, T): query token x key token, per head */
    ATTENTION_CROSS,    /* (B, NH, T, S): queries of one sequence over another's keys */
    ATTENTION_ADDITIVE, /* (B, T): additive attention pooling weights over tokens */
    ATTENTION_CHANNEL,  /* (B, C): a channel gate (CBAM), sigmoid values, not a distribution */
    ATTENTION_SPATIAL,  /* (B, H, W): a spatial gate (CBAM), sigmoid values */
    ATTENTION_KIND_COUNT,
} attention_kind;

/* "self", "cross", "additive", "channel", "spatial". */
const char *attention_kind_name(attention_kind kind);

/* True for kinds whose last dimension is a probability distribution (rows
 * sum to 1 over the unmasked positions). */
bool attention_kind_is_distribution(attention_kind kind);

enum { ATTENTION_SINK_MAX = 64, ATTENTION_NAME_MAX = 64 };

typedef struct attention_map {
    char name[ATTENTION_NAME_MAX];
    attention_kind kind;
    const tensor *probs; /* in the graph arena */
} attention_map;

/* How the tokens the self-attention maps range over relate to the input. */
typedef enum attention_input {
    ATTENTION_INPUT_NONE,   /* not set by the model */
    ATTENTION_INPUT_TOKENS, /* token t is input token t (text) */
    ATTENTION_INPUT_PATCHES /* token first_patch + i is patch i of a grid_h x grid_w grid */
} attention_input;

struct attention_sink {
    attention_map maps[ATTENTION_SINK_MAX];
    int count;
    attention_input input;
    int first_patch;    /* patches: tokens before the grid ([CLS]) */
    int grid_h, grid_w; /* patches: the grid */
    int pool_token;     /* the token the classifier reads, or -1 for a mean over tokens */
};
typedef struct attention_sink attention_sink;

void attention_sink_clear(attention_sink *s);

/* Records a map; a NULL sink ignores it, so models call this without a
 * check. Aborts (a bug in the model) when the sink is full or the shape
 * does not fit the kind. */
void attention_sink_put(attention_sink *s, const char *name, attention_kind kind,
                        const tensor *probs);

/* The n maps of an encoder stack, named "<prefix><i>.attn". */
void attention_sink_put_stack(attention_sink *s, const char *prefix, tensor *const *probs, int n);

/* Models say how their self-attention tokens map to the input. */
void attention_sink_set_tokens(attention_sink *s, int pool_token);
void attention_sink_set_patches(attention_sink *s, int first_patch, int grid_h, int grid_w,
                                int pool_token);

/* The map called `name`, or NULL. */
const attention_map *attention_sink_find(const attention_sink *s, const char *name);

/* Attention rollout (Abnar and Zuidema, 2020) over the sink's self-attention
 * maps whose names start with `prefix` ("": those of the first map's tower,
 * i.e. its name up to "blocks."), in the order they were put: per layer the heads are averaged, the
 * residual added as 0.5 A + 0.5 I, rows renormalised, and the layers
 * multiplied, R = A_L ... A_1. Writes for sample b the relevance of every
 * token to the pooled output into out[T]: row `pool_token` of R, or the mean
 * of R's rows over valid tokens for mean pooling. valid (T floats, 1 or 0)
 * may be NULL (all valid); invalid tokens get 0. `scratch` has room for
 * 3 * T * T floats. Returns T, or 0 when the sink has no self-attention. */
int attention_rollout(const attention_sink *s, const char *prefix, int b, const float *valid,
                      float *out, float *scratch);

/* T of the first self-attention map under `prefix`, or 0 when none. */
int attention_rollout_tokens(const attention_sink *s, const char *prefix);

#endif
