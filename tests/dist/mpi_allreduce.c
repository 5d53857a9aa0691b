/*
 * mpi_allreduce.c - the ring of src/dist/allreduce.h against MPI_Allreduce,
 * at whatever rank count mpirun gives (ctest runs 1, 2, 3 and 4).
 *
 * A plain program rather than cmocka: a failed cmocka assert would skip the
 * rest of a test on one rank only and leave the others waiting in a
 * collective. Here a check only counts and prints, every rank runs the same
 * sequence of collectives whatever fails, and the job exits non-zero if any
 * rank saw a failure.
 *
 * Checked for lengths {0, 1, 2, 3, p-1, p, p+1, 7, 13, 1000, 65537, 2^20} and
 * several segment sizes (down to one int64, to force long pipelines):
 *   - sum and average within float rounding of MPI_Allreduce;
 *   - results bitwise identical on every rank (hash all-gathered);
 *   - average == sum * (1/p), bit for bit;
 *   - the optimised all-reduce equals the plain reference ring
 *     (ring_allreduce_ref) bit for bit above the small-message threshold,
 *     within rounding below it (recursive doubling);
 *   - the shared-memory all-reduce (one node) equals the reference ring bit
 *     for bit at every length;
 *   - the pipelined reduce-scatter leaves this rank's chunk bitwise equal to
 *     the reference ring's and to ring_reduce_scatter_ref's;
 *   - all-gather alone assembles every rank's chunk, exactly;
 *   - int64 sums exactly equal to MPI_Allreduce's;
 *   - comm: rank, size, node counts consistent with MPI_COMM_WORLD.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist/allreduce.h"
#include "dist/check_dist.h"
#include "dist/comm.h"

typedef struct check_ctx {
    int rank;
    int failures;
} check_ctx;

#define CHECK(ctx, cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            (ctx)->failures++;                                                                     \
            fprintf(stderr, "rank %d: %s:%d: check failed: %s: ", (ctx)->rank, __FILE__, __LINE__, \
                    #cond);                                                                        \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
        }                                                                                          \
    } while (0)

static uint64_t splitmix(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [-1, 1), different on every rank and for every length. */
static void fill_f32(float *x, int64_t n, int rank, uint64_t salt) {
    uint64_t s = salt * 1000003u + (uint64_t)rank * 7919u + (uint64_t)n;
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)((double)(splitmix(&s) >> 40) / (double)(1ull << 23)) - 1.0f;
}

/* Signed values of magnitude below 2^60, so four of them sum without
 * overflow. */
static void fill_i64(int64_t *x, int64_t n, int rank) {
    uint64_t s = 77 + (uint64_t)rank * 7919u + (uint64_t)n;
    for (int64_t i = 0; i < n; i++)
        x[i] = (int64_t)(splitmix(&s) >> 3) - ((int64_t)1 << 60);
}

static uint64_t hash_bytes(const void *p, size_t bytes) {
    const unsigned char *b = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < bytes; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* True on every rank when all ranks hold the same bytes. Collective. */
static int same_on_all_ranks(MPI_Comm world, const void *p, size_t bytes) {
    uint64_t mine = hash_bytes(p, bytes), lo = 0, hi = 0;
    HEED_MPI_CHECK(MPI_Allreduce(&mine, &lo, 1, MPI_UINT64_T, MPI_MIN, world));
    HEED_MPI_CHECK(MPI_Allreduce(&mine, &hi, 1, MPI_UINT64_T, MPI_MAX, world));
    return lo == hi;
}

/* Largest |got - want| and where, or -1 when within tolerance. */
static int64_t first_far(const float *got, const float *want, int64_t n, float tol) {
    for (int64_t i = 0; i < n; i++)
        if (!(fabsf(got[i] - want[i]) <= tol))
            return i;
    return -1;
}

typedef struct bufs {
    float *x, *ref, *sum, *avg;
    int64_t *xi, *refi;
} bufs;

static void check_comm(check_ctx *ctx, const comm *c) {
    int wr, ws;
    HEED_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &wr));
    HEED_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &ws));
    CHECK(ctx, c->rank == wr && c->size == ws, "comm %d/%d vs world %d/%d", c->rank, c->size, wr,
          ws);
    CHECK(ctx, c->local_size >= 1 && c->local_size <= c->size, "local_size %d", c->local_size);
    CHECK(ctx, c->local_rank >= 0 && c->local_rank < c->local_size, "local_rank %d of %d",
          c->local_rank, c->local_size);
    CHECK(ctx, c->num_nodes >= 1 && c->node_index >= 0 && c->node_index < c->num_nodes,
          "node %d of %d", c->node_index, c->num_nodes);
    /* The node sizes add up to the world, counted once per node. */
    int leader_size = c->local_rank == 0 ? c->local_size : 0, total = 0;
    HEED_MPI_CHECK(MPI_Allreduce(&leader_size, &total, 1, MPI_INT, MPI_SUM, c->mpi));
    CHECK(ctx, total == c->size, "node sizes sum to %d, world %d", total, c->size);
    /* A second comm in the same process is independent of the first. */
    comm c2;
    comm_init(&c2, c->mpi);
    CHECK(ctx, c2.rank == c->rank && c2.size == c->size && c2.num_nodes == c->num_nodes,
          "second comm differs");
    comm_free(&c2);
    comm_free(&c2); /* a freed comm frees nothing */
}

static void check_length(check_ctx *ctx, ring *r, MPI_Comm world, bufs *b, int64_t n,
                         const char *label) {
    const int p = r->size, me = r->rank;
    const float tol = 1e-5f; /* |x| <= 1, p <= 4: rounding is ~1e-6 at most */
    int64_t lo, hi;
    ring_chunk_range(n, p, me, &lo, &hi);

    /* Sum against MPI_Allreduce. */
    fill_f32(b->ref, n, me, 1);
    HEED_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, b->ref, (int)n, MPI_FLOAT, MPI_SUM, world));
    fill_f32(b->sum, n, me, 1);
    ring_allreduce(r, b->sum, n, RING_OP_SUM);
    int64_t i = first_far(b->sum, b->ref, n, tol);
    CHECK(ctx, i < 0, "%s n=%" PRId64 " sum[%" PRId64 "] = %g, MPI_Allreduce %g", label, n, i,
          i < 0 ? 0.0 : b->sum[i], i < 0 ? 0.0 : b->ref[i]);
    CHECK(ctx, same_on_all_ranks(world, b->sum, (size_t)n * sizeof(float)),
          "%s n=%" PRId64 " sum differs between ranks", label, n);

    /* Average: sum times 1/p exactly, identical everywhere. */
    fill_f32(b->avg, n, me, 1);
    ring_allreduce(r, b->avg, n, RING_OP_AVG);
    const float scale = 1.0f / (float)p;
    int64_t bad = -1;
    for (int64_t j = 0; j < n && bad < 0; j++)
        if (b->avg[j] != b->sum[j] * scale)
            bad = j;
    CHECK(ctx, bad < 0, "%s n=%" PRId64 " avg[%" PRId64 "] = %.9g, sum*(1/p) = %.9g", label, n, bad,
          bad < 0 ? 0.0 : b->avg[bad], bad < 0 ? 0.0 : b->sum[bad] * scale);
    CHECK(ctx, same_on_all_ranks(world, b->avg, (size_t)n * sizeof(float)),
          "%s n=%" PRId64 " avg differs between ranks", label, n);

    /* The plain reference ring: the optimised all-reduce equals it bit for
     * bit above the small-message threshold (same ring order), within
     * rounding below it (recursive doubling adds in another order). */
    fill_f32(b->ref, n, me, 1);
    ring_allreduce_ref(r, b->ref, n, RING_OP_SUM);
    if ((size_t)n * sizeof(float) > r->small_bytes)
        CHECK(ctx, memcmp(b->sum, b->ref, (size_t)n * sizeof(float)) == 0,
              "%s n=%" PRId64 " ring_allreduce differs from ring_allreduce_ref", label, n);
    else
        CHECK(ctx, first_far(b->sum, b->ref, n, tol) < 0,
              "%s n=%" PRId64 " small all-reduce far from ring_allreduce_ref", label, n);
    CHECK(ctx, same_on_all_ranks(world, b->ref, (size_t)n * sizeof(float)),
          "%s n=%" PRId64 " reference sum differs between ranks", label, n);

    /* The shared-memory path, called directly at every length (ring_allreduce
     * takes it only from shm_min_bytes): bitwise the reference ring's. */
    if (r->single_node) {
        fill_f32(b->x, n, me, 1);
        ring_allreduce_shm(r, b->x, n);
        CHECK(ctx, memcmp(b->x, b->ref, (size_t)n * sizeof(float)) == 0,
              "%s n=%" PRId64 " ring_allreduce_shm differs from ring_allreduce_ref", label, n);
    }

    /* Reduce-scatter alone (pipelined): this rank's chunk, bit for bit the
     * reference ring's, and the reference reduce-scatter's. */
    fill_f32(b->x, n, me, 1);
    ring_reduce_scatter(r, b->x, n);
    CHECK(ctx, hi == lo || memcmp(b->x + lo, b->ref + lo, (size_t)(hi - lo) * sizeof(float)) == 0,
          "%s n=%" PRId64 " reduce-scatter chunk [%" PRId64 ", %" PRId64 ") differs", label, n, lo,
          hi);
    fill_f32(b->avg, n, me, 1);
    ring_reduce_scatter_ref(r, b->avg, n, RING_TYPE_F32);
    CHECK(ctx, hi == lo || memcmp(b->x + lo, b->avg + lo, (size_t)(hi - lo) * sizeof(float)) == 0,
          "%s n=%" PRId64 " pipelined and reference reduce-scatter differ", label, n);

    /* All-gather alone: only this rank's chunk is valid on entry. */
    for (int64_t j = 0; j < n; j++)
        b->x[j] = (j >= lo && j < hi) ? (float)j * 0.5f + 1.0f : NAN;
    ring_allgather(r, b->x, n);
    bad = -1;
    for (int64_t j = 0; j < n && bad < 0; j++)
        if (b->x[j] != (float)j * 0.5f + 1.0f)
            bad = j;
    CHECK(ctx, bad < 0, "%s n=%" PRId64 " allgather[%" PRId64 "] = %g", label, n, bad,
          bad < 0 ? 0.0 : b->x[bad]);

    /* int64: exact. */
    fill_i64(b->refi, n, me);
    HEED_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, b->refi, (int)n, MPI_INT64_T, MPI_SUM, world));
    fill_i64(b->xi, n, me);
    ring_allreduce_i64(r, b->xi, n);
    CHECK(ctx, memcmp(b->xi, b->refi, (size_t)n * sizeof(int64_t)) == 0,
          "%s n=%" PRId64 " int64 sum differs from MPI_Allreduce", label, n);
    fill_i64(b->xi, n, me);
    ring_reduce_scatter_i64(r, b->xi, n);
    CHECK(ctx, memcmp(b->xi + lo, b->refi + lo, (size_t)(hi - lo) * sizeof(int64_t)) == 0,
          "%s n=%" PRId64 " int64 reduce-scatter chunk differs", label, n);
    ring_allgather_i64(r, b->xi, n);
    CHECK(ctx, memcmp(b->xi, b->refi, (size_t)n * sizeof(int64_t)) == 0,
          "%s n=%" PRId64 " int64 reduce-scatter + all-gather differs", label, n);
}

int main(int argc, char **argv) {
    HEED_MPI_CHECK(MPI_Init(&argc, &argv));
    check_ctx ctx = {0};
    comm c;
    comm_init(&c, MPI_COMM_WORLD);
    ctx.rank = c.rank;
    const int p = c.size;
    check_comm(&ctx, &c);

    /* The split rule: chunks tile [0, n), the first n % p one longer. */
    for (int64_t n = 0; n < 40; n++) {
        int64_t prev_hi = 0;
        for (int q = 0; q < p; q++) {
            int64_t lo, hi;
            ring_chunk_range(n, p, q, &lo, &hi);
            CHECK(&ctx, lo == prev_hi && hi - lo == n / p + (q < n % p),
                  "chunk %d of %" PRId64 ": [%" PRId64 ", %" PRId64 ")", q, n, lo, hi);
            prev_hi = hi;
        }
        CHECK(&ctx, prev_hi == n, "chunks of %" PRId64 " end at %" PRId64, n, prev_hi);
    }

    const int64_t max_n = (int64_t)1 << 20;
    bufs b = {
        .x = malloc((size_t)max_n * sizeof(float)),
        .ref = malloc((size_t)max_n * sizeof(float)),
        .sum = malloc((size_t)max_n * sizeof(float)),
        .avg = malloc((size_t)max_n * sizeof(float)),
        .xi = malloc((size_t)max_n * sizeof(int64_t)),
        .refi = malloc((size_t)max_n * sizeof(int64_t)),
    };
    HEED_ASSERT(b.x && b.ref && b.sum && b.avg && b.xi && b.refi);

    const int64_t lengths[] = {0,  1,    2,     3,    p - 1 > 0 ? p - 1 : 0, p, p + 1, 7,
                               13, 1000, 65537, max_n};
    const int nlen = (int)(sizeof lengths / sizeof lengths[0]);
    /* Segment sizes: the default; 64 floats (many-segment pipelines, and odd
     * chunk lengths end in a short or empty segment); one int64 (the
     * smallest workspace); and a ring sized for 13 floats asked for more. */
    struct {
        const char *label;
        size_t max_floats, segment;
        int64_t longest;
    } rings[] = {
        {"default", (size_t)max_n, 0, max_n},
        {"seg64", (size_t)max_n, 64, 65537},
        {"seg4096", (size_t)max_n, 4096, 65537},
        {"seg1", 1000, 1, 1000},
        {"max13", 13, 0, 65537},
    };
    for (size_t k = 0; k < sizeof rings / sizeof rings[0]; k++) {
        ring r;
        ring_init(&r, &c, rings[k].max_floats, rings[k].segment);
        CHECK(&ctx, r.rank == c.rank && r.size == c.size, "ring rank/size");
        CHECK(&ctx, r.segment_bytes >= 8 && r.segment_bytes % 8 == 0, "segment_bytes %zu",
              r.segment_bytes);
        for (int j = 0; j < nlen; j++)
            if (lengths[j] <= rings[k].longest)
                check_length(&ctx, &r, c.mpi, &b, lengths[j], rings[k].label);
        ring_free(&r);
        ring_free(&r); /* a freed ring frees nothing */
    }

    free(b.x);
    free(b.ref);
    free(b.sum);
    free(b.avg);
    free(b.xi);
    free(b.refi);

    int failures = 0;
    HEED_MPI_CHECK(MPI_Allreduce(&ctx.failures, &failures, 1, MPI_INT, MPI_SUM, c.mpi));
    if (c.rank == 0)
        printf("mpi_allreduce: p=%d: %s (%d failed checks)\n", p, failures ? "FAILED" : "ok",
               failures);
    comm_free(&c);
    HEED_MPI_CHECK(MPI_Finalize());
    return failures ? 1 : 0;
}
