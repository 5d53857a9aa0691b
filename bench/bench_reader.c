/*
 * bench_reader - how fast the loader delivers batches, streaming from the
 * file and from memory.
 *
 *     bench_reader FILE.h5 [--split train] [--batch 256] [--steps 200]
 *                  [--mode map|stream|memory|all] [--synchronous] [--bucket W]
 *     mpirun -n 2 bench_reader data/fashion_mnist.h5
 *
 * Modes: map (plain datasets memory-mapped; others streamed), stream
 * (through HDF5 at each batch, no mapping), memory (the split read into
 * private memory, no mapping); all (default) runs the three.
 * --batch is the global batch (each rank reads its share). With no compute
 * in between, loader_next runs at the rate the prefetch thread prepares
 * batches (read + normalise + trim); --synchronous reads in the calling
 * thread instead. Prints the open/validate time, the time to set the
 * loader up (in memory: reading the split) and samples/s over all ranks
 * (samples of all ranks / the slowest rank's time).
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist/bad_input.h"
#include "dist/loader.h"

static double now(void) {
    return MPI_Wtime();
}

static void usage(void) {
    fprintf(stderr, "usage: bench_reader FILE.h5 [--split train|val|test] [--batch N] "
                    "[--steps N] [--mode map|stream|memory|all] [--synchronous] [--bucket W]\n");
}

static void run(dataset *ds, dataset_split split, loader_mode mode, bool no_map, int batch_size,
                int steps, bool sync, int bucket, int rank, int size) {
    loader_options o = {
        .split = split,
        .mode = mode,
        .no_map = no_map,
        .synchronous = sync,
        .sampler = {.seed = 1, .batch_size = batch_size, .shuffle = true, .bucket_window = bucket}};
    char err[HEED_BAD_INPUT_MSG_MAX];
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = now();
    loader *l;
    if (loader_init(&l, ds, MPI_COMM_WORLD, &o, err, sizeof err))
        bad_input_exit(MPI_COMM_WORLD, err);
    double t_init = now() - t0;
    for (int k = 0; k < 3; k++) /* warm: first batches, thread start */
        loader_next(l);
    MPI_Barrier(MPI_COMM_WORLD);
    t0 = now();
    long samples = 0, tokens = 0, padded = 0;
    for (int k = 0; k < steps; k++) {
        batch *b = loader_next(l);
        samples += b->n;
        if (b->tokens) {
            padded += (long)b->n * b->len;
            for (int i = 0; i < b->n; i++)
                tokens += ds->splits[split].lengths ? ds->splits[split].lengths[b->ids[i]] : 0;
        }
    }
    double t = now() - t0, t_max, init_max;
    long all = 0;
    MPI_Reduce(&t, &t_max, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    MPI_Reduce(&t_init, &init_max, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    MPI_Reduce(&samples, &all, 1, MPI_LONG, MPI_SUM, 0, MPI_COMM_WORLD);
    if (rank == 0) {
        printf("%-6s %-11s ranks %d  batch %d  init %7.3f s  %9.0f samples/s  %7.3f ms/batch",
               loader_source(l), sync ? "synchronous" : "prefetch", size, batch_size, init_max,
               (double)all / t_max, 1e3 * t_max / steps);
        if (padded)
            printf("  fill %.2f", (double)tokens / (double)padded);
        printf("\n");
    }
    loader_free(l);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (argc < 2) {
        usage();
        MPI_Finalize();
        return 2;
    }
    const char *path = argv[1], *split_name = "train", *mode = "all";
    int batch_size = 256, steps = 200, bucket = 0;
    bool sync = false;
    for (int i = 2; i < argc; i++) {
        bool more = i + 1 < argc;
        if (strcmp(argv[i], "--split") == 0 && more)
            split_name = argv[++i];
        else if (strcmp(argv[i], "--batch") == 0 && more)
            batch_size = atoi(argv[++i]);
        else if (strcmp(argv[i], "--steps") == 0 && more)
            steps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--mode") == 0 && more)
            mode = argv[++i];
        else if (strcmp(argv[i], "--bucket") == 0 && more)
            bucket = atoi(argv[++i]);
        else if (strcmp(argv[i], "--synchronous") == 0)
            sync = true;
        else {
            if (rank == 0)
                usage();
            MPI_Finalize();
            return 2;
        }
    }
    int split = dataset_split_parse(split_name);
    if (split < 0 || batch_size < 1 || steps < 1) {
        if (rank == 0)
            usage();
        MPI_Finalize();
        return 2;
    }
    char err[HEED_BAD_INPUT_MSG_MAX];
    dataset *ds;
    double t0 = now();
    if (dataset_open(&ds, path, MPI_COMM_WORLD, NULL, err, sizeof err))
        bad_input_exit(MPI_COMM_WORLD, err);
    double t_open = now() - t0;
    if (rank == 0)
        printf("%s /%s: %lld samples, %.1f MB in memory; open + validate %.3f s on %d rank%s\n",
               path, split_name, (long long)ds->splits[split].n,
               (double)dataset_split_bytes(ds, (dataset_split)split) / 1e6, t_open, size,
               size > 1 ? "s" : "");
    bool all = strcmp(mode, "all") == 0;
    if (all || strcmp(mode, "map") == 0)
        run(ds, (dataset_split)split, LOADER_MODE_STREAM, false, batch_size, steps, sync, bucket,
            rank, size);
    if (all || strcmp(mode, "stream") == 0)
        run(ds, (dataset_split)split, LOADER_MODE_STREAM, true, batch_size, steps, sync, bucket,
            rank, size);
    if (all || strcmp(mode, "memory") == 0)
        run(ds, (dataset_split)split, LOADER_MODE_MEMORY, true, batch_size, steps, sync, bucket,
            rank, size);
    dataset_close(ds);
    MPI_Finalize();
    return 0;
}
