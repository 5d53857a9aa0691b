/*
 * explain_file.h - the HDF5 file `heed explain` writes: one row per
 * explained sample in every dataset (docs/explain.md lists them).
 *
 * Datasets are created on first write with shape [n, per-sample dims...],
 * so a caller writes rows chunk by chunk without declaring them first. Not
 * collective: one process writes the file (with HDF5's default driver).
 * HDF5 failures abort (HEED_H5_CHECK): the caller writes to a temporary
 * name and renames it only after explain_file_close succeeded.
 */
#ifndef HEED_APP_EXPLAIN_FILE_H
#define HEED_APP_EXPLAIN_FILE_H

#include "core/tensor.h"

#include <stdint.h>

typedef struct explain_file explain_file;

/* Creates (truncates) `path` for `n` samples. */
explain_file *explain_file_create(const char *path, int64_t n);

/* A string attribute on the root group. */
void explain_file_set_attr(explain_file *f, const char *name, const char *value);

/* Rows [row0, row0 + rows) of dataset `name` (parents created as needed,
 * e.g. "attention/blocks.0.attn"): `ndim` per-sample dims, row-major data of
 * dtype dt (DTYPE_F32 or DTYPE_I32; int64 via explain_file_write_ids). Every
 * call for one name must pass the same dims. `kind`, when not NULL, is
 * stored as the dataset's "kind" attribute at creation. */
void explain_file_write_rows(explain_file *f, const char *name, const char *kind, dtype dt,
                             int ndim, const int *dims, int64_t row0, int rows, const void *data);

/* Rows of the int64 dataset "samples". */
void explain_file_write_ids(explain_file *f, int64_t row0, int rows, const int64_t *ids);

/* A 1-D variable-length UTF-8 string dataset (class names). */
void explain_file_write_strings(explain_file *f, const char *name, char *const *strings, int n);

/* Closes the file; frees f. */
void explain_file_close(explain_file *f);

#endif
