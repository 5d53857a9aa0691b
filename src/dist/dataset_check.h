/*
 * dataset_check.h - the validator shared by dataset_open and `heed inspect`
 * (private to src/dist/dataset*.c).
 *
 * It walks the file in a fixed order (root attributes, classes, vocabulary,
 * then each split's datasets and their values) and collects every problem
 * as a full message instead of stopping at the first, filling the dataset's
 * metadata as it goes. dataset_open reports the first problem; inspect
 * prints all. HDF5's automatic error printing is off while it runs
 * (checker_quiet_begin/end): a missing attribute is the user's problem, and
 * HDF5's stack trace would bury our message.
 */
#ifndef HEED_DIST_DATASET_CHECK_H
#define HEED_DIST_DATASET_CHECK_H

#include "dist/dataset.h"
#include "dist/dataset_h5.h"

#include <hdf5.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct problems {
    const char *path;
    char **msg;
    int count, cap;
} problems;

typedef struct member_facts {
    bool present, ok; /* ok: shape and dtype as the format wants */
    char dtype[48];
    int ndim;
    hsize_t dims[4];
    char storage[96];
} member_facts;

typedef struct checker {
    problems pr;
    dataset *ds;
    hid_t file;
    bool scan;
    int scan_rank, scan_size; /* the value scan covers this share of rows */
    bool kind_known, num_classes_known, vocab_known;
    member_facts facts[DATASET_SPLIT_COUNT][DS_COUNT];
    bool split_present[DATASET_SPLIT_COUNT];
    double length_sum[DATASET_SPLIT_COUNT];
    int32_t length_max[DATASET_SPLIT_COUNT];
} checker;

typedef struct h5_quiet {
    H5E_auto2_t func;
    void *data;
} h5_quiet;

/* A bad value seen by the scan: the first one, and how many. */
typedef struct first_bad {
    int64_t count, row, col, value;
    double fvalue;
} first_bad;

/* Adds "PATH: OBJ: WHAT" (or "PATH: WHAT" when obj is NULL). */
__attribute__((format(printf, 3, 4))) void checker_problem_add(problems *pr, const char *obj,
                                                               const char *fmt, ...);

/* Scans int32 rows (this rank's share) of the [n, cols] dataset d: values
 * outside [vmin, vmax) into *fb, the largest into *vmax_seen, and with
 * `lengths` the non-pad length of each row. False on a read failure
 * (reported). */
bool checker_scan_ints(checker *c, hid_t d, const char *where, int nd, int64_t n, int64_t cols,
                       int64_t vmin, int64_t vmax, int32_t pad, int32_t *lengths, first_bad *fb,
                       int32_t *vmax_seen);
/* Float images must be finite: NaN in the input is NaN in every loss. */
void checker_scan_float_images(checker *c, hid_t d, const char *where, const hsize_t *dims);
/* "; N more <noun>s like it" when more than one was bad. */
void checker_more_text(const first_bad *fb, const char *noun, char *buf, size_t len);

/* A dataset with its path and lock set up, no file open yet. */
dataset *dataset_alloc(const char *path);

/* Opens the file read-only; false (and a problem) when it is missing,
 * unreadable or not HDF5. */
bool checker_open_file(checker *c, const char *path);
/* Checks the whole open file, adding problems and filling c->ds. */
void checker_run(checker *c);
void checker_problems_free(problems *pr);

/* HDF5's error printing off, and back as it was. */
h5_quiet checker_quiet_begin(void);
void checker_quiet_end(h5_quiet q);

/* "[n, c, h, w]" into buf. */
void checker_dims_text(int ndim, const hsize_t *dims, char *buf, size_t len);
/* Rank r's contiguous share [lo, hi) of n rows over p ranks. */
void checker_row_share(int64_t n, int p, int r, int64_t *lo, int64_t *hi);
void checker_strings_free(char **s, int n);

#endif
