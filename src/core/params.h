/*
 * params.h - all parameters of a model in one buffer.
 *
 * Building a model is two passes. First every block registers its tensors
 * with params_add (name, shape, initialiser); the returned tensor headers are
 * stable but have no memory yet. Then params_alloc lays them out in ONE
 * contiguous float buffer (`data`), a second buffer of the same layout for
 * the gradients (`grad`), points every tensor into both, and initialises the
 * values. Adam moments, the all-reduce, gradient buckets and checkpoints are
 * then flat loops over [0, numel).
 *
 * Initial values depend only on (seed, parameter index, element index): the
 * same on every rank and for any rank count.
 *
 * Each tensor starts at a multiple of 16 floats (64 bytes); the padding
 * between tensors is zero in both buffers.
 */
#ifndef HEED_CORE_PARAMS_H
#define HEED_CORE_PARAMS_H

#include "core/tensor.h"

#include <stdbool.h>
#include <stdint.h>

typedef enum init_kind {
    INIT_ZEROS,
    INIT_ONES,
    INIT_CONSTANT,        /* a */
    INIT_NORMAL,          /* mean 0, std a */
    INIT_TRUNC_NORMAL,    /* mean 0, std a, redrawn outside [-2a, 2a] */
    INIT_UNIFORM,         /* U(-a, a) */
    INIT_XAVIER_UNIFORM,  /* U(-r, r), r = gain a * sqrt(6 / (fan_in + fan_out)) */
    INIT_XAVIER_NORMAL,   /* N(0, gain a * sqrt(2 / (fan_in + fan_out))) */
    INIT_KAIMING_UNIFORM, /* U(-r, r), r = sqrt(6 / fan_in) (ReLU gain) */
    INIT_KAIMING_NORMAL,  /* N(0, sqrt(2 / fan_in)) */
} init_kind;

typedef struct param_init {
    init_kind kind;
    float a;
} param_init;

/* fan_in/fan_out follow PyTorch: shape [out, in, k...] (first dim out). */
#define PARAM_INIT(kind_, a_) ((param_init){.kind = (kind_), .a = (a_)})

enum { PARAMS_NAME_MAX = 128, PARAMS_SCOPE_DEPTH = 8 };

typedef struct params {
    int count, cap;
    tensor **tensors; /* owned; tensors[i]->param == i */
    int64_t *offset;  /* element offset of tensor i in data/grad */
    param_init *init;
    bool *decay;  /* AdamW decays this tensor (matrices: yes; biases, norms: no) */
    bool *frozen; /* excluded from updates (its grad is still reduced) */
    bool *buffer; /* not a parameter: state such as batch-norm running statistics,
                   * saved in checkpoints with the rest of `data`, never updated by
                   * the optimiser (also frozen), no decay, gradient always zero */
    float *data, *grad;
    int64_t numel; /* length of data and grad, padding included */
    char scope[PARAMS_SCOPE_DEPTH][PARAMS_NAME_MAX];
    int depth;
} params;

void params_init(params *ps);
void params_free(params *ps);

/* Name prefixes for the tensors added between push and pop:
 * params_push_scope(ps, "blocks.%d", i) ... params_pop_scope(ps). */
void params_push_scope(params *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void params_pop_scope(params *ps);

/* Registers a tensor named "<scope>.<name>". Weight decay defaults to on for
 * tensors of 2 or more dimensions. Returns a header owned by ps. */
tensor *params_add(params *ps, const char *name, param_init init, int ndim, const int *shape);

/* Registers a buffer: like params_add, but marked buffer and frozen, with no
 * weight decay. Ops read and write its data directly (batch-norm running
 * statistics); nothing writes its gradient. */
tensor *params_add_buffer(params *ps, const char *name, param_init init, int ndim,
                          const int *shape);

/* Number of buffer elements (padding excluded), for buffer synchronisation. */
int64_t params_buffer_numel(const params *ps);

/* Lays out, allocates and initialises every registered tensor; zeroes grad. */
void params_alloc(params *ps, uint64_t seed);

/* Re-draws every value from `seed` (same result as a fresh params_alloc). */
void params_reset_values(params *ps, uint64_t seed);

void params_zero_grad(params *ps);

/* The tensor called `name`, or NULL. */
tensor *params_find(const params *ps, const char *name);

/* 64-bit FNV-1a hash of the parameter bytes: equal on all ranks after a step. */
uint64_t params_hash(const params *ps);

#endif
