/*
 * dataset.h - HDF5 datasets (docs/data-format.md, format v1): open and
 * validate a file, its metadata, and reading rows into batches.
 *
 * A file holds one dataset with the splits train, val and test. Opening it
 * checks the whole file against the contract once (attributes, shapes,
 * dtypes, row counts, labels in [0, num_classes), token ids in [0, V)), so
 * a bad file stops the job at start with a message that names the file, the
 * dataset and what was expected, never half-way through an epoch:
 *
 *     data/x.h5: /train/labels: label 12 at row 345 is outside [0, 10) (num_classes)
 *
 *     dataset *ds;
 *     char err[HEED_BAD_INPUT_MSG_MAX];
 *     if (dataset_open(&ds, path, comm, NULL, err, sizeof err))   // collective
 *         bad_input_exit(comm, err);                              // all stop, exit 2
 *     dataset_reader *r = dataset_reader_init(ds, DATASET_SPLIT_TRAIN, 256, false);
 *     batch b;
 *     batch_init(&b, ds, 256);
 *     dataset_reader_read(r, ids, n, &b);                         // rows ids[0..n)
 *
 * Every rank opens the file read-only with HDF5's default (sec2) driver:
 * reading needs no MPI-IO, and each rank reads only the rows it needs.
 * Datasets stored as plain arrays (contiguous, unfiltered: h5py's default)
 * are memory-mapped, so a row is a copy out of the page cache; chunked or
 * compressed ones go through HDF5.
 *
 * Threads: the Debian HDF5 is built without thread safety, so every HDF5
 * call of a dataset's reading runs under the dataset's lock (dataset_lock).
 * Code that calls HDF5 on another file while loaders of this dataset run
 * (checkpoints!) must hold that lock too.
 */
#ifndef HEED_DIST_DATASET_H
#define HEED_DIST_DATASET_H

#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/check.h" /* HEED_EXIT_BAD_INPUT */

typedef enum dataset_kind {
    DATASET_KIND_IMAGE,
    DATASET_KIND_TEXT,
    DATASET_KIND_IMAGE_TEXT,
} dataset_kind;

typedef enum dataset_split {
    DATASET_SPLIT_TRAIN,
    DATASET_SPLIT_VAL,
    DATASET_SPLIT_TEST,
    DATASET_SPLIT_COUNT,
} dataset_split;

/* How images are stored: uint8 (normalised from x/255) or float32. */
typedef enum dataset_dtype {
    DATASET_DTYPE_UINT8,
    DATASET_DTYPE_FLOAT32,
} dataset_dtype;

typedef struct dataset_split_info {
    int64_t n;                 /* rows (samples) */
    dataset_dtype image_dtype; /* when the dataset has images */
    float *mean, *std;         /* [channels]: normalisation of this split's images */
    bool has_segments;         /* text: /split/segments present */
    int32_t max_segment;       /* text with segments: largest segment id */
    /* text: [n] non-pad length of each row (index of the last non-pad token
     * + 1, at least 1); what length bucketing sorts by. NULL for images or
     * when dataset_options.skip_value_scan was set. */
    int32_t *lengths;
} dataset_split_info;

typedef struct dataset_h5 dataset_h5; /* HDF5 handles and the lock: private */

typedef struct dataset {
    char *path;
    dataset_kind kind;
    char *name;
    int num_classes;
    char **classes; /* [num_classes] UTF-8 class names */
    bool has_images, has_tokens;
    int channels, height, width; /* images */
    /* text (0 and NULL otherwise) */
    int vocab_size, max_len;
    int pad_id, unk_id, cls_id, sep_id, mask_id;
    char **vocab; /* [vocab_size] */
    dataset_split_info splits[DATASET_SPLIT_COUNT];
    dataset_h5 *h5;
} dataset;

typedef struct dataset_options {
    /* Skip reading labels and tokens at open: no range checks and no
     * lengths (so no length bucketing). For huge files on slow disks. */
    bool skip_value_scan;
} dataset_options;

/* A batch of samples in the order the sampler gave them. Buffers are sized
 * once for `capacity` rows at max_len tokens, so reading a batch allocates
 * nothing. Shapes use B = n rows, C/H/W image dims, T = len tokens. */
typedef struct batch {
    int n, capacity;
    int64_t *ids;  /* [B] global sample indices within the split */
    float *images; /* [B, C, H, W] normalised; NULL without images */
    int channels, height, width;
    int32_t *tokens;   /* [B, T] trimmed; NULL without text */
    int32_t *segments; /* [B, T]; NULL when the split has none */
    int len;           /* T: the longest non-pad length in the batch (<= max_len) */
    int32_t *labels;   /* [B] in [0, num_classes) */
    /* Set by the loader: the size of the global batch this is a slice of
     * (sum of n over ranks), and the sampler cursor to save so that a resume
     * continues right after this batch. */
    int64_t global_n;
    int64_t next_epoch, next_position;
    int32_t *segments_storage; /* owns what `segments` points at */
} batch;

/* "train", "val", "test" ("?" for anything else). */
const char *dataset_split_name(dataset_split split);

/* The split called `name`, or -1. */
int dataset_split_parse(const char *name);

/* "image", "text", "image_text". */
const char *dataset_kind_name(dataset_kind kind);

/* Opens the HDF5 file at `path` read-only on every rank of `comm` and checks
 * all of it against data format v1. Structure (attributes, groups, shapes,
 * dtypes, row counts) is checked on every rank; the value scan (labels,
 * token and segment ids, float images finite) is split across the ranks,
 * each scanning a contiguous share of each split, and the text row lengths
 * are then all-gathered. `opt` may be NULL (defaults).
 * On success returns 0 and *out (free with dataset_close). On bad input
 * returns HEED_EXIT_BAD_INPUT and *out = NULL on every rank, with the same
 * message in err[0..errlen) on every rank: the first problem the lowest
 * failing rank found, naming the file, the object and expected vs found
 * (`heed inspect FILE` lists them all). Aborts (HEED_EXIT_INTERNAL) only for
 * failures of heed or the machine (out of memory). HDF5's own error printing
 * is silenced during the checks so the messages are ours.
 * Collective: every rank of `comm` must call this. */
int dataset_open(dataset **out, const char *path, MPI_Comm comm, const dataset_options *opt,
                 char *err, size_t errlen);

/* Closes the file and frees everything of `ds` (NULL is fine). No reader of
 * it may remain. Not collective. */
void dataset_close(dataset *ds);

/* Checks the file at `path` against the format without MPI and prints to
 * `out` its kind, splits, shapes, dtypes, storage, classes, vocabulary size
 * and then every problem found, one per line (repeated value problems of one
 * dataset are summarised on one line with a count). Returns the number of
 * problems (0: the file is valid). Not collective; needs no MPI. */
int dataset_inspect(const char *path, FILE *out);

/* The dataset's HDF5 lock (see the top of this file). Not recursive. */
void dataset_lock(dataset *ds);
void dataset_unlock(dataset *ds);

/* Allocates b's buffers for `capacity` rows of `ds` (tokens at max_len,
 * segments only if some split has them). Aborts on out of memory. */
void batch_init(batch *b, const dataset *ds, int capacity);
void batch_free(batch *b);

typedef struct dataset_reader dataset_reader;

/* A reader of one split for batches of at most `max_rows` rows. With
 * in_memory the whole split (not a shard: any rank may be given any sample)
 * is read now, in its stored dtype, and later reads touch no HDF5; else each
 * read fetches just the rows asked for (streaming). Takes the dataset lock
 * around its HDF5 calls. Aborts with HEED_EXIT_BAD_INPUT if the file cannot
 * be read (truncated, corrupt chunks). Not collective. */
dataset_reader *dataset_reader_init(dataset *ds, dataset_split split, int max_rows, bool in_memory);

/* dataset_reader_init; with allow_map, HDF5 datasets stored as plain arrays
 * (contiguous, unfiltered, native byte order: what h5py writes by default)
 * are memory-mapped instead of read, whatever in_memory says: rows are
 * copied from the page cache, which the ranks of a node share, with no
 * HDF5 call and no lock (in_memory then only asks the kernel to read ahead).
 * dataset_reader_init allows mapping. */
dataset_reader *dataset_reader_init_opts(dataset *ds, dataset_split split, int max_rows,
                                         bool in_memory, bool allow_map);

/* Where the rows come from: "map", "memory" or "stream" (through HDF5 at
 * each read), or "mixed" when the split's datasets differ. */
const char *dataset_reader_source(const dataset_reader *r);

void dataset_reader_free(dataset_reader *r);

/* Bytes the split takes in memory in its stored dtypes: what in_memory
 * costs. */
int64_t dataset_split_bytes(const dataset *ds, dataset_split split);

/* Fills b (capacity >= n, n <= max_rows) with rows ids[0..n) of the split
 * in that order: images normalised ((x/255 - mean) / std for uint8, (x -
 * mean) / std for float32), tokens and segments trimmed to the longest
 * non-pad length of these rows, labels. Streaming reads sort the ids,
 * coalesce runs of consecutive rows into hyperslab unions and make one
 * H5Dread per 64 runs (contiguous) or per run (chunked: through the chunk
 * cache, sized to the split up to 64 MiB). Ids may repeat. An id outside [0, n) is a bug (aborts);
 * a read failure aborts the job with HEED_EXIT_BAD_INPUT. Not collective; call it from one thread
 * at a time per reader. */
void dataset_reader_read(dataset_reader *r, const int64_t *ids, int n, batch *b);

/* How many rows of the split carry each label: a new array of num_classes
 * counts (free it). Reads the whole labels dataset under the dataset lock; a
 * read failure or a label out of range aborts the job with
 * HEED_EXIT_BAD_INPUT. Not collective. */
int64_t *dataset_label_counts(dataset *ds, dataset_split split);

#endif
