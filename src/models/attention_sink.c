#include "models/attention_sink.h"

#include "core/check.h"

#include <stdio.h>
#include <string.h>

static const char *const kind_names[ATTENTION_KIND_COUNT] = {
    [ATTENTION_SELF] = "self",         [ATTENTION_CROSS] = "cross",
    [ATTENTION_ADDITIVE] = "additive", [ATTENTION_CHANNEL] = "channel",
    [ATTENTION_SPATIAL] = "spatial",
};

const char *attention_kind_name(attention_kind kind) {
    return kind >= 0 && kind < ATTENTION_KIND_COUNT ? kind_names[kind] : "?";
}

bool attention_kind_is_distribution(attention_kind kind) {
    return kind == ATTENTION_SELF || kind == ATTENTION_CROSS || kind == ATTENTION_ADDITIVE;
}

void attention_sink_clear(attention_sink *s) {
    memset(s, 0, sizeof *s);
    s->pool_token = -1;
}

static int kind_ndim(attention_kind kind) {
    switch (kind) {
    case ATTENTION_SELF:
    case ATTENTION_CROSS:
        return 4;
    case ATTENTION_SPATIAL:
        return 3;
    default:
        return 2;
    }
}

void attention_sink_put(attention_sink *s, const char *name, attention_kind kind,
                        const tensor *probs) {
    if (!s)
        return;
    HEED_ASSERT(s->count < ATTENTION_SINK_MAX);
    HEED_ASSERT(probs && probs->dtype == DTYPE_F32 && probs->ndim == kind_ndim(kind));
    HEED_ASSERT(kind != ATTENTION_SELF || probs->shape[2] == probs->shape[3]);
    attention_map *m = &s->maps[s->count++];
    snprintf(m->name, sizeof m->name, "%s", name);
    m->kind = kind;
    m->probs = probs;
}

void attention_sink_put_stack(attention_sink *s, const char *prefix, tensor *const *probs, int n) {
    if (!s)
        return;
    for (int i = 0; i < n; i++) {
        char name[ATTENTION_NAME_MAX];
        snprintf(name, sizeof name, "%s%d.attn", prefix, i);
        attention_sink_put(s, name, ATTENTION_SELF, probs[i]);
    }
}

void attention_sink_set_tokens(attention_sink *s, int pool_token) {
    if (!s)
        return;
    s->input = ATTENTION_INPUT_TOKENS;
    s->first_patch = 0;
    s->pool_token = pool_token;
}

void attention_sink_set_patches(attention_sink *s, int first_patch, int grid_h, int grid_w,
                                int pool_token) {
    if (!s)
        return;
    s->input = ATTENTION_INPUT_PATCHES;
    s->first_patch = first_patch;
    s->grid_h = grid_h;
    s->grid_w = grid_w;
    s->pool_token = pool_token;
}

const attention_map *attention_sink_find(const attention_sink *s, const char *name) {
    for (int i = 0; i < s->count; i++)
        if (!strcmp(s->maps[i].name, name))
            return &s->maps[i];
    return NULL;
}

/* A = 0.5 * mean_h(P[b, h]) + 0.5 * I, rows renormalised. (T, T) */
static void rollout_layer(const tensor *p, int b, float *a) {
    int NH = p->shape[1], T = p->shape[2];
    const float *pb = p->data + (int64_t)b * NH * T * T;
    for (int i = 0; i < T * T; i++)
        a[i] = 0.0f;
    for (int h = 0; h < NH; h++)
        for (int i = 0; i < T * T; i++)
            a[i] += pb[(int64_t)h * T * T + i];
    for (int i = 0; i < T; i++) {
        float *row = a + (int64_t)i * T;
        double sum = 0.0;
        for (int j = 0; j < T; j++) {
            row[j] = 0.5f * row[j] / NH + (i == j ? 0.5f : 0.0f);
            sum += row[j];
        }
        for (int j = 0; j < T; j++)
            row[j] = (float)(row[j] / sum);
    }
}

/* "" means the tower of the first self-attention map: its name up to and
 * including "blocks." ("image.blocks." in a fusion model), so the layers of
 * another tower never enter the product. */
static void rollout_prefix(const attention_sink *s, const char *prefix, char *out, size_t len) {
    snprintf(out, len, "%s", prefix);
    if (prefix[0])
        return;
    for (int l = 0; l < s->count; l++)
        if (s->maps[l].kind == ATTENTION_SELF) {
            const char *name = s->maps[l].name, *at = strstr(name, "blocks.");
            if (at)
                snprintf(out, len, "%.*s", (int)(at - name) + 7, name);
            return;
        }
}

static bool rollout_map(const attention_map *m, const char *prefix) {
    return m->kind == ATTENTION_SELF && strncmp(m->name, prefix, strlen(prefix)) == 0;
}

int attention_rollout_tokens(const attention_sink *s, const char *prefix_arg) {
    char prefix[ATTENTION_NAME_MAX];
    rollout_prefix(s, prefix_arg, prefix, sizeof prefix);
    for (int l = 0; l < s->count; l++)
        if (rollout_map(&s->maps[l], prefix))
            return s->maps[l].probs->shape[2];
    return 0;
}

int attention_rollout(const attention_sink *s, const char *prefix_arg, int b, const float *valid,
                      float *out, float *scratch) {
    char prefix[ATTENTION_NAME_MAX];
    rollout_prefix(s, prefix_arg, prefix, sizeof prefix);
    int T = 0, layers = 0;
    float *r = scratch, *a = scratch, *tmp = scratch;
    for (int l = 0; l < s->count; l++) {
        const attention_map *m = &s->maps[l];
        if (!rollout_map(m, prefix))
            continue;
        int Tl = m->probs->shape[2];
        if (!layers) {
            T = Tl;
            r = scratch;
            a = scratch + (int64_t)T * T;
            tmp = scratch + 2 * (int64_t)T * T;
            rollout_layer(m->probs, b, r);
        } else {
            if (Tl != T)
                continue; /* another sequence (a second tower): not on this path */
            rollout_layer(m->probs, b, a);
            /* R <- A R: later layers mix the mixtures of earlier ones. */
            for (int i = 0; i < T; i++)
                for (int j = 0; j < T; j++) {
                    double acc = 0.0;
                    for (int k = 0; k < T; k++)
                        acc += (double)a[(int64_t)i * T + k] * r[(int64_t)k * T + j];
                    tmp[(int64_t)i * T + j] = (float)acc;
                }
            memcpy(r, tmp, sizeof(float) * T * T);
        }
        layers++;
    }
    if (!layers)
        return 0;
    if (s->pool_token >= 0 && s->pool_token < T) {
        memcpy(out, r + (int64_t)s->pool_token * T, sizeof(float) * T);
    } else {
        double nvalid = 0.0;
        for (int j = 0; j < T; j++)
            out[j] = 0.0f;
        for (int i = 0; i < T; i++) {
            if (valid && valid[i] == 0.0f)
                continue;
            nvalid += 1.0;
            for (int j = 0; j < T; j++)
                out[j] += r[(int64_t)i * T + j];
        }
        for (int j = 0; j < T; j++)
            out[j] = nvalid > 0 ? (float)(out[j] / nvalid) : 0.0f;
    }
    if (valid)
        for (int j = 0; j < T; j++)
            if (valid[j] == 0.0f)
                out[j] = 0.0f;
    return T;
}
