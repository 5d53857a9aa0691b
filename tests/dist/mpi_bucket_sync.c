/*
 * mpi_bucket_sync.c - bucketed gradient reduction (bucket.h, grad_sync.h)
 * against one reduce-scatter of the whole buffer by the plain reference ring,
 * at whatever rank count mpirun gives (ctest runs 1-4).
 *
 * A fake model: one tape entry per parameter tensor (recorded in tensor
 * order, so backward visits the last tensor first, as in a real network),
 * whose backward adds rank- and step-dependent values to that tensor's
 * gradient. Some tensors are not used: tensor 3 never (a frozen tower: a
 * whole bucket of unused parameters when buckets are small), tensor 1 only on
 * even ranks (a conditional branch, so ranks finish their buckets in
 * different tape positions). Checked for bucket sizes {one bucket, 1 KiB,
 * 8 KiB}, overlap on and off, ZeRO and replicated, float and exact mode,
 * driven from the backward hook or from the progress thread
 * (grad_sync_start_thread; its tape entries then take 2 ms each, so the
 * thread has a backward to overlap), one or two micro-batches, three steps
 * each:
 *   - no hang (ctest's timeout is the failure);
 *   - float: the reduced gradient (this rank's shard under ZeRO, all of it
 *     replicated) bitwise equal to ring_reduce_scatter_ref / _allreduce_ref
 *     of the same local gradients;
 *   - exact: the fixed-point sums bitwise equal to an int64 all-reduce of the
 *     same conversions;
 *   - the bucket plan tiles [0, numel) with bucket 0 at the end of the buffer.
 */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/check.h"
#include "core/graph.h"
#include "core/params.h"
#include "dist/allreduce.h"
#include "dist/bucket.h"
#include "dist/grad_sync.h"
#include "mpi_check.h"

enum { TENSORS = 6 };
static const int sizes[TENSORS] = {300, 1000, 17, 700, 2500, 64};

typedef struct fake_ctx {
    tensor *t;
    int rank, step, micro;
} fake_ctx;

static float fake_value(int rank, int step, int micro, int tensor_index, int64_t i) {
    uint64_t h = (uint64_t)rank * 1000003u + (uint64_t)step * 7919u + (uint64_t)micro * 104729u +
                 (uint64_t)tensor_index * 15485863u + (uint64_t)i * 2654435761u;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return (float)((double)(h % 2000001) * 1e-6 - 1.0);
}

static bool slow_backward; /* thread runs: entries of 2 ms */

static void fake_backward(void *p) {
    fake_ctx *c = p;
    if (slow_backward) {
        const struct timespec ms2 = {0, 2000000};
        nanosleep(&ms2, NULL);
    }
    for (int64_t i = 0; i < c->t->numel; i++)
        c->t->grad[i] += fake_value(c->rank, c->step, c->micro, c->t->param, i);
}

static bool used(int tensor_index, int rank) {
    if (tensor_index == 3)
        return false;
    if (tensor_index == 1)
        return rank % 2 == 0;
    return true;
}

/* One micro-batch's forward (records the tape) on g. */
static void fake_forward(graph *g, params *ps, int rank, int step, int micro) {
    graph_reset(g);
    for (int i = 0; i < TENSORS; i++) {
        if (!used(i, rank))
            continue;
        tensor *in[1] = {ps->tensors[i]};
        fake_ctx *c = graph_record(g, fake_backward, sizeof *c, 1, in);
        *c = (fake_ctx){ps->tensors[i], rank, step, micro};
    }
}

/* The local gradient of one micro-batch, written straight (the reference). */
static void fake_grad(const params *ps, float *out, int rank, int step, int micro) {
    memset(out, 0, sizeof(float) * (size_t)ps->numel);
    for (int i = 0; i < TENSORS; i++)
        if (used(i, rank))
            for (int64_t j = 0; j < ps->tensors[i]->numel; j++)
                out[ps->offset[i] + j] = fake_value(rank, step, micro, i, j);
}

static void check_plan(const params *ps, size_t bucket_bytes, int p) {
    bucket_plan bp;
    bucket_plan_build(&bp, ps, bucket_bytes, p);
    CHECK(bp.count >= 1, "no buckets");
    CHECK(bp.b[0].hi == ps->numel && bp.b[bp.count - 1].lo == 0, "plan does not span the buffer");
    for (int i = 0; i + 1 < bp.count; i++)
        CHECK(bp.b[i + 1].hi == bp.b[i].lo && bp.b[i + 1].last == bp.b[i].first - 1,
              "buckets %d and %d do not meet", i, i + 1);
    for (int i = 0; i < bp.count; i++)
        for (int c = 0; c < p; c++)
            CHECK(bp.b[i].bounds[c] <= bp.b[i].bounds[c + 1] && bp.b[i].bounds[0] == bp.b[i].lo &&
                      bp.b[i].bounds[p] == bp.b[i].hi,
                  "bucket %d: bad chunk bounds", i);
    if (bucket_bytes == 0)
        CHECK(bp.count == 1, "bucket_bytes 0 gives %d buckets", bp.count);
    bucket_plan_free(&bp);
}

/* Buckets the progress thread started during backward, over all runs. */
static int64_t thread_buckets_in_backward;

static void run(const comm *c, params *ps, graph *g, size_t bucket_bytes, bool overlap, bool zero,
                bool exact, bool thread, int micro_batches) {
    const int me = c->rank;
    const int64_t n = ps->numel;
    grad_sync s;
    grad_sync_init(&s, c, n, zero, exact, 256);
    grad_sync_plan_buckets(&s, ps, bucket_bytes);
    if (thread)
        CHECK(grad_sync_start_thread(&s) == (c->size > 1), "progress thread not started at p=%d",
              c->size);
    slow_backward = thread;
    float *ref = xmalloc(sizeof(float) * (size_t)n);
    int64_t *refi = xcalloc((size_t)n, sizeof(int64_t));
    for (int step = 0; step < 3; step++) {
        params_zero_grad(ps);
        memset(refi, 0, sizeof(int64_t) * (size_t)n);
        float *acc = xcalloc((size_t)n, sizeof(float));
        for (int mb = 0; mb < micro_batches; mb++) {
            const bool last = mb == micro_batches - 1;
            if (exact)
                params_zero_grad(ps);
            fake_forward(g, ps, me, step, mb);
            if (last)
                grad_sync_begin(&s, ps, g, overlap);
            graph_backward_tape(g);
            if (exact && !last)
                CHECK(grad_sync_accumulate_exact(&s, ps->grad, n), "out of range");
            fake_grad(ps, ref, me, step, mb);
            for (int64_t i = 0; i < n; i++) {
                acc[i] += ref[i];
                refi[i] += (int64_t)llrint((double)ref[i] * (double)(1ULL << GRAD_EXACT_SHIFT));
            }
        }
        CHECK(grad_sync_finish(&s, ps), "finish: out of range");
        if (exact) {
            ring_allreduce_i64(&s.ring, refi, n);
            CHECK(memcmp(s.exact + s.lo, refi + s.lo, sizeof(int64_t) * (size_t)(s.hi - s.lo)) == 0,
                  "exact sums differ (bucket %zu B, overlap %d, zero %d)", bucket_bytes, overlap,
                  zero);
        } else if (zero) {
            ring_reduce_scatter_ref(&s.ring, acc, n, RING_TYPE_F32);
            CHECK(memcmp(ps->grad + s.lo, acc + s.lo, sizeof(float) * (size_t)(s.hi - s.lo)) == 0,
                  "ZeRO shard [%" PRId64 ", %" PRId64 ") differs (bucket %zu B, overlap %d)", s.lo,
                  s.hi, bucket_bytes, overlap);
        } else {
            ring_allreduce_ref(&s.ring, acc, n, RING_OP_SUM);
            CHECK(memcmp(ps->grad, acc, sizeof(float) * (size_t)n) == 0,
                  "replicated gradient differs (bucket %zu B, overlap %d)", bucket_bytes, overlap);
        }
        grad_sync_discard(&s);
        free(acc);
    }
    /* the thread may sleep through a whole backward now and then; the hook
     * cannot miss one */
    if (overlap && c->size > 1 && bucket_bytes > 0 && !thread)
        CHECK(s.stats.buckets_in_backward > 0, "overlap on but no bucket started in backward");
    if (thread)
        thread_buckets_in_backward += s.stats.buckets_in_backward;
    if (!overlap)
        CHECK(s.stats.buckets_in_backward == 0, "overlap off but buckets started in backward");
    free(ref);
    free(refi);
    grad_sync_free(&s);
}

int main(int argc, char **argv) {
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &provided);
    CHECK(provided >= MPI_THREAD_SERIALIZED, "MPI gives thread level %d", provided);
    comm c;
    comm_init(&c, MPI_COMM_WORLD);
    params ps;
    params_init(&ps);
    for (int i = 0; i < TENSORS; i++) {
        char name[16];
        snprintf(name, sizeof name, "t%d", i);
        params_add(&ps, name, PARAM_INIT(INIT_ZEROS, 0), 1, (int[]){sizes[i]});
    }
    params_alloc(&ps, 1);
    graph *g = graph_create(1u << 16, ps.count);
    const size_t buckets[] = {0, 1024, 8192};
    for (size_t b = 0; b < sizeof buckets / sizeof buckets[0]; b++) {
        check_plan(&ps, buckets[b], c.size);
        for (int mode = 0; mode < 16; mode++) {
            bool overlap = mode & 1, zero = mode & 2, exact = mode & 4, thread = mode & 8;
            run(&c, &ps, g, buckets[b], overlap, zero, exact, thread, 1);
            run(&c, &ps, g, buckets[b], overlap, zero, exact, thread, 2);
        }
    }
    if (c.size > 1)
        CHECK(thread_buckets_in_backward > 0, "the progress thread never started a bucket");
    if (c.rank == 0)
        printf("mpi_bucket_sync: p=%d OK\n", c.size);
    graph_free(g);
    params_free(&ps);
    comm_free(&c);
    MPI_Finalize();
    return 0;
}
