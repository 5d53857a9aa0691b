#include "app/explain_file.h"

#include "core/check.h"
#include "dist/check_dist.h"

#include <hdf5.h>
#include <stdlib.h>
#include <string.h>

enum { EXPLAIN_MAX_DATASETS = 96, EXPLAIN_MAX_DIMS = 5 };

typedef struct explain_dataset {
    char name[96];
    hid_t id;
    int rank; /* 1 + per-sample dims */
    hsize_t dims[EXPLAIN_MAX_DIMS];
} explain_dataset;

struct explain_file {
    char *path;
    hid_t file;
    int64_t n;
    explain_dataset sets[EXPLAIN_MAX_DATASETS];
    int count;
};

explain_file *explain_file_create(const char *path, int64_t n) {
    explain_file *f = xcalloc(1, sizeof *f);
    f->path = xstrdup(path);
    f->n = n;
    f->file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    HEED_H5_CHECK(f->file, path);
    return f;
}

void explain_file_set_attr(explain_file *f, const char *name, const char *value) {
    hid_t type = H5Tcopy(H5T_C_S1);
    HEED_H5_CHECK(type, f->path);
    HEED_H5_CHECK(H5Tset_size(type, strlen(value) + 1), f->path);
    HEED_H5_CHECK(H5Tset_cset(type, H5T_CSET_UTF8), f->path);
    hid_t space = H5Screate(H5S_SCALAR);
    HEED_H5_CHECK(space, f->path);
    hid_t attr = H5Acreate2(f->file, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    HEED_H5_CHECK(attr, name);
    HEED_H5_CHECK(H5Awrite(attr, type, value), name);
    HEED_H5_CHECK(H5Aclose(attr), name);
    HEED_H5_CHECK(H5Sclose(space), f->path);
    HEED_H5_CHECK(H5Tclose(type), f->path);
}

static explain_dataset *dataset_for(explain_file *f, const char *name, const char *kind, hid_t type,
                                    int ndim, const int *dims) {
    for (int i = 0; i < f->count; i++) {
        explain_dataset *d = &f->sets[i];
        if (strcmp(d->name, name) != 0)
            continue;
        HEED_ASSERT(d->rank == ndim + 1);
        for (int k = 0; k < ndim; k++)
            HEED_ASSERT(d->dims[k + 1] == (hsize_t)dims[k]);
        return d;
    }
    HEED_ASSERT(f->count < EXPLAIN_MAX_DATASETS && ndim + 1 <= EXPLAIN_MAX_DIMS);
    explain_dataset *d = &f->sets[f->count++];
    snprintf(d->name, sizeof d->name, "%s", name);
    d->rank = ndim + 1;
    d->dims[0] = (hsize_t)f->n;
    for (int k = 0; k < ndim; k++)
        d->dims[k + 1] = (hsize_t)dims[k];
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    HEED_H5_CHECK(lcpl, name);
    HEED_H5_CHECK(H5Pset_create_intermediate_group(lcpl, 1), name);
    hid_t space = H5Screate_simple(d->rank, d->dims, NULL);
    HEED_H5_CHECK(space, name);
    d->id = H5Dcreate2(f->file, name, type, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    HEED_H5_CHECK(d->id, name);
    HEED_H5_CHECK(H5Sclose(space), name);
    HEED_H5_CHECK(H5Pclose(lcpl), name);
    if (kind) {
        hid_t str = H5Tcopy(H5T_C_S1);
        HEED_H5_CHECK(str, name);
        HEED_H5_CHECK(H5Tset_size(str, strlen(kind) + 1), name);
        hid_t scalar = H5Screate(H5S_SCALAR);
        HEED_H5_CHECK(scalar, name);
        hid_t attr = H5Acreate2(d->id, "kind", str, scalar, H5P_DEFAULT, H5P_DEFAULT);
        HEED_H5_CHECK(attr, name);
        HEED_H5_CHECK(H5Awrite(attr, str, kind), name);
        HEED_H5_CHECK(H5Aclose(attr), name);
        HEED_H5_CHECK(H5Sclose(scalar), name);
        HEED_H5_CHECK(H5Tclose(str), name);
    }
    return d;
}

static void write_rows(explain_dataset *d, hid_t type, int64_t row0, int rows, const void *data) {
    if (rows <= 0)
        return;
    HEED_ASSERT(row0 >= 0 && (hsize_t)(row0 + rows) <= d->dims[0]);
    hsize_t start[EXPLAIN_MAX_DIMS] = {0}, count[EXPLAIN_MAX_DIMS];
    memcpy(count, d->dims, sizeof count);
    start[0] = (hsize_t)row0;
    count[0] = (hsize_t)rows;
    hid_t file_space = H5Dget_space(d->id);
    HEED_H5_CHECK(file_space, d->name);
    HEED_H5_CHECK(H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, NULL, count, NULL),
                  d->name);
    hid_t mem_space = H5Screate_simple(d->rank, count, NULL);
    HEED_H5_CHECK(mem_space, d->name);
    HEED_H5_CHECK(H5Dwrite(d->id, type, mem_space, file_space, H5P_DEFAULT, data), d->name);
    HEED_H5_CHECK(H5Sclose(mem_space), d->name);
    HEED_H5_CHECK(H5Sclose(file_space), d->name);
}

void explain_file_write_rows(explain_file *f, const char *name, const char *kind, dtype dt,
                             int ndim, const int *dims, int64_t row0, int rows, const void *data) {
    hid_t type = dt == DTYPE_F32 ? H5T_NATIVE_FLOAT : H5T_NATIVE_INT32;
    write_rows(dataset_for(f, name, kind, type, ndim, dims), type, row0, rows, data);
}

void explain_file_write_ids(explain_file *f, int64_t row0, int rows, const int64_t *ids) {
    write_rows(dataset_for(f, "samples", NULL, H5T_NATIVE_INT64, 0, NULL), H5T_NATIVE_INT64, row0,
               rows, ids);
}

void explain_file_write_strings(explain_file *f, const char *name, char *const *strings, int n) {
    hid_t type = H5Tcopy(H5T_C_S1);
    HEED_H5_CHECK(type, name);
    HEED_H5_CHECK(H5Tset_size(type, H5T_VARIABLE), name);
    HEED_H5_CHECK(H5Tset_cset(type, H5T_CSET_UTF8), name);
    hsize_t dim = (hsize_t)n;
    hid_t space = H5Screate_simple(1, &dim, NULL);
    HEED_H5_CHECK(space, name);
    hid_t set = H5Dcreate2(f->file, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    HEED_H5_CHECK(set, name);
    HEED_H5_CHECK(H5Dwrite(set, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, strings), name);
    HEED_H5_CHECK(H5Dclose(set), name);
    HEED_H5_CHECK(H5Sclose(space), name);
    HEED_H5_CHECK(H5Tclose(type), name);
}

void explain_file_close(explain_file *f) {
    for (int i = 0; i < f->count; i++)
        HEED_H5_CHECK(H5Dclose(f->sets[i].id), f->sets[i].name);
    HEED_H5_CHECK(H5Fclose(f->file), f->path);
    free(f->path);
    free(f);
}
