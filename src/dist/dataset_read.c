/*
 * dataset_read.c - reading rows of a validated dataset into batches.
 *
 * Streaming: a batch's ids are sorted, runs of consecutive rows become one
 * hyperslab union, and one H5Dread per HDF5 dataset fills a staging buffer
 * in file order; assembling then scatters the rows into batch order while
 * normalising images and trimming tokens. In memory: the staging buffer is
 * the whole split, read once, and assembling is all there is.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/check.h"
#include "dist/check_dist.h"
#include "dist/dataset_h5.h"

/* Chunked (compressed) files are read a chunk at a time: give each dataset
 * a cache of up to this many bytes so random rows do not decompress the
 * same chunk again and again. */
#define READ_CHUNK_CACHE_BYTES ((size_t)64 << 20)

/* HDF5 1.10 builds a union of hyperslabs in time quadratic in their number
 * (measured: 256 rows 1.3 ms, 1024 rows 24 ms); a read of a contiguous
 * dataset covers at most this many runs, so a big batch takes a few reads
 * of small unions. A chunked dataset is read one run at a time: mapping a
 * union onto hundreds of chunks cost 41 ms per 256 rows, simple reads
 * through the chunk cache far less. */
#define READ_RUNS_PER_H5DREAD 64

typedef struct row_ref {
    int64_t id;
    int pos; /* position in the batch */
} row_ref;

/* Where a member's rows come from. */
typedef enum source_kind {
    SOURCE_MAP,    /* the file mapped: contiguous, unfiltered, native dtype */
    SOURCE_MEMORY, /* the whole split read once into a private buffer */
    SOURCE_STREAM, /* each batch's rows read through HDF5 into staging */
} source_kind;

typedef struct member_source {
    source_kind kind;
    hid_t d, fspace; /* STREAM: -1 otherwise */
    int ndim;
    hsize_t dims[4];
    size_t row_bytes;
    hid_t memtype;        /* a native type: never closed */
    int runs_per_read;    /* STREAM: runs of rows per H5Dread */
    unsigned char *rows;  /* row r (MAP, MEMORY: the id; STREAM: the staging slot) */
    unsigned char *owned; /* MEMORY, STREAM: the buffer behind rows */
    void *map;            /* MAP: the mapping */
    size_t map_len;
} member_source;

struct dataset_reader {
    dataset *ds;
    dataset_split split;
    int max_rows;
    int64_t n;
    bool any_stream;
    member_source m[DS_COUNT];    /* rows == NULL: absent */
    float *lut;                   /* uint8 images: [C][256] normalised values */
    row_ref *refs;                /* [max_rows] */
    int64_t *slot;                /* [max_rows] staging slot of each batch position */
    hsize_t *run_start, *run_len; /* [max_rows] */
};

_Noreturn void dataset_read_fail(const dataset *ds, dataset_split split, int member,
                                 const char *what) {
    int inited = 0, finalized = 0, rank = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    bool mpi = inited && !finalized;
    if (mpi)
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    fprintf(stderr, "heed: error: rank %d: %s: /%s/%s: %s (truncated or corrupt file?)\n", rank,
            ds->path, dataset_split_name(split), dataset_member_names[member], what);
    fflush(stderr);
    /* Other ranks may be inside a collective: only an abort frees them. */
    if (mpi)
        MPI_Abort(MPI_COMM_WORLD, HEED_EXIT_BAD_INPUT);
    _Exit(HEED_EXIT_BAD_INPUT);
}

static bool member_used(const dataset *ds, dataset_split split, int m) {
    switch (m) {
    case DS_IMAGES:
        return ds->has_images;
    case DS_TOKENS:
        return ds->has_tokens;
    case DS_SEGMENTS:
        return ds->has_tokens && ds->splits[split].has_segments;
    default:
        return true;
    }
}

/* Shape, bytes per row and memory type of member m, from the metadata that
 * validation established. */
static void member_shape(const dataset *ds, dataset_split split, int m, member_source *mb) {
    const dataset_split_info *si = &ds->splits[split];
    mb->dims[0] = (hsize_t)si->n;
    if (m == DS_IMAGES) {
        mb->ndim = 4;
        mb->dims[1] = (hsize_t)ds->channels;
        mb->dims[2] = (hsize_t)ds->height;
        mb->dims[3] = (hsize_t)ds->width;
        bool u8 = si->image_dtype == DATASET_DTYPE_UINT8;
        mb->memtype = u8 ? H5T_NATIVE_UINT8 : H5T_NATIVE_FLOAT;
        mb->row_bytes = (size_t)ds->channels * (size_t)ds->height * (size_t)ds->width *
                        (u8 ? 1 : sizeof(float));
    } else if (m == DS_LABELS) {
        mb->ndim = 1;
        mb->memtype = H5T_NATIVE_INT32;
        mb->row_bytes = sizeof(int32_t);
    } else {
        mb->ndim = 2;
        mb->dims[1] = (hsize_t)ds->max_len;
        mb->memtype = H5T_NATIVE_INT32;
        mb->row_bytes = sizeof(int32_t) * (size_t)ds->max_len;
    }
}

int64_t dataset_split_bytes(const dataset *ds, dataset_split split) {
    int64_t total = 0;
    for (int m = 0; m < DS_COUNT; m++) {
        if (!member_used(ds, split, m))
            continue;
        member_source mb;
        member_shape(ds, split, m, &mb);
        total += (int64_t)mb.row_bytes * ds->splits[split].n;
    }
    return total;
}

/* Opens member m, with a chunk cache sized to the data. */
static hid_t open_member(dataset_reader *r, int m) {
    char name[48];
    snprintf(name, sizeof name, "/%s/%s", dataset_split_name(r->split), dataset_member_names[m]);
    hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
    HEED_H5_CHECK(dapl, name);
    size_t want = r->m[m].row_bytes * (size_t)r->n;
    size_t bytes = want < READ_CHUNK_CACHE_BYTES ? want : READ_CHUNK_CACHE_BYTES;
    HEED_H5_CHECK(H5Pset_chunk_cache(dapl, 12421, bytes, 1.0), name);
    hid_t d = H5Dopen2(r->ds->h5->file, name, dapl);
    H5Pclose(dapl);
    if (d < 0)
        dataset_read_fail(r->ds, r->split, m, "cannot be opened");
    return d;
}

/* Maps member m's data when HDF5 stores it as a plain array: contiguous,
 * no filters, the native byte layout, allocated, inside the file. Reading a
 * row is then a copy from the page cache - no system call, no HDF5, no
 * lock - and the ranks of a node share one copy of the data. */
static bool map_member(dataset_reader *r, int m, hid_t d) {
    member_source *mb = &r->m[m];
    hid_t dcpl = H5Dget_create_plist(d), ftype = H5Dget_type(d);
    bool ok = dcpl >= 0 && ftype >= 0 && H5Pget_layout(dcpl) == H5D_CONTIGUOUS &&
              H5Pget_nfilters(dcpl) == 0 && H5Pget_external_count(dcpl) == 0 &&
              H5Tequal(ftype, mb->memtype) > 0;
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (ftype >= 0)
        H5Tclose(ftype);
    haddr_t addr = ok ? H5Dget_offset(d) : HADDR_UNDEF;
    if (addr == HADDR_UNDEF)
        return false;
    /* Documented as the offset from the beginning of the file: it counts
     * a user block already (tested with one). */
    off_t start = (off_t)addr;
    size_t bytes = mb->row_bytes * (size_t)r->n;
    int fd = open(r->ds->path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || st.st_size < start + (off_t)bytes) {
        if (fd >= 0)
            close(fd);
        return false; /* HDF5 will say what is wrong when it reads */
    }
    off_t page = (off_t)sysconf(_SC_PAGESIZE), base = start - start % page;
    size_t len = bytes + (size_t)(start - base);
    void *map = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, base);
    close(fd); /* the mapping keeps the file */
    if (map == MAP_FAILED)
        return false;
    mb->kind = SOURCE_MAP;
    mb->map = map;
    mb->map_len = len;
    mb->rows = (unsigned char *)map + (start - base);
    return true;
}

dataset_reader *dataset_reader_init(dataset *ds, dataset_split split, int max_rows,
                                    bool in_memory) {
    return dataset_reader_init_opts(ds, split, max_rows, in_memory, true);
}

dataset_reader *dataset_reader_init_opts(dataset *ds, dataset_split split, int max_rows,
                                         bool in_memory, bool allow_map) {
    HEED_ASSERT(max_rows >= 1 && split >= 0 && split < DATASET_SPLIT_COUNT);
    dataset_reader *r = xcalloc(1, sizeof *r);
    r->ds = ds;
    r->split = split;
    r->max_rows = max_rows;
    r->n = ds->splits[split].n;
    r->refs = xmalloc(sizeof(row_ref) * (size_t)max_rows);
    r->slot = xmalloc(sizeof(int64_t) * (size_t)max_rows);
    r->run_start = xmalloc(sizeof(hsize_t) * (size_t)max_rows);
    r->run_len = xmalloc(sizeof(hsize_t) * (size_t)max_rows);
    dataset_lock(ds);
    for (int m = 0; m < DS_COUNT; m++) {
        member_source *mb = &r->m[m];
        mb->d = mb->fspace = -1;
        if (!member_used(ds, split, m))
            continue;
        member_shape(ds, split, m, mb);
        hid_t d = open_member(r, m);
        if (allow_map && map_member(r, m, d)) {
            if (in_memory) /* ask the kernel to read it all now */
                posix_madvise(mb->map, mb->map_len, POSIX_MADV_WILLNEED);
            HEED_H5_CHECK(H5Dclose(d), ds->path);
            continue;
        }
        int64_t rows = in_memory ? r->n : max_rows;
        mb->owned = xaligned_alloc(64, ((size_t)rows * mb->row_bytes + 63) / 64 * 64);
        mb->rows = mb->owned;
        if (in_memory) {
            mb->kind = SOURCE_MEMORY;
            if (H5Dread(d, mb->memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, mb->rows) < 0)
                dataset_read_fail(ds, split, m, "reading the whole split into memory failed");
            HEED_H5_CHECK(H5Dclose(d), ds->path);
        } else {
            mb->kind = SOURCE_STREAM;
            hid_t dcpl = H5Dget_create_plist(d);
            HEED_H5_CHECK(dcpl, ds->path);
            mb->runs_per_read = H5Pget_layout(dcpl) == H5D_CHUNKED ? 1 : READ_RUNS_PER_H5DREAD;
            H5Pclose(dcpl);
            mb->d = d;
            mb->fspace = H5Dget_space(d);
            HEED_H5_CHECK(mb->fspace, ds->path);
            r->any_stream = true;
        }
    }
    dataset_unlock(ds);
    if (ds->has_images && ds->splits[split].image_dtype == DATASET_DTYPE_UINT8) {
        /* (x/255 - mean) / std for all 256 x: exact and one load per pixel. */
        int ch = ds->channels;
        r->lut = xmalloc(sizeof(float) * 256 * (size_t)ch);
        for (int c = 0; c < ch; c++)
            for (int v = 0; v < 256; v++)
                r->lut[c * 256 + v] =
                    ((float)v / 255.0f - ds->splits[split].mean[c]) / ds->splits[split].std[c];
    }
    return r;
}

const char *dataset_reader_source(const dataset_reader *r) {
    static const char *const names[] = {"map", "memory", "stream"};
    int kind = -1;
    for (int m = 0; m < DS_COUNT; m++) {
        if (!r->m[m].rows)
            continue;
        if (kind >= 0 && kind != (int)r->m[m].kind)
            return "mixed";
        kind = (int)r->m[m].kind;
    }
    return names[kind];
}

void dataset_reader_free(dataset_reader *r) {
    if (!r)
        return;
    if (r->any_stream) {
        dataset_lock(r->ds);
        for (int m = 0; m < DS_COUNT; m++) {
            if (r->m[m].fspace >= 0)
                HEED_H5_CHECK(H5Sclose(r->m[m].fspace), r->ds->path);
            if (r->m[m].d >= 0)
                HEED_H5_CHECK(H5Dclose(r->m[m].d), r->ds->path);
        }
        dataset_unlock(r->ds);
    }
    for (int m = 0; m < DS_COUNT; m++) {
        free(r->m[m].owned);
        if (r->m[m].map)
            munmap(r->m[m].map, r->m[m].map_len);
    }
    free(r->lut);
    free(r->refs);
    free(r->slot);
    free(r->run_start);
    free(r->run_len);
    free(r);
}

static int row_ref_cmp(const void *a, const void *b) {
    const row_ref *x = a, *y = b;
    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    return x->pos - y->pos;
}

/* Reads the rows of runs [k0, k1) of member mb into its staging rows from
 * slot `at` on. */
static void stream_runs(dataset_reader *r, int m, int k0, int k1, hsize_t at) {
    member_source *mb = &r->m[m];
    hsize_t start[4] = {0, 0, 0, 0}, count[4], rows = 0;
    for (int k = 1; k < mb->ndim; k++)
        count[k] = mb->dims[k];
    for (int k = k0; k < k1; k++) {
        start[0] = r->run_start[k];
        count[0] = r->run_len[k];
        rows += r->run_len[k];
        HEED_H5_CHECK(H5Sselect_hyperslab(mb->fspace, k > k0 ? H5S_SELECT_OR : H5S_SELECT_SET,
                                          start, NULL, count, NULL),
                      r->ds->path);
    }
    count[0] = rows;
    hid_t ms = H5Screate_simple(mb->ndim, count, NULL);
    HEED_H5_CHECK(ms, r->ds->path);
    if (H5Dread(mb->d, mb->memtype, ms, mb->fspace, H5P_DEFAULT, mb->rows + at * mb->row_bytes) < 0)
        dataset_read_fail(r->ds, r->split, m, "reading a batch of rows failed");
    HEED_H5_CHECK(H5Sclose(ms), r->ds->path);
}

/* Reads the rows of ids[0..n) of the streamed members into staging, in
 * file order, and sets slot[pos] to each batch position's staging row. */
static void stream_rows(dataset_reader *r, const int64_t *ids, int n) {
    for (int i = 0; i < n; i++) {
        r->refs[i].id = ids[i];
        r->refs[i].pos = i;
    }
    qsort(r->refs, (size_t)n, sizeof(row_ref), row_ref_cmp);
    int uniq = 0, runs = 0;
    for (int i = 0; i < n; i++) {
        int64_t id = r->refs[i].id;
        if (i > 0 && id == r->refs[i - 1].id) {
            r->slot[r->refs[i].pos] = uniq - 1; /* a repeat shares its row */
            continue;
        }
        if (runs > 0 && (hsize_t)id == r->run_start[runs - 1] + r->run_len[runs - 1]) {
            r->run_len[runs - 1]++;
        } else {
            r->run_start[runs] = (hsize_t)id;
            r->run_len[runs] = 1;
            runs++;
        }
        r->slot[r->refs[i].pos] = uniq++;
    }
    dataset_lock(r->ds);
    for (int m = 0; m < DS_COUNT; m++) {
        if (r->m[m].kind != SOURCE_STREAM || !r->m[m].rows)
            continue;
        hsize_t at = 0;
        int per = r->m[m].runs_per_read;
        for (int k0 = 0; k0 < runs; k0 += per) {
            int k1 = k0 + per < runs ? k0 + per : runs;
            stream_runs(r, m, k0, k1, at);
            for (int k = k0; k < k1; k++)
                at += r->run_len[k];
        }
    }
    dataset_unlock(r->ds);
}

/* The non-pad length of a token row (last non-pad + 1), at least 1. */
static int row_length(const int32_t *row, int cols, int32_t pad) {
    int len = cols;
    while (len > 1 && row[len - 1] == pad)
        len--;
    return len;
}

/* Row i of the batch in member mb. */
static inline const unsigned char *row_of(const dataset_reader *r, const member_source *mb,
                                          const int64_t *ids, int i) {
    int64_t at = mb->kind == SOURCE_STREAM ? r->slot[i] : ids[i];
    return mb->rows + (size_t)at * mb->row_bytes;
}

void dataset_reader_read(dataset_reader *r, const int64_t *ids, int n, batch *b) {
    const dataset *ds = r->ds;
    HEED_ASSERT(n >= 0 && n <= r->max_rows && n <= b->capacity);
    for (int i = 0; i < n; i++)
        HEED_ASSERT(ids[i] >= 0 && ids[i] < r->n);
    if (r->any_stream && n > 0)
        stream_rows(r, ids, n);
    b->n = n;
    memcpy(b->ids, ids, sizeof(int64_t) * (size_t)n);

    const member_source *im = &r->m[DS_IMAGES];
    if (im->rows) {
        const dataset_split_info *si = &ds->splits[r->split];
        int ch = ds->channels;
        size_t hw = (size_t)ds->height * (size_t)ds->width;
        for (int i = 0; i < n; i++) {
            float *out = b->images + (size_t)i * (size_t)ch * hw;
            const unsigned char *row = row_of(r, im, ids, i);
            for (int c = 0; c < ch; c++) {
                float *o = out + (size_t)c * hw;
                if (r->lut) {
                    const unsigned char *x = row + (size_t)c * hw;
                    const float *lut = r->lut + c * 256;
                    for (size_t k = 0; k < hw; k++)
                        o[k] = lut[x[k]];
                } else {
                    const float *x = (const float *)row + (size_t)c * hw;
                    float mean = si->mean[c], std = si->std[c];
                    for (size_t k = 0; k < hw; k++)
                        o[k] = (x[k] - mean) / std;
                }
            }
        }
    }
    const member_source *tm = &r->m[DS_TOKENS], *sm = &r->m[DS_SEGMENTS];
    if (tm->rows) {
        int cols = ds->max_len, len = 1;
        for (int i = 0; i < n; i++) {
            int l = row_length((const int32_t *)row_of(r, tm, ids, i), cols, ds->pad_id);
            len = l > len ? l : len;
        }
        b->len = len;
        for (int i = 0; i < n; i++)
            memcpy(b->tokens + (size_t)i * (size_t)len, row_of(r, tm, ids, i),
                   sizeof(int32_t) * (size_t)len);
        b->segments = sm->rows ? b->segments_storage : NULL;
        if (b->segments)
            for (int i = 0; i < n; i++)
                memcpy(b->segments + (size_t)i * (size_t)len, row_of(r, sm, ids, i),
                       sizeof(int32_t) * (size_t)len);
    }
    const member_source *lm = &r->m[DS_LABELS];
    for (int i = 0; i < n; i++)
        memcpy(&b->labels[i], row_of(r, lm, ids, i), sizeof(int32_t));
}

void batch_init(batch *b, const dataset *ds, int capacity) {
    HEED_ASSERT(capacity >= 1);
    memset(b, 0, sizeof *b);
    size_t cap = (size_t)capacity;
    b->capacity = capacity;
    b->ids = xmalloc(sizeof(int64_t) * cap);
    b->labels = xmalloc(sizeof(int32_t) * cap);
    if (ds->has_images) {
        b->channels = ds->channels;
        b->height = ds->height;
        b->width = ds->width;
        size_t per = (size_t)ds->channels * (size_t)ds->height * (size_t)ds->width;
        b->images = xaligned_alloc(64, (cap * per * sizeof(float) + 63) / 64 * 64);
    }
    if (ds->has_tokens) {
        b->tokens = xmalloc(sizeof(int32_t) * cap * (size_t)ds->max_len);
        bool seg = false;
        for (int s = 0; s < DATASET_SPLIT_COUNT; s++)
            seg = seg || ds->splits[s].has_segments;
        if (seg)
            b->segments_storage = xmalloc(sizeof(int32_t) * cap * (size_t)ds->max_len);
    }
}

void batch_free(batch *b) {
    free(b->ids);
    free(b->labels);
    free(b->images);
    free(b->tokens);
    free(b->segments_storage);
    memset(b, 0, sizeof *b);
}

int64_t *dataset_label_counts(dataset *ds, dataset_split split) {
    int64_t n = ds->splits[split].n;
    int K = ds->num_classes;
    int64_t *counts = xcalloc((size_t)K, sizeof *counts);
    int32_t *labels = xmalloc(sizeof *labels * (size_t)(n > 0 ? n : 1));
    char name[48];
    snprintf(name, sizeof name, "/%s/%s", dataset_split_name(split),
             dataset_member_names[DS_LABELS]);
    dataset_lock(ds);
    hid_t d = H5Dopen2(ds->h5->file, name, H5P_DEFAULT);
    herr_t rc = -1;
    if (d >= 0) {
        rc = n > 0 ? H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, labels) : 0;
        H5Dclose(d);
    }
    dataset_unlock(ds);
    if (rc < 0)
        dataset_read_fail(ds, split, DS_LABELS, "reading the labels failed");
    for (int64_t i = 0; i < n; i++) {
        /* Opened with the value scan skipped, the labels were never checked. */
        if (labels[i] < 0 || labels[i] >= K) {
            char what[96];
            snprintf(what, sizeof what, "label %d at row %lld is outside [0, %d)", labels[i],
                     (long long)i, K);
            dataset_read_fail(ds, split, DS_LABELS, what);
        }
        counts[labels[i]]++;
    }
    free(labels);
    return counts;
}
