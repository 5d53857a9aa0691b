/*
 * dataset_h5.h - private to dataset.c and dataset_read.c: the HDF5 side of
 * an open dataset.
 */
#ifndef HEED_DIST_DATASET_H5_H
#define HEED_DIST_DATASET_H5_H

#include <hdf5.h>
#include <pthread.h>

#include "dist/dataset.h"

struct dataset_h5 {
    hid_t file;
    /* Serialises every HDF5 call on this dataset (HDF5 is not thread-safe
     * here); see dataset_lock. */
    pthread_mutex_t lock;
};

/* The HDF5 datasets of a split ("images", "tokens", "segments", "labels"). */
enum { DS_IMAGES, DS_TOKENS, DS_SEGMENTS, DS_LABELS, DS_COUNT };
extern const char *const dataset_member_names[DS_COUNT];

/* Prints "heed: error: FILE: /split/name: WHAT (truncated or corrupt file?)"
 * and takes the whole job down with HEED_EXIT_BAD_INPUT: a user file that
 * passed validation but fails to read mid-run (a corrupt chunk). */
_Noreturn void dataset_read_fail(const dataset *ds, dataset_split split, int member,
                                 const char *what);

#endif
