/*
 * dataset_check.c - the structure checks of the dataset validator (see
 * dataset_check.h): attributes, classes, vocabulary, each split's datasets,
 * their shapes and dtypes; values are scanned by dataset_scan.c.
 */
#include "dist/dataset_check.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/check.h"
#include "dist/bad_input.h"
#include "dist/check_dist.h"
#include "dist/dataset_h5.h"
#include "dist/sampler.h"

/* ---- problems ----------------------------------------------------------- */

/* Adds "PATH: OBJ: WHAT" (or "PATH: WHAT" when obj is NULL). */
void checker_problem_add(problems *pr, const char *obj, const char *fmt, ...) {
    char what[1024], line[1600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (obj)
        snprintf(line, sizeof line, "%s: %s: %s", pr->path, obj, what);
    else
        snprintf(line, sizeof line, "%s: %s", pr->path, what);
    if (pr->count == pr->cap) {
        pr->cap = pr->cap ? 2 * pr->cap : 16;
        pr->msg = xrealloc(pr->msg, sizeof(char *) * (size_t)pr->cap);
    }
    pr->msg[pr->count++] = xstrdup(line);
}

void checker_problems_free(problems *pr) {
    for (int i = 0; i < pr->count; i++)
        free(pr->msg[i]);
    free(pr->msg);
    pr->msg = NULL;
    pr->count = pr->cap = 0;
}

/* ---- what inspect prints about each HDF5 dataset ------------------------ */

static void type_name(hid_t t, char *buf, size_t len) {
    size_t bits = H5Tget_size(t) * 8;
    switch (H5Tget_class(t)) {
    case H5T_INTEGER:
        snprintf(buf, len, "%sint%zu", H5Tget_sign(t) == H5T_SGN_NONE ? "u" : "", bits);
        break;
    case H5T_FLOAT:
        snprintf(buf, len, "float%zu", bits);
        break;
    case H5T_STRING:
        if (H5Tis_variable_str(t) > 0)
            snprintf(buf, len, "string");
        else
            snprintf(buf, len, "string of %zu bytes", bits / 8);
        break;
    case H5T_COMPOUND:
        snprintf(buf, len, "compound");
        break;
    case H5T_ENUM:
        snprintf(buf, len, "enum (bool?)");
        break;
    case H5T_ARRAY:
        snprintf(buf, len, "array type");
        break;
    case H5T_VLEN:
        snprintf(buf, len, "variable-length sequence");
        break;
    case H5T_OPAQUE:
        snprintf(buf, len, "opaque");
        break;
    case H5T_REFERENCE:
        snprintf(buf, len, "reference");
        break;
    case H5T_BITFIELD:
        snprintf(buf, len, "bitfield");
        break;
    default:
        snprintf(buf, len, "unknown type");
        break;
    }
}

void checker_dims_text(int ndim, const hsize_t *dims, char *buf, size_t len) {
    size_t at = 0;
    at += (size_t)snprintf(buf + at, len - at, "[");
    for (int i = 0; i < ndim && at < len; i++)
        at += (size_t)snprintf(buf + at, len - at, "%s%llu", i ? ", " : "",
                               (unsigned long long)dims[i]);
    if (at < len)
        snprintf(buf + at, len - at, "]");
}

/* Layout and filters; a problem if a filter cannot be decoded here. */
static void storage_facts(checker *c, const char *obj, hid_t d, member_facts *f) {
    hid_t plist = H5Dget_create_plist(d);
    if (plist < 0) {
        snprintf(f->storage, sizeof f->storage, "?");
        return;
    }
    H5D_layout_t layout = H5Pget_layout(plist);
    size_t at = 0, len = sizeof f->storage;
    if (layout == H5D_CHUNKED) {
        hsize_t cd[8];
        int nd = H5Pget_chunk(plist, 8, cd);
        char dt[64];
        checker_dims_text(nd > 0 ? nd : 0, cd, dt, sizeof dt);
        at += (size_t)snprintf(f->storage, len, "chunked %s", dt);
    } else {
        at += (size_t)snprintf(f->storage, len, "%s",
                               layout == H5D_COMPACT ? "compact" : "contiguous");
    }
    int nf = H5Pget_nfilters(plist);
    for (int i = 0; i < nf; i++) {
        unsigned flags = 0, config = 0;
        size_t nelem = 0;
        char name[64] = "";
        H5Z_filter_t id =
            H5Pget_filter2(plist, (unsigned)i, &flags, &nelem, NULL, sizeof name, name, &config);
        const char *shown = id == H5Z_FILTER_DEFLATE      ? "gzip"
                            : id == H5Z_FILTER_SHUFFLE    ? "shuffle"
                            : id == H5Z_FILTER_FLETCHER32 ? "fletcher32"
                            : id == H5Z_FILTER_SZIP       ? "szip"
                            : id == 32000                 ? "lzf"
                                                          : name;
        if (at < len)
            at += (size_t)snprintf(f->storage + at, len - at, " %s", shown);
        if (id >= 0 && H5Zfilter_avail(id) <= 0)
            checker_problem_add(&c->pr, obj,
                                "compressed with filter %s (id %d), which this HDF5 library cannot "
                                "decode; rewrite the file with gzip or no compression",
                                shown[0] ? shown : "?", (int)id);
    }
    H5Pclose(plist);
}

/* ---- attributes --------------------------------------------------------- */

/* Opens attribute `name` of `obj` as a scalar (or one-element) value of
 * class `want`; a problem and -1 when missing or of another kind. */
static hid_t attr_open(checker *c, hid_t obj, const char *where, const char *name, H5T_class_t want,
                       const char *expect, bool required) {
    if (H5Aexists(obj, name) <= 0) {
        if (required)
            checker_problem_add(&c->pr, where, "missing attribute %s (%s)", name, expect);
        return -1;
    }
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) {
        checker_problem_add(&c->pr, where, "attribute %s cannot be read", name);
        return -1;
    }
    hid_t t = H5Aget_type(a);
    hid_t s = H5Aget_space(a);
    char tn[48] = "?";
    if (t >= 0)
        type_name(t, tn, sizeof tn);
    bool ok = t >= 0 && H5Tget_class(t) == want;
    hssize_t np = s >= 0 ? H5Sget_simple_extent_npoints(s) : -1;
    if (!ok)
        checker_problem_add(&c->pr, where, "attribute %s: expected %s, found %s", name, expect, tn);
    else if (np != 1) {
        checker_problem_add(&c->pr, where,
                            "attribute %s: expected one value (%s), found %lld values", name,
                            expect, (long long)np);
        ok = false;
    }
    if (t >= 0)
        H5Tclose(t);
    if (s >= 0)
        H5Sclose(s);
    if (!ok) {
        H5Aclose(a);
        return -1;
    }
    return a;
}

/* An integer attribute that must fit in int32 and lie in [lo, hi]. */
static bool attr_int(checker *c, hid_t obj, const char *where, const char *name, int64_t lo,
                     int64_t hi, const char *expect, int *out) {
    hid_t a = attr_open(c, obj, where, name, H5T_INTEGER, expect, true);
    if (a < 0)
        return false;
    int64_t v = 0;
    herr_t rc = H5Aread(a, H5T_NATIVE_INT64, &v);
    H5Aclose(a);
    if (rc < 0) {
        checker_problem_add(&c->pr, where, "attribute %s cannot be read as an integer", name);
        return false;
    }
    if (v < lo || v > hi) {
        checker_problem_add(&c->pr, where, "attribute %s: expected %s, found %" PRId64, name,
                            expect, v);
        return false;
    }
    *out = (int)v;
    return true;
}

/* Reads one string (fixed or variable length) of attribute or dataset `id`
 * (is_attr) with `space` holding exactly `count` strings into out[]. */
static bool read_strings(hid_t id, bool is_attr, hid_t ftype, hsize_t count, char **out) {
    hid_t mt = H5Tcopy(H5T_C_S1);
    bool ok = false;
    if (mt < 0)
        return false;
    H5Tset_cset(mt, H5Tget_cset(ftype));
    if (H5Tis_variable_str(ftype) > 0) {
        char **tmp = xcalloc(count ? count : 1, sizeof(char *));
        H5Tset_size(mt, H5T_VARIABLE);
        herr_t rc =
            is_attr ? H5Aread(id, mt, tmp) : H5Dread(id, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, tmp);
        if (rc >= 0) {
            for (hsize_t i = 0; i < count; i++) {
                out[i] = xstrdup(tmp[i] ? tmp[i] : "");
                if (tmp[i])
                    H5free_memory(tmp[i]);
            }
            ok = true;
        }
        free(tmp);
    } else {
        size_t sz = H5Tget_size(ftype);
        char *tmp = xmalloc((sz + 1) * (count ? count : 1));
        H5Tset_size(mt, sz + 1);
        H5Tset_strpad(mt, H5T_STR_NULLTERM);
        herr_t rc =
            is_attr ? H5Aread(id, mt, tmp) : H5Dread(id, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, tmp);
        if (rc >= 0) {
            for (hsize_t i = 0; i < count; i++) {
                tmp[i * (sz + 1) + sz] = '\0';
                out[i] = xstrdup(tmp + i * (sz + 1));
            }
            ok = true;
        }
        free(tmp);
    }
    H5Tclose(mt);
    return ok;
}

static char *attr_string(checker *c, hid_t obj, const char *where, const char *name,
                         const char *expect) {
    hid_t a = attr_open(c, obj, where, name, H5T_STRING, expect, true);
    if (a < 0)
        return NULL;
    hid_t t = H5Aget_type(a);
    char *s = NULL;
    if (t < 0 || !read_strings(a, true, t, 1, &s))
        checker_problem_add(&c->pr, where, "attribute %s cannot be read as a string", name);
    if (t >= 0)
        H5Tclose(t);
    H5Aclose(a);
    return s;
}

/* Float attribute `name` of an images dataset: `n` values, or absent. */
static bool attr_floats(checker *c, hid_t obj, const char *where, const char *name, int n,
                        float *out) {
    hid_t a = -1;
    if (H5Aexists(obj, name) <= 0)
        return false;
    a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) {
        checker_problem_add(&c->pr, where, "attribute %s cannot be read", name);
        return false;
    }
    hid_t t = H5Aget_type(a), s = H5Aget_space(a);
    char tn[48] = "?";
    if (t >= 0)
        type_name(t, tn, sizeof tn);
    hssize_t np = s >= 0 ? H5Sget_simple_extent_npoints(s) : -1;
    bool ok = false;
    if (t < 0 || H5Tget_class(t) != H5T_FLOAT)
        checker_problem_add(&c->pr, where,
                            "attribute %s: expected float32 [%d] (one per channel), found %s", name,
                            n, tn);
    else if (np != n)
        checker_problem_add(&c->pr, where,
                            "attribute %s: expected %d values (one per channel), found %lld", name,
                            n, (long long)np);
    else if (H5Aread(a, H5T_NATIVE_FLOAT, out) < 0)
        checker_problem_add(&c->pr, where, "attribute %s cannot be read", name);
    else
        ok = true;
    if (t >= 0)
        H5Tclose(t);
    if (s >= 0)
        H5Sclose(s);
    H5Aclose(a);
    return ok;
}

/* ---- objects ------------------------------------------------------------ */

/* Opens object `name` of `loc` (shown as `where`) as a group (want_group)
 * or dataset; a problem and -1 when missing or of the other kind. */
static hid_t object_open(checker *c, hid_t loc, const char *name, const char *where,
                         bool want_group, bool required, const char *why_needed) {
    if (H5Lexists(loc, name, H5P_DEFAULT) <= 0) {
        if (required)
            checker_problem_add(&c->pr, where, "missing %s (%s)", want_group ? "group" : "dataset",
                                why_needed);
        return -1;
    }
    hid_t o = H5Oopen(loc, name, H5P_DEFAULT);
    if (o < 0) {
        checker_problem_add(&c->pr, where, "cannot be opened (a dangling link or a corrupt file?)");
        return -1;
    }
    H5I_type_t it = H5Iget_type(o);
    if (want_group ? it != H5I_GROUP : it != H5I_DATASET) {
        checker_problem_add(&c->pr, where, "expected a %s, found a %s",
                            want_group ? "group" : "dataset",
                            it == H5I_GROUP     ? "group"
                            : it == H5I_DATASET ? "dataset"
                                                : "named datatype");
        H5Oclose(o);
        return -1;
    }
    return o;
}

/* A 1-D string dataset of `expect_n` entries (-1: any) into *out. */
static char **strings_dataset(checker *c, const char *name, const char *where, int64_t expect_n,
                              const char *expect_what, int *n_out) {
    hid_t d = object_open(c, c->file, name, where, false, true, expect_what);
    if (d < 0)
        return NULL;
    hid_t t = H5Dget_type(d), s = H5Dget_space(d);
    char tn[48] = "?";
    if (t >= 0)
        type_name(t, tn, sizeof tn);
    int nd = s >= 0 ? H5Sget_simple_extent_ndims(s) : -1;
    hsize_t dims[8] = {0};
    if (nd > 0 && nd <= 8)
        H5Sget_simple_extent_dims(s, dims, NULL);
    char **out = NULL;
    if (t < 0 || H5Tget_class(t) != H5T_STRING) {
        checker_problem_add(&c->pr, where, "expected UTF-8 strings (%s), found %s", expect_what,
                            tn);
    } else if (nd != 1) {
        char dt[96];
        checker_dims_text(nd > 0 && nd <= 8 ? nd : 0, dims, dt, sizeof dt);
        checker_problem_add(&c->pr, where, "expected 1 dimension [%s], found %d %s", expect_what,
                            nd < 0 ? 0 : nd, dt);
    } else if (expect_n >= 0 && (int64_t)dims[0] != expect_n) {
        checker_problem_add(&c->pr, where, "expected %" PRId64 " entries (%s), found %llu",
                            expect_n, expect_what, (unsigned long long)dims[0]);
    } else if (dims[0] > INT32_MAX) {
        checker_problem_add(&c->pr, where, "%llu entries is too many", (unsigned long long)dims[0]);
    } else {
        out = xcalloc(dims[0] ? dims[0] : 1, sizeof(char *));
        if (read_strings(d, false, t, dims[0], out)) {
            *n_out = (int)dims[0];
        } else {
            checker_problem_add(&c->pr, where, "cannot be read as strings (corrupt file?)");
            free(out);
            out = NULL;
        }
    }
    if (t >= 0)
        H5Tclose(t);
    if (s >= 0)
        H5Sclose(s);
    H5Oclose(d);
    return out;
}

void checker_strings_free(char **s, int n) {
    if (!s)
        return;
    for (int i = 0; i < n; i++)
        free(s[i]);
    free(s);
}

/* Shape and dtype of a member dataset against what the format wants.
 * dtype_ok(t) decides the dtype; `want_ndim` the rank. Fills *f. */
typedef bool (*dtype_pred)(hid_t t);

static bool is_int32(hid_t t) {
    return H5Tget_class(t) == H5T_INTEGER && H5Tget_size(t) == 4 && H5Tget_sign(t) == H5T_SGN_2;
}

static bool is_image_dtype(hid_t t) {
    return (H5Tget_class(t) == H5T_INTEGER && H5Tget_size(t) == 1 &&
            H5Tget_sign(t) == H5T_SGN_NONE) ||
           (H5Tget_class(t) == H5T_FLOAT && H5Tget_size(t) == 4);
}

static bool member_check(checker *c, hid_t d, const char *where, int want_ndim,
                         const char *want_shape, dtype_pred pred, const char *want_dtype,
                         member_facts *f) {
    f->present = true;
    hid_t t = H5Dget_type(d), s = H5Dget_space(d);
    snprintf(f->dtype, sizeof f->dtype, "?");
    if (t >= 0)
        type_name(t, f->dtype, sizeof f->dtype);
    int nd =
        s >= 0 && H5Sget_simple_extent_type(s) == H5S_SIMPLE ? H5Sget_simple_extent_ndims(s) : 0;
    hsize_t dims[32] = {0};
    if (nd > 0 && nd <= 32)
        H5Sget_simple_extent_dims(s, dims, NULL);
    f->ndim = nd > 4 ? 4 : nd;
    memcpy(f->dims, dims, sizeof f->dims);
    storage_facts(c, where, d, f);
    bool ok = true;
    if (t < 0 || !pred(t)) {
        checker_problem_add(&c->pr, where, "expected dtype %s, found %s", want_dtype, f->dtype);
        ok = false;
    }
    if (nd != want_ndim) {
        char dt[160];
        checker_dims_text(nd > 0 && nd <= 32 ? nd : 0, dims, dt, sizeof dt);
        checker_problem_add(&c->pr, where, "expected %d dimension%s %s, found %d %s", want_ndim,
                            want_ndim == 1 ? "" : "s", want_shape, nd, dt);
        ok = false;
    }
    if (t >= 0)
        H5Tclose(t);
    if (s >= 0)
        H5Sclose(s);
    f->ok = ok;
    return ok;
}

/* ---- the walk ----------------------------------------------------------- */

static void check_images(checker *c, dataset_split s, hid_t d, const char *where, int *image_ref) {
    dataset *ds = c->ds;
    member_facts *f = &c->facts[s][DS_IMAGES];
    if (!member_check(c, d, where, 4, "[N, C, H, W]", is_image_dtype, "uint8 or float32", f))
        return;
    hid_t t = H5Dget_type(d);
    ds->splits[s].image_dtype =
        t >= 0 && H5Tget_class(t) == H5T_FLOAT ? DATASET_DTYPE_FLOAT32 : DATASET_DTYPE_UINT8;
    if (t >= 0)
        H5Tclose(t);
    const hsize_t *dm = f->dims;
    if (dm[1] == 0 || dm[2] == 0 || dm[3] == 0 || dm[1] > 65536 || dm[2] > 65536 || dm[3] > 65536) {
        char dt[96];
        checker_dims_text(4, dm, dt, sizeof dt);
        checker_problem_add(&c->pr, where, "expected C, H and W in [1, 65536], found %s", dt);
        f->ok = false;
        return;
    }
    if (*image_ref < 0) {
        *image_ref = (int)s;
        ds->channels = (int)dm[1];
        ds->height = (int)dm[2];
        ds->width = (int)dm[3];
    } else if ((int)dm[1] != ds->channels || (int)dm[2] != ds->height || (int)dm[3] != ds->width) {
        checker_problem_add(
            &c->pr, where,
            "expected [N, %d, %d, %d] like /%s/images, found [%llu, %llu, %llu, %llu]",
            ds->channels, ds->height, ds->width, dataset_split_name((dataset_split)*image_ref),
            (unsigned long long)dm[0], (unsigned long long)dm[1], (unsigned long long)dm[2],
            (unsigned long long)dm[3]);
        f->ok = false;
        return;
    }
    int ch = (int)dm[1];
    dataset_split_info *si = &ds->splits[s];
    si->mean = xcalloc((size_t)ch, sizeof(float));
    si->std = xmalloc(sizeof(float) * (size_t)ch);
    for (int i = 0; i < ch; i++)
        si->std[i] = 1.0f;
    float *tmp = xmalloc(sizeof(float) * (size_t)ch);
    if (attr_floats(c, d, where, "mean", ch, tmp)) {
        for (int i = 0; i < ch; i++) {
            if (!isfinite(tmp[i]))
                checker_problem_add(&c->pr, where,
                                    "attribute mean: value %g for channel %d is not finite", tmp[i],
                                    i);
            si->mean[i] = tmp[i];
        }
    }
    if (attr_floats(c, d, where, "std", ch, tmp)) {
        for (int i = 0; i < ch; i++) {
            if (!(tmp[i] > 0.0f) || !isfinite(tmp[i])) {
                checker_problem_add(
                    &c->pr, where,
                    "attribute std: value %g for channel %d must be positive and finite", tmp[i],
                    i);
                continue;
            }
            si->std[i] = tmp[i];
        }
    }
    free(tmp);
}

static void check_split(checker *c, dataset_split s, int *image_ref) {
    dataset *ds = c->ds;
    const char *sn = dataset_split_name(s);
    char gwhere[16], where[DS_COUNT][48];
    snprintf(gwhere, sizeof gwhere, "/%s", sn);
    for (int m = 0; m < DS_COUNT; m++)
        snprintf(where[m], sizeof where[m], "/%s/%s", sn, dataset_member_names[m]);
    hid_t g = object_open(c, c->file, sn, gwhere, true, true,
                          "a file needs the splits train, val and test");
    if (g < 0)
        return;
    c->split_present[s] = true;
    member_facts *f = c->facts[s];
    hid_t d[DS_COUNT] = {-1, -1, -1, -1};

    if (ds->has_images) {
        d[DS_IMAGES] = object_open(c, g, "images", where[DS_IMAGES], false, true,
                                   "uint8 or float32 [N, C, H, W] images");
        if (d[DS_IMAGES] >= 0)
            check_images(c, s, d[DS_IMAGES], where[DS_IMAGES], image_ref);
    }
    if (ds->has_tokens) {
        d[DS_TOKENS] = object_open(c, g, "tokens", where[DS_TOKENS], false, true,
                                   "int32 [N, max_len] token ids");
        if (d[DS_TOKENS] >= 0 && member_check(c, d[DS_TOKENS], where[DS_TOKENS], 2, "[N, max_len]",
                                              is_int32, "int32", &f[DS_TOKENS])) {
            if (c->vocab_known && ds->max_len > 0 && f[DS_TOKENS].dims[1] != (hsize_t)ds->max_len) {
                checker_problem_add(&c->pr, where[DS_TOKENS],
                                    "expected [N, %d] (max_len), found [%llu, %llu]", ds->max_len,
                                    (unsigned long long)f[DS_TOKENS].dims[0],
                                    (unsigned long long)f[DS_TOKENS].dims[1]);
                f[DS_TOKENS].ok = false;
            } else if (f[DS_TOKENS].dims[1] == 0) {
                checker_problem_add(&c->pr, where[DS_TOKENS],
                                    "expected max_len >= 1 columns, found 0");
                f[DS_TOKENS].ok = false;
            }
        }
        d[DS_SEGMENTS] = object_open(c, g, "segments", where[DS_SEGMENTS], false, false, "");
        if (d[DS_SEGMENTS] >= 0 &&
            member_check(c, d[DS_SEGMENTS], where[DS_SEGMENTS], 2, "[N, max_len] like tokens",
                         is_int32, "int32", &f[DS_SEGMENTS]) &&
            f[DS_TOKENS].ok && f[DS_SEGMENTS].dims[1] != f[DS_TOKENS].dims[1]) {
            checker_problem_add(&c->pr, where[DS_SEGMENTS],
                                "expected [N, %llu] like /%s/tokens, found [%llu, %llu]",
                                (unsigned long long)f[DS_TOKENS].dims[1], sn,
                                (unsigned long long)f[DS_SEGMENTS].dims[0],
                                (unsigned long long)f[DS_SEGMENTS].dims[1]);
            f[DS_SEGMENTS].ok = false;
        }
        ds->splits[s].has_segments = d[DS_SEGMENTS] >= 0 && f[DS_SEGMENTS].ok;
    }
    d[DS_LABELS] =
        object_open(c, g, "labels", where[DS_LABELS], false, true, "int32 [N] class labels");
    if (d[DS_LABELS] >= 0)
        member_check(c, d[DS_LABELS], where[DS_LABELS], 1, "[N]", is_int32, "int32", &f[DS_LABELS]);

    /* Every member has the same number of rows as the first good one. */
    int ref = -1;
    for (int m = 0; m < DS_COUNT; m++) {
        if (d[m] < 0 || !f[m].ok)
            continue;
        if (ref < 0) {
            ref = m;
        } else if (f[m].dims[0] != f[ref].dims[0]) {
            checker_problem_add(&c->pr, where[m], "expected %llu rows like %s, found %llu",
                                (unsigned long long)f[ref].dims[0], where[ref],
                                (unsigned long long)f[m].dims[0]);
            f[m].ok = false;
        }
    }
    int64_t n = ref >= 0 ? (int64_t)f[ref].dims[0] : 0;
    ds->splits[s].n = n;
    if (ref >= 0 && n == 0)
        checker_problem_add(&c->pr, gwhere, "split is empty (0 rows)");

    if (c->scan && n > 0) {
        char more[96];
        if (d[DS_LABELS] >= 0 && f[DS_LABELS].ok && c->num_classes_known) {
            first_bad fb = {0};
            int32_t top = INT32_MIN;
            if (checker_scan_ints(c, d[DS_LABELS], where[DS_LABELS], 1, n, 1, 0, ds->num_classes,
                                  INT32_MIN, NULL, &fb, &top) &&
                fb.count) {
                checker_more_text(&fb, "row", more, sizeof more);
                checker_problem_add(&c->pr, where[DS_LABELS],
                                    "label %" PRId64 " at row %" PRId64
                                    " is outside [0, %d) (num_classes)%s",
                                    fb.value, fb.row, ds->num_classes, more);
            }
        }
        if (d[DS_TOKENS] >= 0 && f[DS_TOKENS].ok && c->vocab_known) {
            first_bad fb = {0};
            int32_t top = INT32_MIN;
            int64_t cols = (int64_t)f[DS_TOKENS].dims[1];
            int32_t *lengths = xcalloc((size_t)n, sizeof(int32_t));
            if (checker_scan_ints(c, d[DS_TOKENS], where[DS_TOKENS], 2, n, cols, 0, ds->vocab_size,
                                  ds->pad_id, lengths, &fb, &top)) {
                ds->splits[s].lengths = lengths;
                if (fb.count) {
                    checker_more_text(&fb, "id", more, sizeof more);
                    checker_problem_add(&c->pr, where[DS_TOKENS],
                                        "token id %" PRId64 " at row %" PRId64 ", position %" PRId64
                                        " is outside [0, %d) (vocab_size)%s",
                                        fb.value, fb.row, fb.col, ds->vocab_size, more);
                }
                int64_t lo, hi;
                checker_row_share(n, c->scan_size, c->scan_rank, &lo, &hi);
                for (int64_t i = lo; i < hi; i++) {
                    c->length_sum[s] += lengths[i];
                    if (lengths[i] > c->length_max[s])
                        c->length_max[s] = lengths[i];
                }
            } else {
                free(lengths);
            }
        }
        if (d[DS_SEGMENTS] >= 0 && f[DS_SEGMENTS].ok) {
            first_bad fb = {0};
            int32_t top = 0;
            if (checker_scan_ints(c, d[DS_SEGMENTS], where[DS_SEGMENTS], 2, n,
                                  (int64_t)f[DS_SEGMENTS].dims[1], 0, INT32_MAX, INT32_MIN, NULL,
                                  &fb, &top) &&
                fb.count) {
                checker_more_text(&fb, "id", more, sizeof more);
                checker_problem_add(&c->pr, where[DS_SEGMENTS],
                                    "segment id %" PRId64 " at row %" PRId64 ", position %" PRId64
                                    " is negative%s",
                                    fb.value, fb.row, fb.col, more);
            }
            ds->splits[s].max_segment = top;
        }
        if (d[DS_IMAGES] >= 0 && f[DS_IMAGES].ok &&
            ds->splits[s].image_dtype == DATASET_DTYPE_FLOAT32)
            checker_scan_float_images(c, d[DS_IMAGES], where[DS_IMAGES], f[DS_IMAGES].dims);
    }
    for (int m = 0; m < DS_COUNT; m++)
        if (d[m] >= 0)
            H5Oclose(d[m]);
    H5Oclose(g);
}

/* Which members the splits have, from /train, when `kind` is unusable. */
static void guess_kind(checker *c) {
    dataset *ds = c->ds;
    if (H5Lexists(c->file, "train", H5P_DEFAULT) > 0) {
        hid_t g = H5Oopen(c->file, "train", H5P_DEFAULT);
        if (g >= 0) {
            if (H5Iget_type(g) == H5I_GROUP) {
                ds->has_images = H5Lexists(g, "images", H5P_DEFAULT) > 0;
                ds->has_tokens = H5Lexists(g, "tokens", H5P_DEFAULT) > 0;
            }
            H5Oclose(g);
        }
    }
    if (!ds->has_images && !ds->has_tokens)
        ds->has_images = true; /* report missing images rather than nothing */
    ds->kind = ds->has_images && ds->has_tokens ? DATASET_KIND_IMAGE_TEXT
               : ds->has_tokens                 ? DATASET_KIND_TEXT
                                                : DATASET_KIND_IMAGE;
}

static void check_text_root(checker *c) {
    dataset *ds = c->ds;
    int nv = 0, v = 0;
    char **vocab = strings_dataset(c, "vocab", "/vocab", -1,
                                   "the vocabulary: one UTF-8 string per token id", &nv);
    bool have_v = attr_int(c, c->file, NULL, "vocab_size", 1, INT32_MAX,
                           "int32 >= 1, the number of /vocab entries", &v);
    if (vocab && have_v && nv != v)
        checker_problem_add(&c->pr, NULL, "attribute vocab_size is %d but /vocab has %d entries", v,
                            nv);
    if (vocab) {
        ds->vocab = vocab;
        ds->vocab_size = nv;
        c->vocab_known = true;
    } else if (have_v) {
        ds->vocab_size = v;
        c->vocab_known = true;
    }
    static const char *const id_names[5] = {"pad_id", "unk_id", "cls_id", "sep_id", "mask_id"};
    int *ids[5] = {&ds->pad_id, &ds->unk_id, &ds->cls_id, &ds->sep_id, &ds->mask_id};
    char expect[96];
    if (c->vocab_known)
        snprintf(expect, sizeof expect, "an int32 token id in [0, %d) (vocab_size)",
                 ds->vocab_size);
    else
        snprintf(expect, sizeof expect, "an int32 token id");
    for (int i = 0; i < 5; i++)
        attr_int(c, c->file, NULL, id_names[i], 0, c->vocab_known ? ds->vocab_size - 1 : INT32_MAX,
                 expect, ids[i]);
    attr_int(c, c->file, NULL, "max_len", 1, 1 << 20, "int32 in [1, 2^20], the tokens' columns",
             &ds->max_len);
}

void checker_run(checker *c) {
    dataset *ds = c->ds;
    int version = 0;
    attr_int(c, c->file, NULL, "format_version", 1, 1, "int32 = 1 (this heed reads format 1)",
             &version);
    char *kind =
        attr_string(c, c->file, NULL, "kind", "string \"image\", \"text\" or \"image_text\"");
    if (kind) {
        c->kind_known = true;
        if (strcmp(kind, "image") == 0)
            ds->kind = DATASET_KIND_IMAGE;
        else if (strcmp(kind, "text") == 0)
            ds->kind = DATASET_KIND_TEXT;
        else if (strcmp(kind, "image_text") == 0)
            ds->kind = DATASET_KIND_IMAGE_TEXT;
        else {
            checker_problem_add(
                &c->pr, NULL,
                "attribute kind: expected \"image\", \"text\" or \"image_text\", found "
                "\"%s\"",
                kind);
            c->kind_known = false;
        }
        free(kind);
    }
    if (c->kind_known) {
        ds->has_images = ds->kind != DATASET_KIND_TEXT;
        ds->has_tokens = ds->kind != DATASET_KIND_IMAGE;
    } else {
        guess_kind(c);
    }
    ds->name = attr_string(c, c->file, NULL, "name", "string: the dataset's name");
    if (!ds->name)
        ds->name = xstrdup("");
    c->num_classes_known = attr_int(c, c->file, NULL, "num_classes", 1, INT32_MAX,
                                    "int32 >= 1, the number of classes", &ds->num_classes);
    int nc = 0;
    ds->classes =
        strings_dataset(c, "classes", "/classes", c->num_classes_known ? ds->num_classes : -1,
                        "one UTF-8 name per class, num_classes of them", &nc);
    if (ds->classes && !c->num_classes_known) {
        ds->num_classes = nc; /* still checks labels against something */
        c->num_classes_known = nc > 0;
    }
    if (ds->has_tokens)
        check_text_root(c);
    int image_ref = -1;
    for (int s = 0; s < DATASET_SPLIT_COUNT; s++)
        check_split(c, (dataset_split)s, &image_ref);
}

/* Opens the file read-only with the default (sec2) driver; false (and a
 * problem) when it is missing, unreadable or not HDF5. */
bool checker_open_file(checker *c, const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) {
        checker_problem_add(&c->pr, NULL, "cannot open: %s", strerror(errno));
        return false;
    }
    if (S_ISDIR(st.st_mode)) {
        checker_problem_add(&c->pr, NULL, "is a directory, not an HDF5 file");
        return false;
    }
    if (access(path, R_OK) != 0) {
        checker_problem_add(&c->pr, NULL, "cannot read: %s", strerror(errno));
        return false;
    }
    if (H5Fis_hdf5(path) <= 0) {
        checker_problem_add(&c->pr, NULL,
                            "not an HDF5 file (no HDF5 signature; datasets are HDF5 files, see "
                            "docs/data-format.md)");
        return false;
    }
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    HEED_H5_CHECK(fapl, "file access list");
#if H5_VERSION_GE(1, 10, 7)
    /* Many ranks only read: file locks buy nothing and fail on some
     * cluster file systems. */
    HEED_H5_CHECK(H5Pset_file_locking(fapl, 0, 1), path);
#endif
    c->file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (c->file < 0) {
        checker_problem_add(&c->pr, NULL, "HDF5 cannot open it (truncated or corrupt file?)");
        return false;
    }
    return true;
}

h5_quiet checker_quiet_begin(void) {
    h5_quiet q = {0};
    H5Eget_auto2(H5E_DEFAULT, &q.func, &q.data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    return q;
}

void checker_quiet_end(h5_quiet q) {
    H5Eset_auto2(H5E_DEFAULT, q.func, q.data);
}
