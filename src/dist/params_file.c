/*
 * params_file.c - the params-only HDF5 file (params_file.h), written and
 * read serially with HDF5's default (POSIX) driver.
 */
#include "dist/params_file.h"

#include "core/check.h"
#include "dist/checkpoint.h"
#include "dist/checkpoint_h5.h"

#include <errno.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Creates /params/<name> of shape dims and writes x with its checksum. */
static bool write_tensor(hid_t g, const char *name, int nd, const hsize_t *dims, const float *x,
                         int64_t n) {
    hid_t s = H5Screate_simple(nd, dims, NULL);
    if (s < 0)
        return false;
    hid_t d = H5Dcreate2(g, name, H5T_IEEE_F32LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    bool ok = d >= 0 && H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) >= 0;
    if (ok) {
        uint64_t sum = ckpt_checksum(x, 0, n);
        hid_t as = H5Screate(H5S_SCALAR);
        hid_t a =
            as >= 0 ? H5Acreate2(d, "checksum", H5T_STD_U64LE, as, H5P_DEFAULT, H5P_DEFAULT) : -1;
        ok = a >= 0 && H5Awrite(a, H5T_NATIVE_UINT64, &sum) >= 0;
        if (a >= 0)
            H5Aclose(a);
        if (as >= 0)
            H5Sclose(as);
    }
    if (d >= 0)
        ok &= H5Dclose(d) >= 0;
    H5Sclose(s);
    return ok;
}

static bool write_str_attr(hid_t obj, const char *name, const char *v) {
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0)
        return false;
    hid_t s = H5Screate(H5S_SCALAR);
    bool ok = s >= 0 && H5Tset_size(t, strlen(v) + 1) >= 0 &&
              H5Tset_strpad(t, H5T_STR_NULLTERM) >= 0 && H5Tset_cset(t, H5T_CSET_UTF8) >= 0;
    hid_t a = ok ? H5Acreate2(obj, name, t, s, H5P_DEFAULT, H5P_DEFAULT) : -1;
    ok = a >= 0 && H5Awrite(a, t, v) >= 0;
    if (a >= 0)
        H5Aclose(a);
    if (s >= 0)
        H5Sclose(s);
    H5Tclose(t);
    return ok;
}

/* Creates tmp with a /params group and the root attributes. */
static hid_t create_file(const char *tmp, const char *model, hid_t *group) {
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0)
        return -1;
    *group = H5Gcreate2(f, "params", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (*group < 0 || !write_str_attr(f, "model", model) ||
        !write_str_attr(f, "heed_version", HEED_VERSION)) {
        if (*group >= 0)
            H5Gclose(*group);
        H5Fclose(f);
        return -1;
    }
    return f;
}

/* Closes and renames tmp to path; false with err. */
static bool finish_file(hid_t f, hid_t g, const char *tmp, const char *path, bool ok, char *err,
                        size_t errlen) {
    if (g >= 0 && H5Gclose(g) < 0)
        ok = false;
    if (f >= 0 && H5Fclose(f) < 0)
        ok = false;
    if (!ok) {
        if (!err[0])
            snprintf(err, errlen, "%s: writing the parameters failed (disk full?)", tmp);
        remove(tmp);
        return false;
    }
    if (rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
        remove(tmp);
        return false;
    }
    return true;
}

bool params_file_write(const char *path, const char *model, const params *ps, char *err,
                       size_t errlen) {
    char tmp[CKPT_PATH + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    err[0] = 0;
    ckpt_h5_errors e = ckpt_h5_errors_off();
    hid_t g = -1;
    hid_t f = create_file(tmp, model, &g);
    bool ok = f >= 0;
    if (!ok)
        snprintf(err, errlen, "cannot create '%s' (directory missing or not writable?)", tmp);
    for (int i = 0; ok && i < ps->count; i++) {
        const tensor *t = ps->tensors[i];
        hsize_t dims[4];
        for (int k = 0; k < t->ndim; k++)
            dims[k] = (hsize_t)t->shape[k];
        ok = write_tensor(g, t->name, t->ndim, dims, ps->data + ps->offset[i], t->numel);
    }
    ok = finish_file(f, g, tmp, path, ok, err, errlen);
    ckpt_h5_errors_restore(e);
    return ok;
}

/* Reads dataset `name` of g whole into a malloc'd buffer after checking that
 * it is float and has the shape `want` (NULL: any shape, returned in dims). */
static float *read_tensor(hid_t g, const char *path, const char *name, const tensor *want,
                          int *nd_out, hsize_t *dims, char *err, size_t errlen) {
    float *x = NULL;
    hid_t d = H5Dopen2(g, name, H5P_DEFAULT), s = -1, ty = -1;
    CKPT_NEED(d >= 0, "%s: cannot open dataset /params/%s", path, name);
    ty = H5Dget_type(d);
    CKPT_NEED(ty >= 0 && H5Tget_class(ty) == H5T_FLOAT, "%s: /params/%s is not a float dataset",
              path, name);
    s = H5Dget_space(d);
    int nd = s >= 0 ? H5Sget_simple_extent_ndims(s) : -1;
    CKPT_NEED(nd >= 1 && nd <= 4 && H5Sget_simple_extent_dims(s, dims, NULL) == nd,
              "%s: /params/%s must have 1 to 4 dimensions", path, name);
    if (want) {
        bool same = nd == want->ndim;
        for (int k = 0; same && k < nd; k++)
            same = dims[k] == (hsize_t)want->shape[k];
        char w[64] = "", got[64] = "";
        for (int k = 0; k < want->ndim; k++)
            snprintf(w + strlen(w), sizeof w - strlen(w), "%s%d", k ? "," : "", want->shape[k]);
        for (int k = 0; k < nd; k++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%llu", k ? "," : "",
                     (unsigned long long)dims[k]);
        CKPT_NEED(same, "%s: /params/%s has shape [%s], the model expects [%s]", path, name, got,
                  w);
    }
    int64_t n = 1;
    for (int k = 0; k < nd; k++)
        n *= (int64_t)dims[k];
    x = xmalloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    CKPT_NEED(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) >= 0,
              "%s: reading /params/%s failed (truncated file?)", path, name);
    uint64_t sum;
    if (H5Aexists(d, "checksum") > 0) {
        CKPT_NEED(ckpt_attr_read_u64(d, "checksum", &sum) && sum == ckpt_checksum(x, 0, n),
                  "%s: checksum mismatch in /params/%s: the file is corrupt", path, name);
    }
    *nd_out = nd;
    H5Sclose(s);
    H5Tclose(ty);
    H5Dclose(d);
    return x;
done:
    free(x);
    if (s >= 0)
        H5Sclose(s);
    if (ty >= 0)
        H5Tclose(ty);
    if (d >= 0)
        H5Dclose(d);
    return NULL;
}

typedef struct name_list {
    int n, cap;
    char **names;
} name_list;

static herr_t collect_name(hid_t g, const char *name, const H5L_info_t *info, void *user) {
    (void)g;
    (void)info;
    name_list *l = user;
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->names = xrealloc(l->names, sizeof(char *) * (size_t)l->cap);
    }
    l->names[l->n++] = xstrdup(name);
    return 0;
}

static void name_list_free(name_list *l) {
    for (int i = 0; i < l->n; i++)
        free(l->names[i]);
    free(l->names);
}

/* Opens path and its /params group; -1 with err. */
static hid_t open_params(const char *path, hid_t *g, char *err, size_t errlen) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        snprintf(err, errlen, "%s: cannot open as HDF5 (missing, truncated or not HDF5)", path);
        return -1;
    }
    *g = H5Gopen2(f, "params", H5P_DEFAULT);
    if (*g < 0) {
        snprintf(err, errlen, "%s: no group /params (docs/checkpoint-format.md)", path);
        H5Fclose(f);
        return -1;
    }
    return f;
}

bool params_file_read(const char *path, params *ps, bool require_all, params_file_report *rep,
                      char *err, size_t errlen) {
    params_file_report local;
    if (!rep)
        rep = &local;
    memset(rep, 0, sizeof *rep);
    ckpt_h5_errors e = ckpt_h5_errors_off();
    bool ok = false;
    hid_t g = -1;
    name_list names = {0};
    hid_t f = open_params(path, &g, err, errlen);
    if (f < 0)
        goto done;
    hsize_t idx = 0;
    CKPT_NEED(H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_name, &names) >= 0,
              "%s: cannot list /params", path);
    for (int i = 0; i < ps->count; i++) {
        const tensor *t = ps->tensors[i];
        if (H5Lexists(g, t->name, H5P_DEFAULT) <= 0) {
            if (!rep->missing++)
                snprintf(rep->first_missing, sizeof rep->first_missing, "%s", t->name);
            continue;
        }
        int nd;
        hsize_t dims[4];
        float *x = read_tensor(g, path, t->name, t, &nd, dims, err, errlen);
        if (!x)
            goto done;
        memcpy(ps->data + ps->offset[i], x, sizeof(float) * (size_t)t->numel);
        free(x);
        rep->loaded++;
    }
    for (int i = 0; i < names.n; i++)
        if (!params_find(ps, names.names[i]) && !rep->unused++)
            snprintf(rep->first_unused, sizeof rep->first_unused, "%s", names.names[i]);
    CKPT_NEED(!require_all || rep->missing == 0,
              "%s: %d parameter%s of the model missing from the file, first '%s'", path,
              rep->missing, rep->missing == 1 ? " is" : "s are", rep->first_missing);
    ok = true;
done:
    name_list_free(&names);
    if (g >= 0)
        H5Gclose(g);
    if (f >= 0)
        H5Fclose(f);
    ckpt_h5_errors_restore(e);
    return ok;
}

bool params_file_export(const char *src, const char *dst, char *err, size_t errlen) {
    char tmp[CKPT_PATH + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", dst);
    err[0] = 0;
    ckpt_h5_errors e = ckpt_h5_errors_off();
    bool ok = false;
    hid_t g = -1, og = -1, of = -1;
    name_list names = {0};
    char *model = NULL;
    hid_t f = open_params(src, &g, err, errlen);
    if (f < 0)
        goto done;
    model = ckpt_attr_read_str(f, "model");
    CKPT_NEED(model, "%s: root attribute 'model' is missing", src);
    hsize_t idx = 0;
    CKPT_NEED(H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_name, &names) >= 0,
              "%s: cannot list /params", src);
    CKPT_NEED(names.n > 0, "%s: /params is empty", src);
    of = create_file(tmp, model, &og);
    CKPT_NEED(of >= 0, "cannot create '%s' (directory missing or not writable?)", tmp);
    ok = true;
    for (int i = 0; ok && i < names.n; i++) {
        int nd;
        hsize_t dims[4];
        float *x = read_tensor(g, src, names.names[i], NULL, &nd, dims, err, errlen);
        if (!x) {
            ok = false;
            break;
        }
        int64_t n = 1;
        for (int k = 0; k < nd; k++)
            n *= (int64_t)dims[k];
        ok = write_tensor(og, names.names[i], nd, dims, x, n);
        free(x);
    }
    ok = finish_file(of, og, tmp, dst, ok, err, errlen);
    of = og = -1;
done:
    if (of >= 0) {
        if (og >= 0)
            H5Gclose(og);
        H5Fclose(of);
        remove(tmp);
    }
    free(model);
    name_list_free(&names);
    if (g >= 0)
        H5Gclose(g);
    if (f >= 0)
        H5Fclose(f);
    ckpt_h5_errors_restore(e);
    return ok;
}
