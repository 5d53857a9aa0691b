/*
 * grad_sync.c - the global optimiser step of grad_sync.h: bucketed,
 * optionally overlapped gradient reduction, then Adam on this rank's range
 * and the parameter all-gather.
 */
#include "dist/grad_sync.h"

#include "dist/check_dist.h"
#include "dist/grad_sync_thread.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void grad_sync_init(grad_sync *s, const comm *c, int64_t n, bool zero, bool exact,
                    size_t segment_floats) {
    memset(s, 0, sizeof *s);
    s->comm = c;
    s->numel = n;
    s->exact = exact ? xcalloc((size_t)n + 1, sizeof *s->exact) : NULL;
    s->norm_words = xcalloc(2 * (size_t)c->size, sizeof *s->norm_words);
    s->zero = zero && c->size > 1;
    ring_init(&s->ring, c, (size_t)n, segment_floats);
    if (s->zero)
        ring_chunk_range(n, c->size, c->rank, &s->lo, &s->hi);
    else {
        s->lo = 0;
        s->hi = n;
    }
    adam_state_init(&s->adam, s->lo, s->hi);
    s->norm_parts = xcalloc(c->size, sizeof *s->norm_parts);
    bucket_plan_single(&s->plan, n, c->size);
    s->ready_at = xcalloc((size_t)s->plan.count + 1, sizeof *s->ready_at);
}

void grad_sync_plan_buckets(grad_sync *s, const params *ps, size_t bucket_bytes) {
    HEED_ASSERT(!s->active && !s->hooked);
    bucket_plan_free(&s->plan);
    free(s->ready_at);
    bucket_plan_build(&s->plan, ps, bucket_bytes, s->comm->size);
    s->ready_at = xcalloc((size_t)s->plan.count + 1, sizeof *s->ready_at);
}

void grad_sync_free(grad_sync *s) {
    grad_sync_thread_free(s->thread);
    ring_free(&s->ring);
    adam_state_free(&s->adam);
    bucket_plan_free(&s->plan);
    free(s->ready_at);
    free(s->norm_parts);
    free(s->exact);
    free(s->norm_words);
}

double comm_sum_ordered(const comm *c, double local, double *parts) {
    HEED_MPI_CHECK(MPI_Allgather(&local, 1, MPI_DOUBLE, parts, 1, MPI_DOUBLE, c->mpi));
    double sum = 0.0;
    for (int r = 0; r < c->size; r++)
        sum += parts[r];
    return sum;
}

/* Fixed-point accumulation of grad[lo, hi) into exact[lo, hi). */
static bool exact_add_range(int64_t *exact, const float *grad, int64_t lo, int64_t hi) {
    const double scale = (double)(1ULL << GRAD_EXACT_SHIFT);
    const double limit = 8388608.0; /* 2^23: headroom for sums over 2^23 micro-batches */
    bool ok = true;
    for (int64_t i = lo; i < hi; i++) {
        double g = grad[i];
        bool in = g > -limit && g < limit; /* false for NaN too */
        ok &= in;
        exact[i] += (int64_t)llrint(in ? g * scale : 0.0);
    }
    return ok;
}

bool grad_sync_accumulate_exact(grad_sync *s, const float *grad, int64_t n) {
    return exact_add_range(s->exact, grad, 0, n);
}

/* Starts bucket s->next (converting it first in exact mode). */
static void sync_start_next(grad_sync *s) {
    const grad_bucket *b = &s->plan.b[s->next++];
    if (s->exact) {
        if (s->convert)
            s->in_range &= exact_add_range(s->exact, s->ps->grad, b->lo, b->hi);
        ring_rs_start(&s->op, &s->ring, s->exact, b->bounds, RING_TYPE_I64);
    } else {
        ring_rs_start(&s->op, &s->ring, s->ps->grad, b->bounds, RING_TYPE_F32);
    }
    s->active = true;
}

bool grad_sync_advance(grad_sync *s, int entry) {
    double t0 = MPI_Wtime();
    bool changed = false;
    for (;;) {
        if (s->active) {
            if (!ring_rs_progress(&s->op, false))
                break;
            s->active = false;
            changed = true;
        }
        if (s->next >= s->plan.count || s->ready_at[s->next] < entry)
            break;
        sync_start_next(s);
        s->stats.buckets_in_backward++;
        changed = true;
    }
    s->stats.hook_s += MPI_Wtime() - t0;
    return changed;
}

/* The backward hook: tape entry `entry` has finished. With a progress
 * thread, tells it so (and nothing else: the thread owns MPI until finish);
 * otherwise advances the reduction itself. */
static void sync_hook(void *ctx, int entry) {
    grad_sync *s = ctx;
    if (s->thread)
        grad_sync_thread_note_entry(s->thread, entry);
    else
        grad_sync_advance(s, entry);
}

void grad_sync_begin(grad_sync *s, params *ps, graph *g, bool overlap) {
    HEED_ASSERT(!s->active && !s->hooked && s->next == 0);
    s->ps = ps;
    s->convert = s->exact != NULL;
    s->in_range = true;
    if (!overlap || s->comm->size == 1 || !g)
        return;
    /* A bucket is final once backward has passed the first use of each of
     * its tensors; unused tensors (first use INT32_MAX) are final already,
     * but a bucket of nothing else waits for finish (-1). */
    for (int i = 0; i < s->plan.count; i++) {
        const grad_bucket *b = &s->plan.b[i];
        int at = INT32_MAX;
        for (int t = b->first; t <= b->last; t++) {
            int u = graph_param_first_use(g, t);
            at = u < at ? u : at;
        }
        s->ready_at[i] = at == INT32_MAX ? -1 : at;
    }
    graph_set_backward_hook(g, sync_hook, s);
    s->hooked = g;
    if (s->thread)
        grad_sync_thread_run(s->thread);
}

bool grad_sync_start_thread(grad_sync *s) {
    HEED_ASSERT(!s->active && !s->hooked);
    if (!s->thread && s->comm->size > 1)
        s->thread = grad_sync_thread_create(s);
    return s->thread != NULL;
}

bool grad_sync_finish(grad_sync *s, params *ps) {
    double t0 = MPI_Wtime();
    if (s->hooked) {
        if (s->thread)
            grad_sync_thread_park(s->thread);
        graph_set_backward_hook(s->hooked, NULL, NULL);
        s->hooked = NULL;
    }
    if (!s->ps) { /* no grad_sync_begin: no backward this step */
        s->ps = ps;
        s->convert = s->exact != NULL;
        s->in_range = true;
    }
    if (s->comm->size > 1) {
        for (;;) {
            if (s->active) {
                ring_rs_progress(&s->op, true);
                s->active = false;
            }
            if (s->next >= s->plan.count)
                break;
            sync_start_next(s);
            s->stats.buckets_at_finish++;
        }
    } else if (s->exact && s->convert) {
        s->in_range &= exact_add_range(s->exact, ps->grad, 0, ps->numel);
    }
    s->stats.wait_s += MPI_Wtime() - t0;
    if (!s->zero && s->comm->size > 1) {
        double t1 = MPI_Wtime();
        if (s->exact)
            ring_allgather_i64(&s->ring, s->exact, ps->numel);
        else
            ring_allgather(&s->ring, ps->grad, ps->numel);
        s->stats.gather_s += MPI_Wtime() - t1;
    }
    bool ok = s->in_range;
    s->next = 0;
    s->ps = NULL;
    s->convert = false;
    s->reduced = true;
    s->stats.steps++;
    return ok;
}

void grad_sync_discard(grad_sync *s) {
    HEED_ASSERT(!s->active && !s->hooked);
    s->reduced = false;
    if (s->exact)
        memset(s->exact, 0, sizeof(int64_t) * (size_t)s->numel);
}

static void sync_gather_params(grad_sync *s, params *ps) {
    if (!s->zero)
        return;
    double t0 = MPI_Wtime();
    ring_allgather(&s->ring, ps->data, ps->numel);
    s->stats.gather_s += MPI_Wtime() - t0;
}

double grad_sync_step(grad_sync *s, params *ps, const adam_config *cfg, float lr, float max_norm) {
    HEED_ASSERT(!s->exact);
    int64_t n = ps->numel;
    if (!s->reduced)
        grad_sync_finish(s, ps);
    s->reduced = false;
    double norm_sq;
    if (s->zero)
        norm_sq =
            comm_sum_ordered(s->comm, sum_squares(ps->grad + s->lo, s->hi - s->lo), s->norm_parts);
    else
        norm_sq = sum_squares(ps->grad, n);
    double norm = sqrt(norm_sq);
    float scale = clip_scale(norm, max_norm);
    adam_step(cfg, &s->adam, ps, ps->grad + s->lo, lr, scale);
    sync_gather_params(s, ps);
    return norm;
}

bool grad_sync_params_agree(const comm *c, const params *ps) {
    unsigned long long h = params_hash(ps), lo = h, hi = h;
    HEED_MPI_CHECK(MPI_Allreduce(&h, &lo, 1, MPI_UNSIGNED_LONG_LONG, MPI_MIN, c->mpi));
    HEED_MPI_CHECK(MPI_Allreduce(&h, &hi, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, c->mpi));
    return lo == hi;
}

/* Sum of squares of the integers >> 16, in 128 bits: exact integer
 * additions, so the order (and the rank count) cannot change it. */
static unsigned __int128 exact_square_sum(const int64_t *v, int64_t n) {
    unsigned __int128 sum = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t x = v[i] >> 16;
        uint64_t a = (uint64_t)(x < 0 ? -x : x);
        sum += (unsigned __int128)a * a;
    }
    return sum;
}

double grad_sync_step_exact(grad_sync *s, params *ps, const adam_config *cfg, float lr,
                            float max_norm) {
    HEED_ASSERT(s->exact);
    int64_t n = ps->numel;
    if (!s->reduced) {
        /* The caller accumulated every micro-batch itself. */
        s->ps = ps;
        s->convert = false;
        s->in_range = true;
        grad_sync_finish(s, ps);
    }
    s->reduced = false;
    unsigned __int128 local = exact_square_sum(s->exact + s->lo, s->hi - s->lo);
    if (!s->zero && s->comm->rank != 0)
        local = 0; /* replicated: every rank holds everything; count it once */
    uint64_t words[2] = {(uint64_t)local, (uint64_t)(local >> 64)};
    HEED_MPI_CHECK(
        MPI_Allgather(words, 2, MPI_UINT64_T, s->norm_words, 2, MPI_UINT64_T, s->comm->mpi));
    unsigned __int128 total = 0;
    for (int r = 0; r < s->comm->size; r++)
        total += (unsigned __int128)s->norm_words[2 * r] |
                 ((unsigned __int128)s->norm_words[2 * r + 1] << 64);
    double norm = sqrt((double)total) * ldexp(1.0, 16 - GRAD_EXACT_SHIFT);
    const double inv = ldexp(1.0, -GRAD_EXACT_SHIFT);
    for (int64_t i = s->lo; i < s->hi; i++)
        ps->grad[i] = (float)((double)s->exact[i] * inv);
    memset(s->exact, 0, sizeof(int64_t) * (size_t)n);
    float scale = clip_scale(norm, max_norm);
    adam_step(cfg, &s->adam, ps, ps->grad + s->lo, lr, scale);
    sync_gather_params(s, ps);
    return norm;
}
