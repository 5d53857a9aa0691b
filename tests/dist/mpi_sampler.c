/* The sampler across real ranks: every global batch, gathered from all
 * ranks, equals the batch a one-rank sampler computes locally (so the order
 * does not depend on the rank count); every sample is seen exactly once per
 * epoch; cursors agree on every rank; resuming from a cursor reproduces the
 * uninterrupted run. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist/sampler.h"

#include "mpi_check.h"

typedef struct config {
    const char *name;
    int64_t n, batch;
    bool drop_last;
    int bucket_window;
} config;

static void init_ok(sampler *s, int64_t n, const sampler_options *o, int rank, int size) {
    char err[256] = "";
    CHECK(sampler_init(s, n, o, rank, size, err, sizeof err) == 0, "%s", err);
}

/* Gathers this rank's ids of one global batch into out (rank order);
 * returns the global count. */
static int gather(const int64_t *ids, int n, int64_t *out, int size) {
    int *counts = malloc(sizeof(int) * (size_t)size), *displs = malloc(sizeof(int) * (size_t)size);
    MPI_Allgather(&n, 1, MPI_INT, counts, 1, MPI_INT, MPI_COMM_WORLD);
    int total = 0;
    for (int r = 0; r < size; r++) {
        displs[r] = total;
        total += counts[r];
    }
    MPI_Allgatherv(ids, n, MPI_INT64_T, out, counts, displs, MPI_INT64_T, MPI_COMM_WORLD);
    free(counts);
    free(displs);
    return total;
}

static void run_config(const config *cf, int rank, int size) {
    int32_t *len = malloc(sizeof(int32_t) * (size_t)cf->n);
    for (int64_t i = 0; i < cf->n; i++)
        len[i] = 1 + (int32_t)((i * 7919) % 50);
    sampler_options o = {.seed = 2024,
                         .batch_size = cf->batch,
                         .shuffle = true,
                         .drop_last = cf->drop_last,
                         .bucket_window = cf->bucket_window,
                         .lengths = len};
    sampler s, ref;
    init_ok(&s, cf->n, &o, rank, size);
    init_ok(&ref, cf->n, &o, 0, 1);
    int64_t steps = sampler_steps_per_epoch(&s);
    int64_t *ids = malloc(sizeof(int64_t) * (size_t)sampler_max_local(&s));
    int64_t *global = malloc(sizeof(int64_t) * (size_t)cf->batch);
    int64_t *want = malloc(sizeof(int64_t) * (size_t)cf->batch);
    int *seen = calloc((size_t)cf->n, sizeof(int));
    /* A log of the whole run for the resume check. */
    int64_t total_steps = 3 * steps;
    int64_t *log = malloc(sizeof(int64_t) * (size_t)(total_steps * cf->batch));
    int64_t log_n = 0;
    sampler_cursor c = {0, 0}, rc = {0, 0};
    sampler_cursor *cursors = malloc(sizeof(sampler_cursor) * (size_t)(total_steps + 1));
    int64_t *log_at = malloc(sizeof(int64_t) * (size_t)(total_steps + 1));
    for (int64_t k = 0; k < total_steps; k++) {
        cursors[k] = c;
        log_at[k] = log_n;
        int64_t gn, rgn;
        int n = sampler_next(&s, &c, ids, &gn);
        int total = gather(ids, n, global, size);
        int wn = sampler_next(&ref, &rc, want, &rgn);
        CHECK(total == wn && gn == rgn, "%s step %lld: %d samples, want %d", cf->name, (long long)k,
              total, wn);
        CHECK(memcmp(global, want, sizeof(int64_t) * (size_t)total) == 0,
              "%s step %lld: global batch differs from the one-rank order", cf->name, (long long)k);
        CHECK(c.epoch == rc.epoch && c.position == rc.position, "%s: cursor", cf->name);
        int64_t mine[2] = {c.epoch, c.position}, lo[2], hi[2];
        MPI_Allreduce(mine, lo, 2, MPI_INT64_T, MPI_MIN, MPI_COMM_WORLD);
        MPI_Allreduce(mine, hi, 2, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD);
        CHECK(lo[0] == hi[0] && lo[1] == hi[1], "%s: ranks disagree on the cursor", cf->name);
        for (int i = 0; i < total; i++)
            seen[global[i]]++;
        memcpy(log + log_n, global, sizeof(int64_t) * (size_t)total);
        log_n += total;
        if ((k + 1) % steps == 0) {
            int64_t once = 0;
            for (int64_t i = 0; i < cf->n; i++) {
                CHECK(seen[i] <= 1, "%s: sample %lld twice in epoch", cf->name, (long long)i);
                once += seen[i];
            }
            int64_t want_once = cf->drop_last ? cf->n - cf->n % cf->batch : cf->n;
            CHECK(once == want_once, "%s: %lld samples in the epoch, want %lld", cf->name,
                  (long long)once, (long long)want_once);
            CHECK(c.position == 0 && c.epoch == (k + 1) / steps, "%s: epoch end cursor", cf->name);
            memset(seen, 0, sizeof(int) * (size_t)cf->n);
        }
    }
    cursors[total_steps] = c;
    log_at[total_steps] = log_n;
    /* Resume from a few cursors with a fresh sampler: the same samples. */
    for (int64_t k = 1; k < total_steps; k += steps / 2 + 1) {
        sampler t;
        init_ok(&t, cf->n, &o, rank, size);
        sampler_cursor tc = cursors[k];
        int64_t at = log_at[k];
        for (int64_t j = k; j < total_steps; j++) {
            int64_t gn;
            int n = sampler_next(&t, &tc, ids, &gn);
            int total = gather(ids, n, global, size);
            CHECK(memcmp(global, log + at, sizeof(int64_t) * (size_t)total) == 0,
                  "%s: resume at step %lld differs at step %lld", cf->name, (long long)k,
                  (long long)j);
            at += total;
        }
        CHECK(at == log_n, "%s: resume covers another count", cf->name);
        sampler_free(&t);
    }
    free(cursors);
    free(log_at);
    free(log);
    free(seen);
    free(want);
    free(global);
    free(ids);
    free(len);
    sampler_free(&s);
    sampler_free(&ref);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    const config configs[] = {
        {"uneven", 103, 10, false, 0},    {"drop_last", 103, 10, true, 0},
        {"batch_gt_n", 7, 16, false, 0},  {"batch_lt_ranks", 50, 3, false, 0},
        {"bucketed", 1000, 64, false, 5}, {"bucketed_drop", 1000, 64, true, 3},
    };
    for (size_t i = 0; i < sizeof configs / sizeof configs[0]; i++)
        run_config(&configs[i], rank, size);
    if (rank == 0)
        printf("mpi_sampler: %d ranks OK\n", size);
    MPI_Finalize();
    return 0;
}
