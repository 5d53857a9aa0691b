/*
 * optim.h - Adam/AdamW, gradient clipping and learning-rate schedules.
 *
 * The optimiser works on a range [lo, hi) of the flat parameter buffer, so
 * the same code serves replicated Adam (the whole range on every rank) and
 * ZeRO-1 (each rank its own shard). Moments m and v cover exactly [lo, hi).
 */
#ifndef HEED_CORE_OPTIM_H
#define HEED_CORE_OPTIM_H

#include "core/params.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct adam_config {
    float beta1, beta2, eps;
    float weight_decay; /* AdamW (decoupled) decay, on tensors with ps->decay */
    bool decoupled;     /* true: AdamW; false: Adam with L2 added to the gradient */
} adam_config;

/* PyTorch's defaults: betas (0.9, 0.999), eps 1e-8, AdamW. */
adam_config adam_config_default(void);

typedef struct adam_state {
    int64_t lo, hi; /* the range of the parameter buffer these moments cover */
    float *m, *v;   /* owned, hi - lo each */
    int64_t t;      /* steps taken (bias correction) */
} adam_state;

void adam_state_init(adam_state *s, int64_t lo, int64_t hi);
void adam_state_free(adam_state *s);

/* One update of ps->data[lo, hi) from `grad` (which holds the gradient of
 * that range: ps->grad + lo when replicated, or a reduce-scatter's shard),
 * scaled by grad_scale first (clipping). Frozen tensors are skipped. */
void adam_step(const adam_config *cfg, adam_state *s, params *ps, const float *grad, float lr,
               float grad_scale);

/* Sum of squares of g[0, n), in double. */
double sum_squares(const float *g, int64_t n);

/* The factor that brings a gradient of global norm `norm` within max_norm
 * (1 when no clipping is needed or max_norm <= 0), as torch's clip_grad_norm_. */
float clip_scale(double norm, float max_norm);

typedef enum lr_schedule { LR_CONSTANT, LR_COSINE, LR_LINEAR } lr_schedule;

/* Learning rate at step `step` (0-based) of `total`: linear warmup from 0 over
 * `warmup` steps, then constant, cosine to 0 or linear to 0. */
float lr_at(lr_schedule kind, float base_lr, int64_t step, int64_t warmup, int64_t total);

#endif
