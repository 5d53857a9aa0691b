/*
 * checkpoint_util.c - checksums, attributes and error agreement shared by
 * the checkpoint writer, reader and the params file.
 */
#include "dist/checkpoint.h"
#include "dist/checkpoint_h5.h"
#include "dist/check_dist.h"

#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t ckpt_checksum_reference(const float *x, int64_t first, int64_t n) {
    uint64_t sum = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &x[i], sizeof bits);
        sum += mix64(((uint64_t)(first + i) << 32) ^ (uint64_t)bits);
    }
    return sum;
}

#if defined(__x86_64__) && defined(__GNUC__)
/* The same sum, 8 positions per step. Generic x86-64 has no 64-bit vector
 * multiply, so this is built for AVX-512DQ (vpmullq) and chosen at run time:
 * on a 100 MB checkpoint the scalar loop took about a quarter of the write. */
typedef uint64_t u64x8 __attribute__((vector_size(64)));
typedef uint32_t u32x8 __attribute__((vector_size(32)));

__attribute__((target("avx512f,avx512dq"))) static uint64_t
checksum_avx512(const float *x, int64_t first, int64_t n) {
    u64x8 acc = {0}, pos, step = {8, 8, 8, 8, 8, 8, 8, 8};
    for (int k = 0; k < 8; k++)
        pos[k] = (uint64_t)(first + k);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        u32x8 bits;
        memcpy(&bits, &x[i], sizeof bits);
        u64x8 z = (pos << 32) ^ __builtin_convertvector(bits, u64x8);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        acc += z ^ (z >> 31);
        pos += step;
    }
    uint64_t sum = 0;
    for (int k = 0; k < 8; k++)
        sum += acc[k];
    return sum + ckpt_checksum_reference(x + i, first + i, n - i);
}

static bool have_avx512dq(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
}
#endif

uint64_t ckpt_checksum(const float *x, int64_t first, int64_t n) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (have_avx512dq())
        return checksum_avx512(x, first, n);
#endif
    return ckpt_checksum_reference(x, first, n);
}

void ckpt_meta_free(ckpt_meta *m) {
    free(m->config);
    memset(m, 0, sizeof *m);
}

static void attr_write(hid_t obj, const char *name, hid_t ftype, hid_t mtype, const void *v,
                       const char *what) {
    hid_t s = H5Screate(H5S_SCALAR);
    HEED_H5_CHECK(s, what);
    hid_t a = H5Acreate2(obj, name, ftype, s, H5P_DEFAULT, H5P_DEFAULT);
    HEED_H5_CHECK(a, what);
    HEED_H5_CHECK(H5Awrite(a, mtype, v), what);
    HEED_H5_CHECK(H5Aclose(a), what);
    HEED_H5_CHECK(H5Sclose(s), what);
}

void ckpt_attr_write_i64(hid_t obj, const char *name, int64_t v, const char *what) {
    attr_write(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v, what);
}

void ckpt_attr_write_u64(hid_t obj, const char *name, uint64_t v, const char *what) {
    attr_write(obj, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, &v, what);
}

void ckpt_attr_write_f32(hid_t obj, const char *name, float v, const char *what) {
    attr_write(obj, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, &v, what);
}

/* Fixed-length, NUL-terminated: readable by h5py and h5dump, and identical
 * bytes on every rank (variable-length strings would be written per rank). */
void ckpt_attr_write_str(hid_t obj, const char *name, const char *v, const char *what) {
    hid_t t = H5Tcopy(H5T_C_S1);
    HEED_H5_CHECK(t, what);
    HEED_H5_CHECK(H5Tset_size(t, strlen(v) + 1), what);
    HEED_H5_CHECK(H5Tset_strpad(t, H5T_STR_NULLTERM), what);
    HEED_H5_CHECK(H5Tset_cset(t, H5T_CSET_UTF8), what);
    attr_write(obj, name, t, t, v, what);
    HEED_H5_CHECK(H5Tclose(t), what);
}

static bool attr_read(hid_t obj, const char *name, hid_t mtype, void *v) {
    if (H5Aexists(obj, name) <= 0)
        return false;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0)
        return false;
    hid_t s = H5Aget_space(a);
    bool ok = s >= 0 && H5Sget_simple_extent_npoints(s) == 1 && H5Aread(a, mtype, v) >= 0;
    if (s >= 0)
        H5Sclose(s);
    H5Aclose(a);
    return ok;
}

bool ckpt_attr_read_i64(hid_t obj, const char *name, int64_t *v) {
    return attr_read(obj, name, H5T_NATIVE_INT64, v);
}

bool ckpt_attr_read_u64(hid_t obj, const char *name, uint64_t *v) {
    return attr_read(obj, name, H5T_NATIVE_UINT64, v);
}

bool ckpt_attr_read_f32(hid_t obj, const char *name, float *v) {
    return attr_read(obj, name, H5T_NATIVE_FLOAT, v);
}

char *ckpt_attr_read_str(hid_t obj, const char *name) {
    if (H5Aexists(obj, name) <= 0)
        return NULL;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0)
        return NULL;
    char *out = NULL;
    hid_t t = H5Aget_type(a);
    if (t >= 0 && H5Tget_class(t) == H5T_STRING) {
        if (H5Tis_variable_str(t) > 0) {
            /* Written by Python (h5py's default str). */
            char *v = NULL;
            hid_t mt = H5Tcopy(H5T_C_S1);
            if (mt >= 0 && H5Tset_size(mt, H5T_VARIABLE) >= 0 && H5Aread(a, mt, &v) >= 0 && v) {
                out = xstrdup(v);
                H5free_memory(v);
            }
            if (mt >= 0)
                H5Tclose(mt);
        } else {
            size_t n = H5Tget_size(t);
            if (n > 0) {
                out = xcalloc(n + 1, 1);
                if (H5Aread(a, t, out) < 0) {
                    free(out);
                    out = NULL;
                }
            }
        }
    }
    if (t >= 0)
        H5Tclose(t);
    H5Aclose(a);
    return out;
}

bool ckpt_agree(const comm *c, bool ok, char *err, size_t errlen) {
    int mine = ok ? INT_MAX : c->rank, first = INT_MAX;
    HEED_MPI_CHECK(MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, c->mpi));
    if (first == INT_MAX)
        return true;
    char buf[1024];
    if (c->rank == first)
        snprintf(buf, sizeof buf, "%s", err);
    HEED_MPI_CHECK(MPI_Bcast(buf, (int)sizeof buf, MPI_CHAR, first, c->mpi));
    snprintf(err, errlen, "%s", buf);
    return false;
}

ckpt_h5_errors ckpt_h5_errors_off(void) {
    ckpt_h5_errors e = {0};
    H5Eget_auto2(H5E_DEFAULT, &e.func, &e.data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    return e;
}

void ckpt_h5_errors_restore(ckpt_h5_errors e) {
    H5Eset_auto2(H5E_DEFAULT, e.func, e.data);
}

hid_t ckpt_fapl_mpio(const comm *c, bool collective_metadata) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    HEED_H5_CHECK(fapl, "file access list");
    HEED_H5_CHECK(H5Pset_fapl_mpio(fapl, c->mpi, MPI_INFO_NULL), "file access list");
    /* Writing: metadata written once, collectively, instead of by every
     * rank. Reading: every rank reads the (small, cached) metadata itself,
     * which spares one synchronisation per object opened. */
    HEED_H5_CHECK(H5Pset_coll_metadata_write(fapl, collective_metadata), "file access list");
    HEED_H5_CHECK(H5Pset_all_coll_metadata_ops(fapl, collective_metadata), "file access list");
    return fapl;
}

hid_t ckpt_dxpl(void) {
    hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
    HEED_H5_CHECK(dxpl, "transfer list");
    HEED_H5_CHECK(H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE), "transfer list");
    /* Every rank's selection is one contiguous file range (rows of a
     * tensor, a moment shard), so two-phase collective buffering may only
     * add a copy and an exchange on a local disk. HEED_CKPT_IO=individual
     * keeps the call collective but lets each rank do its own I/O; the
     * default is MPI-IO's collective (two-phase) I/O, which pays on
     * parallel file systems. On the shared 2-core machine the two measured
     * the same (docs/benchmarks.md). */
    const char *mode = getenv("HEED_CKPT_IO");
    if (mode && strcmp(mode, "individual") == 0)
        HEED_H5_CHECK(H5Pset_dxpl_mpio_collective_opt(dxpl, H5FD_MPIO_INDIVIDUAL_IO),
                      "transfer list");
    return dxpl;
}
