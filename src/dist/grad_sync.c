#include "dist/grad_sync.h"

#include "dist/check_dist.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void grad_sync_init(grad_sync *s, const comm *c, int64_t n, bool zero, bool exact,
                    size_t segment_floats) {
    s->comm = c;
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
}

void grad_sync_free(grad_sync *s) {
    ring_free(&s->ring);
    adam_state_free(&s->adam);
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

double grad_sync_step(grad_sync *s, params *ps, const adam_config *cfg, float lr, float max_norm) {
    int64_t n = ps->numel;
    double norm_sq;
    if (s->zero) {
        ring_reduce_scatter(&s->ring, ps->grad, n);
        norm_sq =
            comm_sum_ordered(s->comm, sum_squares(ps->grad + s->lo, s->hi - s->lo), s->norm_parts);
    } else {
        if (s->comm->size > 1)
            ring_allreduce(&s->ring, ps->grad, n, RING_OP_SUM);
        norm_sq = sum_squares(ps->grad, n);
    }
    double norm = sqrt(norm_sq);
    float scale = clip_scale(norm, max_norm);
    adam_step(cfg, &s->adam, ps, ps->grad + s->lo, lr, scale);
    if (s->zero)
        ring_allgather(&s->ring, ps->data, n);
    return norm;
}

bool grad_sync_params_agree(const comm *c, const params *ps) {
    unsigned long long h = params_hash(ps), lo = h, hi = h;
    HEED_MPI_CHECK(MPI_Allreduce(&h, &lo, 1, MPI_UNSIGNED_LONG_LONG, MPI_MIN, c->mpi));
    HEED_MPI_CHECK(MPI_Allreduce(&h, &hi, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, c->mpi));
    return lo == hi;
}

bool grad_sync_accumulate_exact(grad_sync *s, const float *grad, int64_t n) {
    const double scale = (double)(1ULL << GRAD_EXACT_SHIFT);
    const double limit = 8388608.0; /* 2^23: headroom for sums over 2^23 micro-batches */
    bool ok = true;
    for (int64_t i = 0; i < n; i++) {
        double g = grad[i];
        ok &= g > -limit && g < limit; /* false for NaN too */
        s->exact[i] += (int64_t)llrint(ok ? g * scale : 0.0);
    }
    return ok;
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
    if (s->zero)
        ring_reduce_scatter_i64(&s->ring, s->exact, n);
    else if (s->comm->size > 1)
        ring_allreduce_i64(&s->ring, s->exact, n);
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
    if (s->zero)
        ring_allgather(&s->ring, ps->data, n);
    return norm;
}
