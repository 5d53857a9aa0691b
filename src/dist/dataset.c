/*
 * dataset.c - opening a dataset file (format v1) on every rank, closing it,
 * and the names of splits and kinds. The checks themselves live in
 * dataset_check.c; `heed inspect` in dataset_inspect.c.
 */
#include "dist/dataset.h"

#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "dist/bad_input.h"
#include "dist/check_dist.h"
#include "dist/dataset_check.h"
#include "dist/dataset_h5.h"
#include "dist/sampler.h"

const char *const dataset_member_names[DS_COUNT] = {"images", "tokens", "segments", "labels"};

const char *dataset_split_name(dataset_split split) {
    switch (split) {
    case DATASET_SPLIT_TRAIN:
        return "train";
    case DATASET_SPLIT_VAL:
        return "val";
    case DATASET_SPLIT_TEST:
        return "test";
    default:
        return "?";
    }
}

int dataset_split_parse(const char *name) {
    for (int s = 0; s < DATASET_SPLIT_COUNT; s++)
        if (strcmp(name, dataset_split_name((dataset_split)s)) == 0)
            return s;
    return -1;
}

const char *dataset_kind_name(dataset_kind kind) {
    switch (kind) {
    case DATASET_KIND_IMAGE:
        return "image";
    case DATASET_KIND_TEXT:
        return "text";
    case DATASET_KIND_IMAGE_TEXT:
        return "image_text";
    }
    return "?";
}

dataset *dataset_alloc(const char *path) {
    dataset *ds = xcalloc(1, sizeof *ds);
    ds->path = xstrdup(path);
    ds->h5 = xcalloc(1, sizeof *ds->h5);
    ds->h5->file = -1;
    HEED_ASSERT(pthread_mutex_init(&ds->h5->lock, NULL) == 0);
    return ds;
}

int dataset_open(dataset **out, const char *path, MPI_Comm comm, const dataset_options *opt,
                 char *err, size_t errlen) {
    *out = NULL;
    int rank = 0, size = 1;
    HEED_MPI_CHECK(MPI_Comm_rank(comm, &rank));
    HEED_MPI_CHECK(MPI_Comm_size(comm, &size));
    dataset *ds = dataset_alloc(path);
    checker c = {.pr = {.path = path},
                 .ds = ds,
                 .file = -1,
                 .scan = !(opt && opt->skip_value_scan),
                 .scan_rank = rank,
                 .scan_size = size};
    h5_quiet q = checker_quiet_begin();
    if (checker_open_file(&c, path))
        checker_run(&c);
    checker_quiet_end(q);
    ds->h5->file = c.file;

    char msg[HEED_BAD_INPUT_MSG_MAX] = "";
    if (c.pr.count == 1)
        snprintf(msg, sizeof msg, "%s", c.pr.msg[0]);
    else if (c.pr.count > 1)
        snprintf(msg, sizeof msg, "%s (and %d more problem%s: `heed inspect %s` lists them all)",
                 c.pr.msg[0], c.pr.count - 1, c.pr.count > 2 ? "s" : "", path);
    bool bad = bad_input_any(comm, c.pr.count > 0, msg, err, errlen);
    checker_problems_free(&c.pr);
    if (bad) {
        dataset_close(ds);
        return HEED_EXIT_BAD_INPUT;
    }
    /* Each rank scanned its share of the rows; length bucketing needs all. */
    int *counts = xmalloc(sizeof(int) * (size_t)size),
        *displs = xmalloc(sizeof(int) * (size_t)size);
    for (int s = 0; s < DATASET_SPLIT_COUNT; s++) {
        dataset_split_info *si = &ds->splits[s];
        if (!si->lengths)
            continue;
        HEED_ASSERT(si->n <= INT32_MAX);
        for (int r = 0; r < size; r++) {
            int64_t lo, hi;
            checker_row_share(si->n, size, r, &lo, &hi);
            counts[r] = (int)(hi - lo);
            displs[r] = (int)lo;
        }
        HEED_MPI_CHECK(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, si->lengths, counts,
                                      displs, MPI_INT32_T, comm));
        int32_t top = si->max_segment;
        if (si->has_segments)
            HEED_MPI_CHECK(MPI_Allreduce(&top, &si->max_segment, 1, MPI_INT32_T, MPI_MAX, comm));
    }
    free(counts);
    free(displs);
    *out = ds;
    return 0;
}

void dataset_close(dataset *ds) {
    if (!ds)
        return;
    if (ds->h5) {
        if (ds->h5->file >= 0)
            HEED_H5_CHECK(H5Fclose(ds->h5->file), ds->path);
        pthread_mutex_destroy(&ds->h5->lock);
        free(ds->h5);
    }
    checker_strings_free(ds->classes, ds->num_classes);
    checker_strings_free(ds->vocab, ds->vocab_size);
    for (int s = 0; s < DATASET_SPLIT_COUNT; s++) {
        free(ds->splits[s].mean);
        free(ds->splits[s].std);
        free(ds->splits[s].lengths);
    }
    free(ds->name);
    free(ds->path);
    free(ds);
}

void dataset_lock(dataset *ds) {
    HEED_ASSERT(pthread_mutex_lock(&ds->h5->lock) == 0);
}

void dataset_unlock(dataset *ds) {
    HEED_ASSERT(pthread_mutex_unlock(&ds->h5->lock) == 0);
}
