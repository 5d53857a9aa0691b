/*
 * bench_allreduce.c - heed's ring all-reduce (src/dist/allreduce.h) against
 * the MPI library's MPI_Allreduce, float32 sum in place, in one run on the
 * same buffers. Prints a Markdown table (scripts/bench_allreduce.sh runs it at
 * several rank counts).
 *
 *   mpirun -n 4 bench_allreduce [--min-bytes 4096] [--max-bytes 67108864]
 *          [--factor 4] [--segment-floats 65536] [--warmup 2] [--iters N]
 *          [--algo auto|ring|ref]
 *
 * --algo auto: ring_allreduce as training calls it (recursive doubling for
 * small messages, the shared-memory window on one node from 64 KiB, else the
 * pipelined ring); ring: the message paths only; ref: the plain reference
 * ring (ring_allreduce_ref).
 *
 * Every iteration restores the input (untimed), meets at a barrier, then
 * times one all-reduce; an iteration's time is that of the slowest rank. heed
 * and MPI iterations alternate, so load from other processes hits both
 * alike; the figure is the median. Before timing, the two results are compared
 * (they agree within rounding, not bitwise: the summation orders differ).
 * Bandwidths follow nccl-tests: algbw = bytes / time, busbw = algbw * 2(p-1)/p,
 * which compares across rank counts (the bytes each rank must move).
 */
#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dist/allreduce.h"
#include "dist/check_dist.h"
#include "dist/comm.h"

typedef struct bench_opts {
    size_t min_bytes, max_bytes, factor, segment_floats;
    int warmup, iters; /* iters 0: chosen per size */
    const char *algo;  /* auto (ring_allreduce's choice), ring (messages only), ref */
} bench_opts;

static size_t parse_size(const char *key, const char *v) {
    char *end = NULL;
    unsigned long long x = strtoull(v, &end, 10);
    if (!end || end == v)
        HEED_DIE(HEED_EXIT_BAD_INPUT, "%s expects a number, got '%s'", key, v);
    if (*end == 'K' || *end == 'k')
        x <<= 10, end++;
    else if (*end == 'M' || *end == 'm')
        x <<= 20, end++;
    else if (*end == 'G' || *end == 'g')
        x <<= 30, end++;
    if (*end)
        HEED_DIE(HEED_EXIT_BAD_INPUT, "%s expects a number with an optional K/M/G, got '%s'", key,
                 v);
    return (size_t)x;
}

static bench_opts parse_opts(int argc, char **argv) {
    bench_opts o = {.min_bytes = 4096,
                    .max_bytes = 64u << 20,
                    .factor = 4,
                    .segment_floats = RING_SEGMENT_FLOATS_DEFAULT,
                    .warmup = 2,
                    .iters = 0,
                    .algo = "auto"};
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i];
        if (i + 1 >= argc)
            HEED_DIE(HEED_EXIT_BAD_INPUT, "option %s needs a value", k);
        const char *v = argv[++i];
        if (!strcmp(k, "--min-bytes"))
            o.min_bytes = parse_size(k, v);
        else if (!strcmp(k, "--max-bytes"))
            o.max_bytes = parse_size(k, v);
        else if (!strcmp(k, "--factor"))
            o.factor = parse_size(k, v);
        else if (!strcmp(k, "--segment-floats"))
            o.segment_floats = parse_size(k, v);
        else if (!strcmp(k, "--warmup"))
            o.warmup = (int)parse_size(k, v);
        else if (!strcmp(k, "--iters"))
            o.iters = (int)parse_size(k, v);
        else if (!strcmp(k, "--algo")) {
            if (strcmp(v, "auto") && strcmp(v, "ring") && strcmp(v, "ref"))
                HEED_DIE(HEED_EXIT_BAD_INPUT, "--algo expects auto, ring or ref, got '%s'", v);
            o.algo = v;
        } else
            HEED_DIE(HEED_EXIT_BAD_INPUT,
                     "unknown option %s (expected --min-bytes, --max-bytes, --factor, "
                     "--segment-floats, --warmup, --iters, --algo)",
                     k);
    }
    if (o.factor < 2 || o.min_bytes < sizeof(float) || o.max_bytes < o.min_bytes ||
        o.max_bytes / sizeof(float) > (size_t)INT32_MAX)
        HEED_DIE(HEED_EXIT_BAD_INPUT,
                 "need --factor >= 2 and 4 <= --min-bytes <= --max-bytes < 8G (MPI_Allreduce "
                 "takes an int count)");
    return o;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One timed all-reduce of `work` (restored from `src` first, untimed): the
 * slowest rank's seconds. Collective. */
static int use_ref;

static double time_one(const comm *c, ring *r, int use_ring, float *work, const float *src,
                       int64_t n) {
    memcpy(work, src, (size_t)n * sizeof(float));
    HEED_MPI_CHECK(MPI_Barrier(c->mpi));
    double t0 = MPI_Wtime();
    if (use_ring && use_ref)
        ring_allreduce_ref(r, work, n, RING_OP_SUM);
    else if (use_ring)
        ring_allreduce(r, work, n, RING_OP_SUM);
    else
        HEED_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, work, (int)n, MPI_FLOAT, MPI_SUM, c->mpi));
    double dt = MPI_Wtime() - t0, slowest = 0;
    HEED_MPI_CHECK(MPI_Allreduce(&dt, &slowest, 1, MPI_DOUBLE, MPI_MAX, c->mpi));
    return slowest;
}

int main(int argc, char **argv) {
    HEED_MPI_CHECK(MPI_Init(&argc, &argv));
    bench_opts o = parse_opts(argc, argv);
    comm c;
    comm_init(&c, MPI_COMM_WORLD);
    const int p = c.size;
    const int64_t max_n = (int64_t)(o.max_bytes / sizeof(float));
    ring r;
    ring_init(&r, &c, (size_t)max_n, o.segment_floats);
    if (!strcmp(o.algo, "ring"))
        r.shm_min_bytes = SIZE_MAX; /* messages only: recursive doubling, then the ring */
    use_ref = !strcmp(o.algo, "ref");

    float *src = xaligned_alloc(64, (size_t)max_n * sizeof(float));
    float *work = xaligned_alloc(64, (size_t)max_n * sizeof(float));
    float *ref = xaligned_alloc(64, (size_t)max_n * sizeof(float));
    /* Small values of either sign: sums stay far from overflow and denormals. */
    for (int64_t i = 0; i < max_n; i++)
        src[i] = (float)((i * 7919 + c.rank * 104729) % 2001 - 1000) * 1e-3f;

    /* Memory-copy bandwidth with every rank copying at once (the ceiling a
     * shared-memory transport works under): bytes copied per second per
     * rank, and over all ranks. Pages are touched first, untimed. */
    memcpy(work, src, (size_t)max_n * sizeof(float));
    HEED_MPI_CHECK(MPI_Barrier(c.mpi));
    double tc = MPI_Wtime();
    for (int k = 0; k < 3; k++)
        memcpy(k % 2 ? src : work, k % 2 ? work : src, (size_t)max_n * sizeof(float));
    tc = MPI_Wtime() - tc;
    double slow_copy = 0;
    HEED_MPI_CHECK(MPI_Allreduce(&tc, &slow_copy, 1, MPI_DOUBLE, MPI_MAX, c.mpi));
    const double copy_gbs = 3.0 * (double)max_n * sizeof(float) / slow_copy * 1e-9;
    /* The copies went back and forth three times: restore src. */
    for (int64_t i = 0; i < max_n; i++)
        src[i] = (float)((i * 7919 + c.rank * 104729) % 2001 - 1000) * 1e-3f;

    if (c.rank == 0) {
        printf("memcpy of %zu MB on all %d ranks at once: %.2f GB/s per rank, %.1f GB/s in all\n\n",
               (size_t)max_n * sizeof(float) >> 20, p, copy_gbs, copy_gbs * p);
        char lib[MPI_MAX_LIBRARY_VERSION_STRING];
        int len = 0;
        HEED_MPI_CHECK(MPI_Get_library_version(lib, &len));
        lib[strcspn(lib, ",\n")] = '\0';
        printf("heed all-reduce (--algo %s) vs MPI_Allreduce: float32 sum in place, p=%d ranks on "
               "%d node(s) (%d on this node), segment %zu floats, recursive doubling up to %zu B, "
               "shared memory from %s B, %s\n\n",
               o.algo, p, c.num_nodes, c.local_size, r.segment_bytes / sizeof(float),
               use_ref ? (size_t)0 : r.small_bytes,
               r.shm_min_bytes == SIZE_MAX || use_ref ? "(never)" : "65536", lib);
        printf("| bytes | heed time (us) | heed algbw (GB/s) | heed busbw (GB/s) "
               "| MPI time (us) | MPI algbw (GB/s) | MPI busbw (GB/s) | heed speed / MPI |\n");
        printf("|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        fflush(stdout);
    }

    int max_iters = 1000;
    double *t_ring = xmalloc((size_t)max_iters * sizeof(double));
    double *t_mpi = xmalloc((size_t)max_iters * sizeof(double));
    int mismatches = 0;
    for (size_t bytes = o.min_bytes; bytes <= o.max_bytes; bytes *= o.factor) {
        const int64_t n = (int64_t)(bytes / sizeof(float));
        /* About 256 MB moved per size, between 5 and 200 iterations. */
        int iters = o.iters > 0 ? o.iters : (int)((256u << 20) / bytes);
        if (o.iters <= 0)
            iters = iters < 5 ? 5 : iters > 200 ? 200 : iters;
        if (iters > max_iters)
            iters = max_iters;

        /* Both results, compared once within rounding (|x| <= 1 per rank). */
        time_one(&c, &r, 1, work, src, n);
        time_one(&c, &r, 0, ref, src, n);
        float worst = 0;
        for (int64_t i = 0; i < n; i++) {
            float d = fabsf(work[i] - ref[i]);
            worst = d > worst ? d : worst;
        }
        if (!(worst <= 1e-5f * (float)p)) {
            fprintf(stderr, "bench_allreduce: rank %d: %zu bytes: ring and MPI differ by %g\n",
                    c.rank, bytes, worst);
            mismatches++;
        }

        for (int w = 0; w < o.warmup; w++) {
            time_one(&c, &r, 1, work, src, n);
            time_one(&c, &r, 0, work, src, n);
        }
        for (int it = 0; it < iters; it++) {
            t_ring[it] = time_one(&c, &r, 1, work, src, n);
            t_mpi[it] = time_one(&c, &r, 0, work, src, n);
        }
        qsort(t_ring, (size_t)iters, sizeof(double), cmp_double);
        qsort(t_mpi, (size_t)iters, sizeof(double), cmp_double);
        double tr = t_ring[iters / 2], tm = t_mpi[iters / 2];
        double bus = p > 1 ? 2.0 * (p - 1) / p : 0.0;
        if (c.rank == 0) {
            printf("| %zu | %.1f | %.3f | %.3f | %.1f | %.3f | %.3f | %.2f |\n", bytes, tr * 1e6,
                   bytes / tr * 1e-9, bytes / tr * 1e-9 * bus, tm * 1e6, bytes / tm * 1e-9,
                   bytes / tm * 1e-9 * bus, tm / tr);
            fflush(stdout);
        }
        if (bytes > o.max_bytes / o.factor)
            break; /* the next size would pass max_bytes (or overflow) */
    }

    int total_mismatches = 0;
    HEED_MPI_CHECK(MPI_Allreduce(&mismatches, &total_mismatches, 1, MPI_INT, MPI_SUM, c.mpi));
    free(t_ring);
    free(t_mpi);
    free(src);
    free(work);
    free(ref);
    ring_free(&r);
    comm_free(&c);
    HEED_MPI_CHECK(MPI_Finalize());
    return total_mismatches ? 1 : 0;
}
