#include "core/graph.h"

#include "core/check.h"

#include <stdlib.h>
#include <string.h>

typedef struct tape_entry {
    graph_backward_fn fn;
    void *ctx;
} tape_entry;

struct graph {
    arena *arena;
    tape_entry *tape; /* arena-allocated chunks would fragment; see graph_record */
    int tape_len, tape_cap;
    int *first_use;
    int n_params;
    bool training, grad_enabled;
    uint64_t seed, step, op_counter;
    int64_t *sample_ids;
    int n_samples, sample_cap;
    graph_backward_hook hook;
    void *hook_ctx;
};

graph *graph_create(size_t arena_bytes, int n_params) {
    graph *g = xcalloc(1, sizeof *g);
    g->arena = arena_create(arena_bytes);
    g->tape_cap = 256;
    g->tape = xmalloc(sizeof *g->tape * g->tape_cap);
    g->n_params = n_params;
    g->first_use = xmalloc(sizeof *g->first_use * (n_params > 0 ? n_params : 1));
    g->grad_enabled = true;
    graph_reset(g);
    return g;
}

void graph_free(graph *g) {
    if (!g)
        return;
    arena_free(g->arena);
    free(g->tape);
    free(g->first_use);
    free(g->sample_ids);
    free(g);
}

void graph_reset(graph *g) {
    arena_reset(g->arena);
    g->tape_len = 0;
    for (int i = 0; i < g->n_params; i++)
        g->first_use[i] = INT32_MAX;
}

void graph_set_training(graph *g, bool training) {
    g->training = training;
}

bool graph_training(const graph *g) {
    return g->training;
}

void graph_set_grad(graph *g, bool enabled) {
    g->grad_enabled = enabled;
}

bool graph_grad_enabled(const graph *g) {
    return g->grad_enabled;
}

void graph_begin_step(graph *g, uint64_t seed, uint64_t step, const int64_t *sample_ids, int n) {
    if (n > g->sample_cap) {
        /* Grows only while batch sizes are still being seen (first step). */
        g->sample_cap = n;
        g->sample_ids = xrealloc(g->sample_ids, sizeof *g->sample_ids * n);
    }
    if (n > 0)
        memcpy(g->sample_ids, sample_ids, sizeof *g->sample_ids * n);
    g->n_samples = n;
    g->seed = seed;
    g->step = step;
    g->op_counter = 0;
}

uint64_t graph_rng_stream(graph *g) {
    return g->seed ^ (0x5851f42d4c957f2dULL * (g->step + 1)) ^
           (0x2545f4914f6cdd1dULL * ++g->op_counter);
}

int64_t graph_sample_id(const graph *g, int b) {
    return b < g->n_samples ? g->sample_ids[b] : b;
}

arena *graph_arena(graph *g) {
    return g->arena;
}

tensor *graph_new(graph *g, dtype dt, int ndim, const int *shape, bool with_grad) {
    HEED_ASSERT(ndim >= 0 && ndim <= TENSOR_MAX_DIMS);
    tensor *t = arena_alloc(g->arena, sizeof *t);
    memset(t, 0, sizeof *t);
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) {
        HEED_ASSERT(shape[i] >= 0);
        t->shape[i] = shape[i];
    }
    t->numel = shape_numel(ndim, shape);
    t->dtype = dt;
    t->param = -1;
    if (dt == DTYPE_F32) {
        t->data = arena_alloc(g->arena, sizeof(float) * t->numel);
        if (with_grad)
            t->grad = arena_calloc(g->arena, sizeof(float) * t->numel);
    } else {
        HEED_ASSERT(!with_grad);
        t->idata = arena_alloc(g->arena, sizeof(int32_t) * t->numel);
    }
    return t;
}

tensor *graph_new_like(graph *g, const tensor *like, bool with_grad) {
    return graph_new(g, like->dtype, like->ndim, like->shape, with_grad);
}

tensor *graph_reshape(graph *g, const tensor *t, int ndim, const int *shape) {
    HEED_ASSERT(shape_numel(ndim, shape) == t->numel);
    tensor *v = arena_alloc(g->arena, sizeof *v);
    *v = *t;
    v->ndim = ndim;
    for (int i = 0; i < TENSOR_MAX_DIMS; i++)
        v->shape[i] = i < ndim ? shape[i] : 0;
    return v;
}

bool graph_wants_grad(const graph *g, int n, tensor *const *inputs) {
    if (!g->grad_enabled)
        return false;
    for (int i = 0; i < n; i++)
        if (inputs[i] && inputs[i]->grad)
            return true;
    return false;
}

void *graph_record(graph *g, graph_backward_fn fn, size_t ctx_bytes, int n_inputs,
                   tensor *const *inputs) {
    if (g->tape_len == g->tape_cap) {
        /* Grows only in the first step; later steps record the same ops. */
        g->tape_cap *= 2;
        g->tape = xrealloc(g->tape, sizeof *g->tape * g->tape_cap);
    }
    int index = g->tape_len++;
    for (int i = 0; i < n_inputs; i++) {
        const tensor *t = inputs[i];
        if (t && t->param >= 0 && t->param < g->n_params && g->first_use[t->param] > index)
            g->first_use[t->param] = index;
    }
    tape_entry *e = &g->tape[index];
    e->fn = fn;
    e->ctx = ctx_bytes ? arena_alloc(g->arena, ctx_bytes) : NULL;
    return e->ctx;
}

void graph_backward(graph *g, tensor *loss, float seed) {
    HEED_ASSERT(loss->numel == 1 && loss->grad);
    loss->grad[0] += seed;
    graph_backward_tape(g);
}

void graph_backward_tape(graph *g) {
    for (int i = g->tape_len - 1; i >= 0; i--) {
        g->tape[i].fn(g->tape[i].ctx);
        if (g->hook)
            g->hook(g->hook_ctx, i);
    }
}

void graph_set_backward_hook(graph *g, graph_backward_hook hook, void *hook_ctx) {
    g->hook = hook;
    g->hook_ctx = hook_ctx;
}

int graph_param_first_use(const graph *g, int param) {
    HEED_ASSERT(param >= 0 && param < g->n_params);
    return g->first_use[param];
}

int graph_tape_length(const graph *g) {
    return g->tape_len;
}
