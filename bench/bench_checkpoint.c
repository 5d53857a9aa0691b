/*
 * bench_checkpoint.c - write and read time of a collective checkpoint
 * (src/dist/checkpoint.h) at the rank count of the run. Prints one Markdown
 * table row (scripts/bench_checkpoint.sh runs it at 1, 2 and 4 ranks).
 *
 *   mpirun -n 4 bench_checkpoint [--dir DIR] [--mb 100] [--iters 3]
 *
 * The "model" is a params set of 64 tensors of [rows, 256] sized so that
 * parameters plus both Adam moments are about --mb megabytes; the moments
 * are ZeRO-1 shards (each rank 1/p). A write is the whole atomic commit
 * (create, collective hyperslab writes, close, fsync, rename, directory
 * fsync); a read loads every parameter on every rank and each rank's
 * moment shard, verifying all checksums. Times are those of the slowest
 * rank (barrier to barrier); the figure is the median of --iters. MB/s
 * counts the bytes of the file (params + moments), not bytes per rank.
 * Reads come from the page cache when the file is still there (it was just
 * written): they measure HDF5 and checksum cost more than the disk.
 */
#include "core/params.h"
#include "dist/allreduce.h"
#include "dist/check_dist.h"
#include "dist/checkpoint.h"
#include "dist/comm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    HEED_MPI_CHECK(MPI_Init(&argc, &argv));
    comm c;
    comm_init(&c, MPI_COMM_WORLD);
    const char *dir = ".";
    double mb = 100;
    int iters = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--dir"))
            dir = argv[i + 1];
        else if (!strcmp(argv[i], "--mb"))
            mb = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--iters"))
            iters = atoi(argv[i + 1]);
    }
    if (iters < 1 || iters > 50)
        iters = 3;
    /* params + m + v = 3 floats per parameter. */
    int rows = (int)(mb * 1e6 / (3.0 * sizeof(float) * 64 * 256));
    if (rows < 1)
        rows = 1;
    params ps;
    params_init(&ps);
    for (int t = 0; t < 64; t++) {
        params_push_scope(&ps, "blocks.%d", t);
        params_add(&ps, "weight", PARAM_INIT(INIT_NORMAL, 0.02f), 2, (int[]){rows, 256});
        params_pop_scope(&ps);
    }
    params_alloc(&ps, 1);
    int64_t lo, hi;
    ring_chunk_range(ps.numel, c.size, c.rank, &lo, &hi);
    adam_state adam;
    adam_state_init(&adam, lo, hi);
    for (int64_t i = 0; i < hi - lo; i++) {
        adam.m[i] = 1e-3f * (float)((lo + i) % 1000);
        adam.v[i] = 1e-6f * (float)((lo + i) % 777);
    }
    adam.t = 7;
    ckpt_meta meta;
    memset(&meta, 0, sizeof meta);
    snprintf(meta.model, sizeof meta.model, "bench");
    snprintf(meta.schedule, sizeof meta.schedule, "constant");
    meta.config = "model = bench\n";
    char path[CKPT_PATH];
    snprintf(path, sizeof path, "%s/bench-ckpt-%d.h5", dir, c.size);
    double bytes = 3.0 * sizeof(float) * (double)ps.numel;
    double *tw = xcalloc((size_t)iters, sizeof *tw), *tr = xcalloc((size_t)iters, sizeof *tr);
    char err[1024];
    for (int it = 0; it < iters; it++) {
        meta.step = it;
        HEED_MPI_CHECK(MPI_Barrier(c.mpi));
        double t0 = MPI_Wtime();
        ckpt_write_file(&c, path, &meta, &ps, &adam);
        HEED_MPI_CHECK(MPI_Barrier(c.mpi));
        tw[it] = MPI_Wtime() - t0;
        t0 = MPI_Wtime();
        ckpt_meta rm;
        bool ok = ckpt_read_meta(&c, path, &rm, err, sizeof err) &&
                  ckpt_read_state(&c, path, &ps, &adam, err, sizeof err);
        HEED_MPI_CHECK(MPI_Barrier(c.mpi));
        tr[it] = MPI_Wtime() - t0;
        if (!ok)
            HEED_DIE(HEED_EXIT_INTERNAL, "reading back %s failed: %s", path, err);
        ckpt_meta_free(&rm);
    }
    qsort(tw, (size_t)iters, sizeof *tw, cmp_double);
    qsort(tr, (size_t)iters, sizeof *tr, cmp_double);
    double w = tw[iters / 2], r = tr[iters / 2];
    if (c.rank == 0) {
        printf("| %d | %.1f | %.3f | %.0f | %.3f | %.0f |\n", c.size, bytes / 1e6, w,
               bytes / 1e6 / w, r, bytes / 1e6 / r);
        if (unlink(path) != 0)
            perror(path);
    }
    free(tw);
    free(tr);
    adam_state_free(&adam);
    params_free(&ps);
    comm_free(&c);
    HEED_MPI_CHECK(MPI_Finalize());
    return 0;
}
