/*
 * dataset_fixture.h - small dataset files written with the HDF5 C API, so
 * the dataset, loader and bad-input tests need no Python. Header-only
 * (static inline) because each test is one .c file.
 *
 * Every value is a formula of (split, row, element), so a test can check
 * what it read without keeping a copy:
 *     image (uint8)     fx_pixel(s, i, j)       = (7i + 3j + 11s) % 256
 *     image (float32)   fx_pixel(s, i, j) / 64  - 1
 *     label             fx_label(s, i, K)       = (3i + s) % K
 *     row length        fx_length(s, i, L)      = 1 + (5i + 2s) % L
 *     token j < length  fx_token(s, i, j, V)    = 5 + (i + 13j + s) % (V - 5); pad (0) after
 *     segment           j < length/2 ? 0 : 1    (0 on pads)
 *
 * Broken files are valid files changed afterwards with the fx_* mutators.
 */
#ifndef HEED_TESTS_DIST_DATASET_FIXTURE_H
#define HEED_TESTS_DIST_DATASET_FIXTURE_H

#include <dirent.h>
#include <hdf5.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct fx_spec {
    const char *kind; /* "image", "text", "image_text" */
    int n[3];         /* rows of train, val, test */
    int num_classes;
    int c, h, w;
    bool float_images, mean_std;
    int vocab, max_len;
    bool segments;
    bool chunked;   /* chunked + shuffle + gzip, chunks of 7 rows */
    bool userblock; /* a 512-byte user block before the HDF5 data */
} fx_spec;

static inline fx_spec fx_image_spec(void) {
    return (fx_spec){.kind = "image",
                     .n = {40, 9, 5},
                     .num_classes = 10,
                     .c = 2,
                     .h = 3,
                     .w = 4,
                     .mean_std = true};
}

static inline fx_spec fx_text_spec(void) {
    return (fx_spec){.kind = "text",
                     .n = {50, 9, 6},
                     .num_classes = 4,
                     .vocab = 50,
                     .max_len = 12,
                     .segments = true};
}

static inline int fx_pixel(int s, int64_t i, int64_t j) {
    return (int)((7 * i + 3 * j + 11 * s) % 256);
}
static inline int32_t fx_label(int s, int64_t i, int k) {
    return (int32_t)((3 * i + s) % k);
}
static inline int fx_length(int s, int64_t i, int l) {
    return 1 + (int)((5 * i + 2 * s) % l);
}
static inline int32_t fx_token(int s, int64_t i, int64_t j, int v) {
    return (int32_t)(5 + (i + 13 * j + s) % (v - 5));
}
static inline float fx_mean(int c) {
    return 0.25f + 0.125f * (float)c;
}
static inline float fx_std(int c) {
    return 0.5f + 0.25f * (float)c;
}

#define FX_OK(call)                                                                                \
    do {                                                                                           \
        if ((call) < 0) {                                                                          \
            fprintf(stderr, "%s:%d: fixture HDF5 call failed: %s\n", __FILE__, __LINE__, #call);   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static inline void fx_attr_int(hid_t obj, const char *name, int64_t v, hid_t type) {
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, type, s, H5P_DEFAULT, H5P_DEFAULT);
    FX_OK(a);
    FX_OK(H5Awrite(a, H5T_NATIVE_INT64, &v));
    H5Aclose(a);
    H5Sclose(s);
}

static inline hid_t fx_vlen_str_type(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

static inline void fx_attr_str(hid_t obj, const char *name, const char *v) {
    hid_t t = fx_vlen_str_type(), s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
    FX_OK(a);
    FX_OK(H5Awrite(a, t, &v));
    H5Aclose(a);
    H5Sclose(s);
    H5Tclose(t);
}

static inline void fx_strings(hid_t loc, const char *name, const char *prefix, int n) {
    hid_t t = fx_vlen_str_type();
    hsize_t dims[1] = {(hsize_t)n};
    hid_t s = H5Screate_simple(1, dims, NULL);
    hid_t d = H5Dcreate2(loc, name, t, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    FX_OK(d);
    char **v = malloc(sizeof(char *) * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++) {
        v[i] = malloc(32);
        snprintf(v[i], 32, "%s%d", prefix, i);
    }
    FX_OK(H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, v));
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
    H5Dclose(d);
    H5Sclose(s);
    H5Tclose(t);
}

/* Creates dataset `name` under loc and writes buf (memory type mtype). */
static inline hid_t fx_dataset(hid_t loc, const char *name, hid_t ftype, hid_t mtype, int nd,
                               const hsize_t *dims, bool chunked, const void *buf) {
    hid_t s = H5Screate_simple(nd, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (chunked && dims[0] > 0) {
        hsize_t cd[4];
        for (int i = 0; i < nd; i++)
            cd[i] = dims[i] ? dims[i] : 1;
        cd[0] = dims[0] < 7 ? dims[0] : 7;
        FX_OK(H5Pset_chunk(dcpl, nd, cd));
        FX_OK(H5Pset_shuffle(dcpl));
        FX_OK(H5Pset_deflate(dcpl, 4));
    }
    hid_t d = H5Dcreate2(loc, name, ftype, s, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    FX_OK(d);
    if (buf)
        FX_OK(H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf));
    H5Pclose(dcpl);
    H5Sclose(s);
    return d;
}

/* Writes a valid format-v1 file. */
static inline void fx_write(const char *path, const fx_spec *sp) {
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    if (sp->userblock)
        FX_OK(H5Pset_userblock(fcpl, 512));
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, fcpl, H5P_DEFAULT);
    FX_OK(f);
    H5Pclose(fcpl);
    bool images = strcmp(sp->kind, "text") != 0, text = strcmp(sp->kind, "image") != 0;
    fx_attr_int(f, "format_version", 1, H5T_STD_I32LE);
    fx_attr_str(f, "kind", sp->kind);
    fx_attr_str(f, "name", "fixture");
    fx_attr_int(f, "num_classes", sp->num_classes, H5T_STD_I64LE); /* what h5py writes for 10 */
    fx_strings(f, "classes", "class", sp->num_classes);
    if (text) {
        fx_strings(f, "vocab", "tok", sp->vocab);
        fx_attr_int(f, "vocab_size", sp->vocab, H5T_STD_I32LE);
        const char *ids[5] = {"pad_id", "unk_id", "cls_id", "sep_id", "mask_id"};
        for (int i = 0; i < 5; i++)
            fx_attr_int(f, ids[i], i, H5T_STD_I32LE);
        fx_attr_int(f, "max_len", sp->max_len, H5T_STD_I32LE);
    }
    const char *names[3] = {"train", "val", "test"};
    for (int s = 0; s < 3; s++) {
        hid_t g = H5Gcreate2(f, names[s], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        FX_OK(g);
        int64_t n = sp->n[s];
        if (images) {
            int64_t per = (int64_t)sp->c * sp->h * sp->w;
            hsize_t dims[4] = {(hsize_t)n, (hsize_t)sp->c, (hsize_t)sp->h, (hsize_t)sp->w};
            hid_t d;
            if (sp->float_images) {
                float *v = malloc(sizeof(float) * (size_t)(n * per + 1));
                for (int64_t i = 0; i < n; i++)
                    for (int64_t j = 0; j < per; j++)
                        v[i * per + j] = (float)fx_pixel(s, i, j) / 64.0f - 1.0f;
                d = fx_dataset(g, "images", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 4, dims, sp->chunked,
                               v);
                free(v);
            } else {
                unsigned char *v = malloc((size_t)(n * per + 1));
                for (int64_t i = 0; i < n; i++)
                    for (int64_t j = 0; j < per; j++)
                        v[i * per + j] = (unsigned char)fx_pixel(s, i, j);
                d = fx_dataset(g, "images", H5T_STD_U8LE, H5T_NATIVE_UINT8, 4, dims, sp->chunked,
                               v);
                free(v);
            }
            if (sp->mean_std) {
                float m[16], sd[16];
                for (int c = 0; c < sp->c; c++) {
                    m[c] = fx_mean(c);
                    sd[c] = fx_std(c);
                }
                hsize_t cd[1] = {(hsize_t)sp->c};
                hid_t as = H5Screate_simple(1, cd, NULL);
                hid_t a = H5Acreate2(d, "mean", H5T_IEEE_F32LE, as, H5P_DEFAULT, H5P_DEFAULT);
                FX_OK(H5Awrite(a, H5T_NATIVE_FLOAT, m));
                H5Aclose(a);
                /* std as float64, as numpy would write it */
                double sd64[16];
                for (int c = 0; c < sp->c; c++)
                    sd64[c] = sd[c];
                a = H5Acreate2(d, "std", H5T_IEEE_F64LE, as, H5P_DEFAULT, H5P_DEFAULT);
                FX_OK(H5Awrite(a, H5T_NATIVE_DOUBLE, sd64));
                H5Aclose(a);
                H5Sclose(as);
            }
            H5Dclose(d);
        }
        if (text) {
            int l = sp->max_len;
            int32_t *tok = calloc((size_t)(n * l + 1), sizeof(int32_t));
            int32_t *seg = calloc((size_t)(n * l + 1), sizeof(int32_t));
            for (int64_t i = 0; i < n; i++) {
                int len = fx_length(s, i, l);
                for (int j = 0; j < len; j++) {
                    tok[i * l + j] = fx_token(s, i, j, sp->vocab);
                    seg[i * l + j] = j < len / 2 ? 0 : 1;
                }
            }
            hsize_t dims[2] = {(hsize_t)n, (hsize_t)l};
            H5Dclose(fx_dataset(g, "tokens", H5T_STD_I32LE, H5T_NATIVE_INT32, 2, dims, sp->chunked,
                                tok));
            if (sp->segments)
                H5Dclose(fx_dataset(g, "segments", H5T_STD_I32LE, H5T_NATIVE_INT32, 2, dims,
                                    sp->chunked, seg));
            free(tok);
            free(seg);
        }
        int32_t *lab = malloc(sizeof(int32_t) * (size_t)(n + 1));
        for (int64_t i = 0; i < n; i++)
            lab[i] = fx_label(s, i, sp->num_classes);
        hsize_t dims[1] = {(hsize_t)n};
        H5Dclose(
            fx_dataset(g, "labels", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, dims, sp->chunked, lab));
        free(lab);
        H5Gclose(g);
    }
    FX_OK(H5Fclose(f));
}

/* ---- mutators: open read-write, change one thing, close ---------------- */

static inline hid_t fx_open_rw(const char *path) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    FX_OK(f);
    return f;
}

static inline void fx_delete(const char *path, const char *obj) {
    hid_t f = fx_open_rw(path);
    FX_OK(H5Ldelete(f, obj, H5P_DEFAULT));
    FX_OK(H5Fclose(f));
}

/* Replaces `obj` by a zero-filled dataset of file type `ftype` and shape. */
static inline void fx_replace(const char *path, const char *obj, hid_t ftype, int nd,
                              const hsize_t *dims) {
    hid_t f = fx_open_rw(path);
    if (H5Lexists(f, obj, H5P_DEFAULT) > 0)
        FX_OK(H5Ldelete(f, obj, H5P_DEFAULT));
    H5Dclose(fx_dataset(f, obj, ftype, ftype, nd, dims, false, NULL));
    FX_OK(H5Fclose(f));
}

/* Writes one element `index` (row-major, flattened) of a dataset from *v
 * of memory type mtype. */
static inline void fx_set_element(const char *path, const char *obj, hsize_t index, hid_t mtype,
                                  const void *v) {
    hid_t f = fx_open_rw(path);
    hid_t d = H5Dopen2(f, obj, H5P_DEFAULT);
    FX_OK(d);
    hid_t s = H5Dget_space(d);
    int nd = H5Sget_simple_extent_ndims(s);
    hsize_t dims[4], coord[4];
    H5Sget_simple_extent_dims(s, dims, NULL);
    hsize_t rest = index;
    for (int k = nd - 1; k >= 0; k--) {
        coord[k] = rest % dims[k];
        rest /= dims[k];
    }
    FX_OK(H5Sselect_elements(s, H5S_SELECT_SET, 1, coord));
    hsize_t one = 1;
    hid_t ms = H5Screate_simple(1, &one, NULL);
    FX_OK(H5Dwrite(d, mtype, ms, s, H5P_DEFAULT, v));
    H5Sclose(ms);
    H5Sclose(s);
    H5Dclose(d);
    FX_OK(H5Fclose(f));
}

/* Sets element `index` (row-major, flattened) of an integer dataset. */
static inline void fx_set_int(const char *path, const char *obj, hsize_t index, int64_t v) {
    fx_set_element(path, obj, index, H5T_NATIVE_INT64, &v);
}

static inline void fx_set_float(const char *path, const char *obj, hsize_t index, float v) {
    fx_set_element(path, obj, index, H5T_NATIVE_FLOAT, &v);
}

/* Sets (creating or replacing) an integer attribute of `obj` ("/" = root);
 * type e.g. H5T_STD_I32LE. */
static inline void fx_set_attr_int(const char *path, const char *obj, const char *name, int64_t v,
                                   hid_t type) {
    hid_t f = fx_open_rw(path);
    hid_t o = H5Oopen(f, obj, H5P_DEFAULT);
    FX_OK(o);
    if (H5Aexists(o, name) > 0)
        FX_OK(H5Adelete(o, name));
    fx_attr_int(o, name, v, type);
    H5Oclose(o);
    FX_OK(H5Fclose(f));
}

static inline void fx_set_attr_str(const char *path, const char *obj, const char *name,
                                   const char *v) {
    hid_t f = fx_open_rw(path);
    hid_t o = H5Oopen(f, obj, H5P_DEFAULT);
    FX_OK(o);
    if (H5Aexists(o, name) > 0)
        FX_OK(H5Adelete(o, name));
    fx_attr_str(o, name, v);
    H5Oclose(o);
    FX_OK(H5Fclose(f));
}

static inline void fx_delete_attr(const char *path, const char *obj, const char *name) {
    hid_t f = fx_open_rw(path);
    hid_t o = H5Oopen(f, obj, H5P_DEFAULT);
    FX_OK(o);
    FX_OK(H5Adelete(o, name));
    H5Oclose(o);
    FX_OK(H5Fclose(f));
}

static inline void fx_set_attr_floats(const char *path, const char *obj, const char *name, int n,
                                      const float *v) {
    hid_t f = fx_open_rw(path);
    hid_t o = H5Oopen(f, obj, H5P_DEFAULT);
    FX_OK(o);
    if (H5Aexists(o, name) > 0)
        FX_OK(H5Adelete(o, name));
    hsize_t d[1] = {(hsize_t)n};
    hid_t s = H5Screate_simple(1, d, NULL);
    hid_t a = H5Acreate2(o, name, H5T_IEEE_F32LE, s, H5P_DEFAULT, H5P_DEFAULT);
    FX_OK(H5Awrite(a, H5T_NATIVE_FLOAT, v));
    H5Aclose(a);
    H5Sclose(s);
    H5Oclose(o);
    FX_OK(H5Fclose(f));
}

/* ---- temporary directories --------------------------------------------- */

/* A fresh directory under $TMPDIR (or /tmp) into dir[0..len). */
static inline void fx_tmpdir(char *dir, size_t len) {
    const char *base = getenv("TMPDIR");
    snprintf(dir, len, "%s/heed_data_XXXXXX", base && base[0] ? base : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        abort();
    }
}

/* Removes the files of a flat directory, then the directory. */
static inline void fx_rmtree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char p[4096];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        remove(p);
    }
    closedir(d);
    rmdir(dir);
}

static inline void fx_path(char *out, size_t len, const char *dir, const char *file) {
    snprintf(out, len, "%s/%s", dir, file);
}

#endif
