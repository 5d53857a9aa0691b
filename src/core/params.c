#include "core/params.h"

#include "core/check.h"
#include "core/rng.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { PARAMS_ALIGN_FLOATS = 16 };

void params_init(params *ps) {
    memset(ps, 0, sizeof *ps);
}

void params_free(params *ps) {
    for (int i = 0; i < ps->count; i++) {
        free((char *)ps->tensors[i]->name);
        free(ps->tensors[i]);
    }
    free(ps->tensors);
    free(ps->offset);
    free(ps->init);
    free(ps->decay);
    free(ps->frozen);
    free(ps->buffer);
    free(ps->data);
    free(ps->grad);
    memset(ps, 0, sizeof *ps);
}

void params_push_scope(params *ps, const char *fmt, ...) {
    HEED_ASSERT(ps->depth < PARAMS_SCOPE_DEPTH);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ps->scope[ps->depth], PARAMS_NAME_MAX, fmt, ap);
    va_end(ap);
    ps->depth++;
}

void params_pop_scope(params *ps) {
    HEED_ASSERT(ps->depth > 0);
    ps->depth--;
}

static char *params_full_name(const params *ps, const char *name) {
    char buf[PARAMS_NAME_MAX * (PARAMS_SCOPE_DEPTH + 1)];
    int n = 0;
    for (int i = 0; i < ps->depth; i++)
        n += snprintf(buf + n, sizeof buf - n, "%s.", ps->scope[i]);
    snprintf(buf + n, sizeof buf - n, "%s", name);
    return xstrdup(buf);
}

tensor *params_add(params *ps, const char *name, param_init init, int ndim, const int *shape) {
    HEED_ASSERT(!ps->data);
    HEED_ASSERT(ndim >= 1 && ndim <= TENSOR_MAX_DIMS);
    if (ps->count == ps->cap) {
        ps->cap = ps->cap ? ps->cap * 2 : 64;
        ps->tensors = xrealloc(ps->tensors, sizeof *ps->tensors * ps->cap);
        ps->offset = xrealloc(ps->offset, sizeof *ps->offset * ps->cap);
        ps->init = xrealloc(ps->init, sizeof *ps->init * ps->cap);
        ps->decay = xrealloc(ps->decay, sizeof *ps->decay * ps->cap);
        ps->frozen = xrealloc(ps->frozen, sizeof *ps->frozen * ps->cap);
        ps->buffer = xrealloc(ps->buffer, sizeof *ps->buffer * ps->cap);
    }
    char *full = params_full_name(ps, name);
    if (params_find(ps, full))
        HEED_DIE(HEED_EXIT_INTERNAL, "parameter '%s' registered twice", full);
    tensor *t = xcalloc(1, sizeof *t);
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t->shape[i] = shape[i];
    t->numel = shape_numel(ndim, shape);
    t->dtype = DTYPE_F32;
    t->param = ps->count;
    t->name = full;
    int i = ps->count++;
    ps->tensors[i] = t;
    ps->offset[i] = ps->numel;
    ps->init[i] = init;
    ps->decay[i] = ndim >= 2;
    ps->frozen[i] = false;
    ps->buffer[i] = false;
    int64_t padded =
        (t->numel + PARAMS_ALIGN_FLOATS - 1) / PARAMS_ALIGN_FLOATS * PARAMS_ALIGN_FLOATS;
    ps->numel += padded;
    return t;
}

tensor *params_add_buffer(params *ps, const char *name, param_init init, int ndim,
                          const int *shape) {
    tensor *t = params_add(ps, name, init, ndim, shape);
    ps->buffer[t->param] = true;
    ps->frozen[t->param] = true;
    ps->decay[t->param] = false;
    return t;
}

int64_t params_buffer_numel(const params *ps) {
    int64_t n = 0;
    for (int i = 0; i < ps->count; i++)
        if (ps->buffer[i])
            n += ps->tensors[i]->numel;
    return n;
}

static void params_fans(const tensor *t, double *fan_in, double *fan_out) {
    double receptive = 1;
    for (int i = 2; i < t->ndim; i++)
        receptive *= t->shape[i];
    if (t->ndim == 1) {
        *fan_in = *fan_out = t->shape[0];
        return;
    }
    *fan_in = t->shape[1] * receptive;
    *fan_out = t->shape[0] * receptive;
}

static void params_fill(float *x, const tensor *t, param_init init, uint64_t key) {
    double fan_in, fan_out;
    params_fans(t, &fan_in, &fan_out);
    int64_t n = t->numel;
    double r;
    switch (init.kind) {
    case INIT_ZEROS:
        for (int64_t i = 0; i < n; i++)
            x[i] = 0.0f;
        break;
    case INIT_ONES:
        for (int64_t i = 0; i < n; i++)
            x[i] = 1.0f;
        break;
    case INIT_CONSTANT:
        for (int64_t i = 0; i < n; i++)
            x[i] = init.a;
        break;
    case INIT_NORMAL:
        for (int64_t i = 0; i < n; i++)
            x[i] = init.a * rng_normal(key, i);
        break;
    case INIT_TRUNC_NORMAL:
        for (int64_t i = 0; i < n; i++) {
            float z = rng_normal(key, i);
            /* Redraw from further counters of the same element. */
            for (uint64_t k = 1; fabsf(z) > 2.0f; k++)
                z = rng_normal(key, (uint64_t)i + ((uint64_t)n * k));
            x[i] = init.a * z;
        }
        break;
    case INIT_UNIFORM:
        for (int64_t i = 0; i < n; i++)
            x[i] = init.a * (2.0f * rng_uniform(key, i) - 1.0f);
        break;
    case INIT_XAVIER_UNIFORM:
        r = init.a * sqrt(6.0 / (fan_in + fan_out));
        for (int64_t i = 0; i < n; i++)
            x[i] = (float)(r * (2.0 * rng_uniform(key, i) - 1.0));
        break;
    case INIT_XAVIER_NORMAL:
        r = init.a * sqrt(2.0 / (fan_in + fan_out));
        for (int64_t i = 0; i < n; i++)
            x[i] = (float)(r * rng_normal(key, i));
        break;
    case INIT_KAIMING_UNIFORM:
        r = sqrt(6.0 / fan_in);
        for (int64_t i = 0; i < n; i++)
            x[i] = (float)(r * (2.0 * rng_uniform(key, i) - 1.0));
        break;
    case INIT_KAIMING_NORMAL:
        r = sqrt(2.0 / fan_in);
        for (int64_t i = 0; i < n; i++)
            x[i] = (float)(r * rng_normal(key, i));
        break;
    }
}

void params_reset_values(params *ps, uint64_t seed) {
    memset(ps->data, 0, sizeof(float) * ps->numel);
    for (int i = 0; i < ps->count; i++)
        params_fill(ps->data + ps->offset[i], ps->tensors[i], ps->init[i],
                    rng_key(seed, 0x1417, i));
}

void params_alloc(params *ps, uint64_t seed) {
    HEED_ASSERT(!ps->data);
    ps->data = xaligned_alloc(64, sizeof(float) * (ps->numel ? ps->numel : 1));
    ps->grad = xaligned_alloc(64, sizeof(float) * (ps->numel ? ps->numel : 1));
    for (int i = 0; i < ps->count; i++) {
        ps->tensors[i]->data = ps->data + ps->offset[i];
        ps->tensors[i]->grad = ps->grad + ps->offset[i];
    }
    params_reset_values(ps, seed);
    params_zero_grad(ps);
}

void params_zero_grad(params *ps) {
    memset(ps->grad, 0, sizeof(float) * ps->numel);
}

tensor *params_find(const params *ps, const char *name) {
    for (int i = 0; i < ps->count; i++)
        if (strcmp(ps->tensors[i]->name, name) == 0)
            return ps->tensors[i];
    return NULL;
}

uint64_t params_hash(const params *ps) {
    const unsigned char *p = (const unsigned char *)ps->data;
    uint64_t h = 1469598103934665603ULL;
    for (int64_t i = 0; i < ps->numel * (int64_t)sizeof(float); i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}
