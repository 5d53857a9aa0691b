/*
 * loader.h - batches for the training loop, prepared ahead by a thread.
 *
 * A loader pairs a sampler with a dataset reader. Its prefetch thread reads,
 * normalises and trims the next batches into a ring of `depth` preallocated
 * batches while the trainer computes on the current one:
 *
 *     loader *ld;
 *     loader_options o = {.split = DATASET_SPLIT_TRAIN,
 *                         .sampler = {.seed = 1, .batch_size = 256, .shuffle = true},
 *                         .start = cursor_from_checkpoint};
 *     if (loader_init(&ld, ds, comm, &o, err, sizeof err))      // collective
 *         bad_input_exit(comm, err);
 *     for (step...) {
 *         batch *b = loader_next(ld);   // valid until the next loader_next
 *         ... forward/backward on b->n rows of b->global_n ...
 *         cursor = (sampler_cursor){b->next_epoch, b->next_position};
 *     }
 *     loader_free(ld);
 *
 * The batches are a pure function of the options and the start cursor: the
 * thread only changes when the work is done, never what it yields. After
 * the first batches nothing is allocated. The thread makes no MPI calls;
 * its HDF5 calls hold the dataset's lock (dataset.h), so the main thread may
 * use HDF5 elsewhere (checkpoints) only under dataset_lock too. In memory
 * mode the thread never touches HDF5 after loader_init.
 */
#ifndef HEED_DIST_LOADER_H
#define HEED_DIST_LOADER_H

#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dist/dataset.h"
#include "dist/sampler.h"

/* AUTO reads the split into memory when it takes at most this many bytes
 * (per rank: every rank holds the whole split). */
#define LOADER_DEFAULT_MEMORY_BUDGET ((int64_t)2 << 30)

typedef enum loader_mode {
    LOADER_MODE_AUTO,   /* MEMORY if the split fits the budget, else STREAM */
    LOADER_MODE_STREAM, /* read each batch's rows from the file */
    LOADER_MODE_MEMORY, /* read the whole split once */
    /* Either way, plain (contiguous, unfiltered) datasets are memory-mapped
     * unless no_map: the mode matters for chunked or compressed ones. */
} loader_mode;

typedef struct loader_options {
    dataset_split split;
    loader_mode mode;
    int64_t memory_budget; /* bytes for AUTO; 0: LOADER_DEFAULT_MEMORY_BUDGET */
    int depth;             /* batches in the ring, >= 2 (one is the trainer's); 0: 3 */
    bool synchronous;      /* no thread: loader_next reads (debugging, benchmarks) */
    bool no_map;           /* never memory-map the file (dataset_reader_init_opts) */
    /* Evaluation: this rank's contiguous range of the split (sampler split
     * rule), in order, in batches of eval_batch rows, once per pass; the
     * sampler options and start are ignored. Eval batches are not aligned
     * across ranks: global_n = n, next_epoch = 0, next_position = the next
     * row. Sum metrics over ranks for exact results. */
    bool eval;
    int eval_batch;
    sampler_options sampler; /* training; bucketing uses the split's lengths when
                                sampler.lengths is NULL */
    sampler_cursor start;    /* training: the first batch starts here */
} loader_options;

typedef struct loader loader;

/* Creates a loader over `ds` (which must outlive it) for this rank of
 * `comm` and starts its thread. Memory mode reads the whole split here.
 * Bad options (batch size, bucketing without lengths, an empty range)
 * return HEED_EXIT_BAD_INPUT on every rank with the same message in
 * err[0..errlen), *out = NULL. Collective: every rank of `comm` must call
 * this (for the agreement only; the loader itself never communicates). */
int loader_init(loader **out, dataset *ds, MPI_Comm comm, const loader_options *opt, char *err,
                size_t errlen);

/* The next batch, owned by the loader and valid until the next call
 * (which hands it back for reuse). Training never ends: epochs follow one
 * another, and a rank's batch may hold 0 rows (global_n < ranks). Eval
 * returns NULL after the rank's last batch (ranks may differ by one batch).
 * Blocks until the batch is ready. Not collective; main thread only. */
batch *loader_next(loader *l);

/* Eval loaders: start the next pass over the range (in memory: without
 * reading again). Not collective. */
void loader_rewind(loader *l);

/* Whether the loader holds the split in memory (the mode AUTO chose). */
bool loader_in_memory(const loader *l);

/* Where its rows come from: dataset_reader_source. */
const char *loader_source(const loader *l);

/* Stops and joins the thread, frees everything (NULL is fine). Batches it
 * returned become invalid. Not collective. */
void loader_free(loader *l);

#endif
