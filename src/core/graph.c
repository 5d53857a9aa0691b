#include "core/graph.h"

#include "core/check.h"
#include "core/grad_pool.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct tape_entry {
    graph_backward_fn fn;
    void *ctx;
    tensor **inputs; /* (n_inputs), in the arena; NULL in eager mode */
    int n_inputs;
    uint32_t claims;
} tape_entry;

/* A view made by graph_reshape, re-pointed with its base. */
typedef struct view_link {
    tensor *view;
    struct view_link *next;
} view_link;

/* One lazily zeroed gradient buffer: whether it is unwritten, and the span
 * of the tape that needs it, for its place in the pool (grad_pool.h). */
struct grad_state {
    float *grad;
    int64_t numel;
    int consumers; /* tape entries that list the buffer as an input */
    int born;      /* tape length when the tensor was made */
    int last;      /* the latest entry that lists it as an input */
    bool unwritten;
    tensor *owner;
    view_link *views;
    struct grad_state *next; /* all states of this step, for graph_backward */
};

/* Where lazy gradients point until graph_backward gives them their pool
 * memory: not NULL, so that "a gradient flows" reads as before. Forward code
 * only tests the pointer; nothing writes here. */
static float unplaced_grad[16] __attribute__((aligned(64)));

struct graph {
    arena *arena;
    tape_entry *tape; /* arena-allocated chunks would fragment; see graph_record */
    int tape_len, tape_cap;
    int *first_use;
    int n_params;
    bool training, grad_enabled, lazy;
    struct grad_state *states; /* lazy mode: this step's gradient buffers */
    int n_states;
    float *pool; /* lazy mode: every activation gradient of the backward */
    size_t pool_bytes;
    bool poison; /* tests: NaN-fill the pool before each backward */
    bool placed; /* lazy gradients have their pool places for this step */
    uint64_t seed, step, op_counter;
    int64_t *sample_ids;
    int n_samples, sample_cap;
    graph_backward_hook hook;
    void *hook_ctx;
    graph_sum_fn batch_sum;
    void *batch_sum_ctx;
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
    free(g->pool);
    free(g);
}

void graph_reset(graph *g) {
    arena_reset(g->arena);
    g->tape_len = 0;
    g->states = NULL;
    g->n_states = 0;
    g->placed = false;
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

void graph_set_lazy_grads(graph *g, bool lazy) {
    g->lazy = lazy;
}

bool graph_lazy_grads(const graph *g) {
    return g->lazy;
}

static void grad_state_zero(struct grad_state *s) {
    memset(s->grad, 0, sizeof(float) * (size_t)s->numel);
    s->unwritten = false;
}

bool graph_grad_claim(tensor *t) {
    struct grad_state *s = t->grad ? t->gstate : NULL;
    if (!s || !s->unwritten)
        return false;
    s->unwritten = false;
    return true;
}

void graph_grad_settle(tensor *t) {
    struct grad_state *s = t->grad ? t->gstate : NULL;
    if (s && s->unwritten)
        grad_state_zero(s);
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
        if (with_grad && g->lazy) {
            t->grad = unplaced_grad;
            struct grad_state *s = arena_alloc(g->arena, sizeof *s);
            *s = (struct grad_state){.grad = unplaced_grad,
                                     .numel = t->numel,
                                     .born = g->tape_len,
                                     .last = -1,
                                     .unwritten = true,
                                     .owner = t,
                                     .next = g->states};
            g->states = s;
            g->n_states++;
            t->gstate = s;
        } else if (with_grad) {
            t->grad = arena_calloc(g->arena, sizeof(float) * t->numel);
        }
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
    if (v->gstate) {
        view_link *l = arena_alloc(g->arena, sizeof *l);
        *l = (view_link){v, v->gstate->views};
        v->gstate->views = l;
    }
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
    return graph_record_claims(g, fn, ctx_bytes, n_inputs, inputs, 0);
}

void *graph_record_claims(graph *g, graph_backward_fn fn, size_t ctx_bytes, int n_inputs,
                          tensor *const *inputs, uint32_t claims) {
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
    e->inputs = NULL;
    e->n_inputs = 0;
    e->claims = 0;
    bool lazy_inputs = false;
    for (int i = 0; i < n_inputs; i++)
        if (inputs[i] && inputs[i]->grad && inputs[i]->gstate) {
            inputs[i]->gstate->consumers++;
            inputs[i]->gstate->last = index;
            lazy_inputs = true;
        }
    if (lazy_inputs) {
        /* The tape settles these inputs before the backward runs. */
        e->inputs = arena_alloc(g->arena, sizeof *e->inputs * n_inputs);
        memcpy(e->inputs, inputs, sizeof *e->inputs * n_inputs);
        e->n_inputs = n_inputs;
        e->claims = claims;
    }
    return e->ctx;
}

/* Runs tape entry e: settles the inputs it did not claim, runs its backward,
 * then settles the claimed ones it left unwritten. */
static void tape_entry_run(const tape_entry *e) {
    for (int i = 0; i < e->n_inputs; i++) {
        bool claimed = i < 32 && (e->claims >> i & 1u);
        if (e->inputs[i] && !claimed)
            graph_grad_settle(e->inputs[i]);
    }
    e->fn(e->ctx);
    for (int i = 0; i < e->n_inputs && i < 32; i++)
        if (e->inputs[i] && (e->claims >> i & 1u))
            graph_grad_settle(e->inputs[i]);
}

static void tape_replay(graph *g) {
    for (int i = g->tape_len - 1; i >= 0; i--) {
        tape_entry_run(&g->tape[i]);
        if (g->hook)
            g->hook(g->hook_ctx, i);
    }
}

/* Gives every lazy gradient its place in the pool and points its tensor and
 * views there. A gradient is live from its latest consumer down to the entry
 * before the tensor was made: the op that made it records its entry after
 * making it, but one entry of slack costs nothing and covers an op that
 * records first. Unconsumed gradients are live from the start (zero-filled
 * before the replay). */
static void grad_pool_place(graph *g) {
    grad_span *spans = arena_alloc(g->arena, sizeof *spans * (size_t)g->n_states);
    int i = 0;
    for (struct grad_state *s = g->states; s; s = s->next, i++) {
        int lo = s->born > 0 ? s->born - 1 : 0;
        int hi = s->consumers > 0 ? s->last : g->tape_len;
        spans[i] = (grad_span){sizeof(float) * (size_t)s->numel, lo, hi < lo ? lo : hi, 0};
    }
    size_t bytes = grad_pool_plan(spans, g->n_states, g->arena);
    if (bytes > g->pool_bytes) {
        /* Grows only while the step's shape is still being seen; the slack
         * (as the arena's) absorbs steps that differ a little, such as the
         * number of masked tokens of BERT's MLM. */
        free(g->pool);
        g->pool_bytes = bytes + bytes / 8;
        g->pool = xaligned_alloc(64, g->pool_bytes);
    }
    if (g->poison)
        for (size_t k = 0; k < g->pool_bytes / sizeof(float); k++)
            g->pool[k] = NAN;
    i = 0;
    for (struct grad_state *s = g->states; s; s = s->next, i++) {
        s->grad = (float *)((unsigned char *)g->pool + spans[i].offset);
        s->owner->grad = s->grad;
        for (view_link *l = s->views; l; l = l->next)
            l->view->grad = s->grad;
    }
}

void graph_set_grad_poison(graph *g, bool on) {
    g->poison = on;
}

void graph_backward(graph *g, tensor *loss, float seed) {
    HEED_ASSERT(loss->numel == 1 && loss->grad);
    if (g->states) {
        /* once per step: a second replay would add into places that other
         * gradients have taken since */
        HEED_ASSERT(!g->placed);
        grad_pool_place(g);
        g->placed = true;
    }
    /* Nothing will write these: zeros, as in eager mode (the loss among them). */
    for (struct grad_state *s = g->states; s; s = s->next)
        if (s->unwritten && s->consumers == 0)
            grad_state_zero(s);
    graph_grad_settle(loss);
    loss->grad[0] += seed;
    tape_replay(g);
}

void graph_backward_tape(graph *g) {
    HEED_ASSERT(!g->states); /* hand-seeded gradients need eager mode */
    tape_replay(g);
}

void graph_set_batch_sum(graph *g, graph_sum_fn fn, void *ctx) {
    g->batch_sum = fn;
    g->batch_sum_ctx = ctx;
}

bool graph_has_batch_sum(const graph *g) {
    return g->batch_sum != NULL;
}

void graph_batch_sum(graph *g, double *v, int n) {
    if (g->batch_sum)
        g->batch_sum(g->batch_sum_ctx, v, n);
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
