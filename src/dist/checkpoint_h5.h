/*
 * checkpoint_h5.h - HDF5 helpers shared by the checkpoint writer, reader and
 * the params file (internal to src/dist).
 *
 * Writers abort through HEED_H5_CHECK (a failed write is not the user's
 * fault); readers return false with a message, because a broken file is bad
 * input that `--resume auto` skips.
 */
#ifndef HEED_DIST_CHECKPOINT_H5_H
#define HEED_DIST_CHECKPOINT_H5_H

#include "dist/comm.h"

#include <hdf5.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Scalar attributes. Collective when the file is open through MPI-IO
 * (every rank writes the same value); abort on failure. */
void ckpt_attr_write_i64(hid_t obj, const char *name, int64_t v, const char *what);
void ckpt_attr_write_u64(hid_t obj, const char *name, uint64_t v, const char *what);
void ckpt_attr_write_f32(hid_t obj, const char *name, float v, const char *what);
void ckpt_attr_write_str(hid_t obj, const char *name, const char *v, const char *what);

/* Readers: false when absent or of an unusable type. Not collective (reads
 * of attributes are independent). */
bool ckpt_attr_read_i64(hid_t obj, const char *name, int64_t *v);
bool ckpt_attr_read_u64(hid_t obj, const char *name, uint64_t *v);
bool ckpt_attr_read_f32(hid_t obj, const char *name, float *v);
/* A malloc'd copy of a fixed- or variable-length string attribute, or NULL. */
char *ckpt_attr_read_str(hid_t obj, const char *name);

/* Collective: all ranks learn whether every rank was ok; when not, every
 * rank's err receives the message of the lowest failing rank. */
bool ckpt_agree(const comm *c, bool ok, char *err, size_t errlen);

/* The readers' check: unless ok, the message (printf-style) goes to
 * err[0..errlen) and control to the function's `done:` label, where it
 * closes what it opened. */
#define CKPT_NEED(ok, ...)                                                                         \
    do {                                                                                           \
        if (!(ok)) {                                                                               \
            snprintf(err, errlen, __VA_ARGS__);                                                    \
            goto done;                                                                             \
        }                                                                                          \
    } while (0)

/* Turns HDF5's automatic error printing off (readers report themselves);
 * returns what to pass to ckpt_h5_errors_restore. Not collective. */
typedef struct ckpt_h5_errors {
    H5E_auto2_t func;
    void *data;
} ckpt_h5_errors;
ckpt_h5_errors ckpt_h5_errors_off(void);
void ckpt_h5_errors_restore(ckpt_h5_errors e);

/* A file access list for the MPI-IO driver on c, with collective metadata
 * operations or not. Caller closes it. Not collective. */
hid_t ckpt_fapl_mpio(const comm *c, bool collective_metadata);

/* A collective transfer list (H5FD_MPIO_COLLECTIVE); see checkpoint_util.c
 * for HEED_CKPT_IO. Caller closes it. Not collective. */
hid_t ckpt_dxpl(void);

#endif
