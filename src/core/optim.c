/*
 * optim.c - Adam/AdamW on a range of the flat parameter buffer, clipping and
 * learning-rate schedules.
 */
#include "core/optim.h"

#include "core/check.h"
#include "core/fastmath.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

adam_config adam_config_default(void) {
    return (adam_config){
        .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.0f, .decoupled = true};
}

void adam_state_init(adam_state *s, int64_t lo, int64_t hi) {
    HEED_ASSERT(lo <= hi);
    s->lo = lo;
    s->hi = hi;
    s->m = xcalloc((size_t)(hi - lo) + 1, sizeof(float));
    s->v = xcalloc((size_t)(hi - lo) + 1, sizeof(float));
    s->t = 0;
}

void adam_state_free(adam_state *s) {
    free(s->m);
    free(s->v);
    memset(s, 0, sizeof *s);
}

/* The update of PyTorch's single-tensor Adam/AdamW, element by element, so
 * heed and torch agree to rounding. */
HEED_SIMD_CLONES static void adam_update(float *p, float *m, float *v, const float *g, int64_t n,
                                         float lr, float wd, bool decoupled, float b1, float b2,
                                         float eps, float bc1, float bc2_sqrt, float grad_scale) {
    float step_size = lr / bc1;
    float decay = decoupled ? 1.0f - lr * wd : 1.0f;
    float l2 = decoupled ? 0.0f : wd;
    for (int64_t i = 0; i < n; i++) {
        float gi = g[i] * grad_scale + l2 * p[i];
        float pi = p[i] * decay;
        m[i] = b1 * m[i] + (1.0f - b1) * gi;
        v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        p[i] = pi - step_size * (m[i] / denom);
    }
}

void adam_step(const adam_config *cfg, adam_state *s, params *ps, const float *grad, float lr,
               float grad_scale) {
    s->t++;
    float bc1 = 1.0f - powf(cfg->beta1, (float)s->t);
    float bc2_sqrt = sqrtf(1.0f - powf(cfg->beta2, (float)s->t));
    for (int i = 0; i < ps->count; i++) {
        int64_t begin = ps->offset[i], end = begin + ps->tensors[i]->numel;
        if (begin < s->lo)
            begin = s->lo;
        if (end > s->hi)
            end = s->hi;
        if (begin >= end || ps->frozen[i])
            continue;
        int64_t k = begin - s->lo;
        float wd = ps->decay[i] ? cfg->weight_decay : 0.0f;
        adam_update(ps->data + begin, s->m + k, s->v + k, grad + k, end - begin, lr, wd,
                    cfg->decoupled, cfg->beta1, cfg->beta2, cfg->eps, bc1, bc2_sqrt, grad_scale);
    }
}

double sum_squares(const float *g, int64_t n) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += (double)g[i] * g[i];
    return s;
}

float clip_scale(double norm, float max_norm) {
    if (max_norm <= 0.0f || !(norm > max_norm))
        return 1.0f;
    return (float)(max_norm / (norm + 1e-6));
}

float lr_at(lr_schedule kind, float base_lr, int64_t step, int64_t warmup, int64_t total) {
    if (step < warmup)
        return base_lr * (float)(step + 1) / (float)warmup;
    if (kind == LR_CONSTANT)
        return base_lr;
    int64_t span = total - warmup;
    double progress = span > 0 ? (double)(step - warmup) / (double)span : 1.0;
    if (progress > 1.0)
        progress = 1.0;
    if (kind == LR_COSINE)
        return (float)(base_lr * 0.5 * (1.0 + cos(3.14159265358979323846 * progress)));
    return (float)(base_lr * (1.0 - progress));
}
