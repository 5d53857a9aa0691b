/*
 * dataset_read.c - reading rows of a validated dataset into batches.
 *
 * Streaming: a batch's ids are sorted, runs of consecutive rows become one
 * hyperslab union, and one H5Dread per HDF5 dataset fills a staging buffer
 * in file order; assembling then scatters the rows into batch order while
 * normalising images and trimming tokens. In memory: the staging buffer is
 * the whole split, read once, and assembling is all there is.
 */
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "dist/check_dist.h"
#include "dist/dataset_h5.h"

/* Chunked (compressed) files are read a chunk at a time: give each dataset
 * a cache of up to this many bytes so random rows do not decompress the
 * same chunk again and again. */
#define READ_CHUNK_CACHE_BYTES ((size_t)64 << 20)

typedef struct row_ref {
    int64_t id;
    int pos; /* position in the batch */
} row_ref;

struct dataset_reader {
    dataset *ds;
    dataset_split split;
    int max_rows;
    bool in_memory;
    int64_t n;
    hid_t d[DS_COUNT], fspace[DS_COUNT]; /* streaming: -1 when absent */
    int ndim[DS_COUNT];
    hsize_t dims[DS_COUNT][4];
    size_t row_bytes[DS_COUNT];
    hid_t memtype[DS_COUNT];       /* a native type: never closed */
    unsigned char *rows[DS_COUNT]; /* staging [max_rows rows], or the whole split */
    float *lut;                    /* uint8 images: [C][256] normalised values */
    row_ref *refs;                 /* [max_rows] */
    int64_t *src;                  /* [max_rows] row of rows[] for each batch position */
    hsize_t *run_start, *run_len;  /* [max_rows] */
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
static void member_shape(const dataset *ds, dataset_split split, int m, int *ndim, hsize_t *dims,
                         size_t *row_bytes, hid_t *memtype) {
    const dataset_split_info *si = &ds->splits[split];
    dims[0] = (hsize_t)si->n;
    if (m == DS_IMAGES) {
        *ndim = 4;
        dims[1] = (hsize_t)ds->channels;
        dims[2] = (hsize_t)ds->height;
        dims[3] = (hsize_t)ds->width;
        bool u8 = si->image_dtype == DATASET_DTYPE_UINT8;
        *memtype = u8 ? H5T_NATIVE_UINT8 : H5T_NATIVE_FLOAT;
        *row_bytes = (size_t)ds->channels * (size_t)ds->height * (size_t)ds->width *
                     (u8 ? 1 : sizeof(float));
    } else if (m == DS_LABELS) {
        *ndim = 1;
        *memtype = H5T_NATIVE_INT32;
        *row_bytes = sizeof(int32_t);
    } else {
        *ndim = 2;
        dims[1] = (hsize_t)ds->max_len;
        *memtype = H5T_NATIVE_INT32;
        *row_bytes = sizeof(int32_t) * (size_t)ds->max_len;
    }
}

int64_t dataset_split_bytes(const dataset *ds, dataset_split split) {
    int64_t total = 0;
    for (int m = 0; m < DS_COUNT; m++) {
        if (!member_used(ds, split, m))
            continue;
        int nd;
        hsize_t dims[4];
        size_t rb;
        hid_t mt;
        member_shape(ds, split, m, &nd, dims, &rb, &mt);
        total += (int64_t)rb * ds->splits[split].n;
    }
    return total;
}

/* Opens member m for streaming, with a chunk cache sized to the data. */
static hid_t open_member(dataset_reader *r, int m) {
    char name[48];
    snprintf(name, sizeof name, "/%s/%s", dataset_split_name(r->split), dataset_member_names[m]);
    hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
    HEED_H5_CHECK(dapl, name);
    size_t want = r->row_bytes[m] * (size_t)r->n;
    size_t bytes = want < READ_CHUNK_CACHE_BYTES ? want : READ_CHUNK_CACHE_BYTES;
    HEED_H5_CHECK(H5Pset_chunk_cache(dapl, 12421, bytes, 1.0), name);
    hid_t d = H5Dopen2(r->ds->h5->file, name, dapl);
    H5Pclose(dapl);
    if (d < 0)
        dataset_read_fail(r->ds, r->split, m, "cannot be opened");
    return d;
}

dataset_reader *dataset_reader_init(dataset *ds, dataset_split split, int max_rows,
                                    bool in_memory) {
    HEED_ASSERT(max_rows >= 1 && split >= 0 && split < DATASET_SPLIT_COUNT);
    dataset_reader *r = xcalloc(1, sizeof *r);
    r->ds = ds;
    r->split = split;
    r->max_rows = max_rows;
    r->in_memory = in_memory;
    r->n = ds->splits[split].n;
    r->refs = xmalloc(sizeof(row_ref) * (size_t)max_rows);
    r->src = xmalloc(sizeof(int64_t) * (size_t)max_rows);
    r->run_start = xmalloc(sizeof(hsize_t) * (size_t)max_rows);
    r->run_len = xmalloc(sizeof(hsize_t) * (size_t)max_rows);
    for (int m = 0; m < DS_COUNT; m++) {
        r->d[m] = r->fspace[m] = -1;
        if (!member_used(ds, split, m))
            continue;
        member_shape(ds, split, m, &r->ndim[m], r->dims[m], &r->row_bytes[m], &r->memtype[m]);
        int64_t rows = in_memory ? r->n : max_rows;
        r->rows[m] = xaligned_alloc(64, ((size_t)rows * r->row_bytes[m] + 63) / 64 * 64);
    }
    dataset_lock(ds);
    for (int m = 0; m < DS_COUNT; m++) {
        if (!r->rows[m])
            continue;
        r->d[m] = open_member(r, m);
        if (in_memory) {
            if (H5Dread(r->d[m], r->memtype[m], H5S_ALL, H5S_ALL, H5P_DEFAULT, r->rows[m]) < 0)
                dataset_read_fail(ds, split, m, "reading the whole split into memory failed");
            HEED_H5_CHECK(H5Dclose(r->d[m]), ds->path);
            r->d[m] = -1;
        } else {
            r->fspace[m] = H5Dget_space(r->d[m]);
            HEED_H5_CHECK(r->fspace[m], ds->path);
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

void dataset_reader_free(dataset_reader *r) {
    if (!r)
        return;
    bool any = false;
    for (int m = 0; m < DS_COUNT; m++)
        any = any || r->d[m] >= 0 || r->fspace[m] >= 0;
    if (any) {
        dataset_lock(r->ds);
        for (int m = 0; m < DS_COUNT; m++) {
            if (r->fspace[m] >= 0)
                HEED_H5_CHECK(H5Sclose(r->fspace[m]), r->ds->path);
            if (r->d[m] >= 0)
                HEED_H5_CHECK(H5Dclose(r->d[m]), r->ds->path);
        }
        dataset_unlock(r->ds);
    }
    for (int m = 0; m < DS_COUNT; m++)
        free(r->rows[m]);
    free(r->lut);
    free(r->refs);
    free(r->src);
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

/* Reads the rows of ids[0..n) into the staging buffers in file order and
 * sets src[pos] to each batch position's staging row. */
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
            r->src[r->refs[i].pos] = uniq - 1; /* a repeat shares its row */
            continue;
        }
        if (runs > 0 && (hsize_t)id == r->run_start[runs - 1] + r->run_len[runs - 1]) {
            r->run_len[runs - 1]++;
        } else {
            r->run_start[runs] = (hsize_t)id;
            r->run_len[runs] = 1;
            runs++;
        }
        r->src[r->refs[i].pos] = uniq++;
    }
    dataset_lock(r->ds);
    for (int m = 0; m < DS_COUNT; m++) {
        if (r->d[m] < 0)
            continue;
        hid_t fs = r->fspace[m];
        hsize_t start[4] = {0, 0, 0, 0}, count[4];
        for (int k = 1; k < r->ndim[m]; k++)
            count[k] = r->dims[m][k];
        for (int k = 0; k < runs; k++) {
            start[0] = r->run_start[k];
            count[0] = r->run_len[k];
            HEED_H5_CHECK(H5Sselect_hyperslab(fs, k ? H5S_SELECT_OR : H5S_SELECT_SET, start, NULL,
                                              count, NULL),
                          r->ds->path);
        }
        count[0] = (hsize_t)uniq;
        hid_t ms = H5Screate_simple(r->ndim[m], count, NULL);
        HEED_H5_CHECK(ms, r->ds->path);
        if (H5Dread(r->d[m], r->memtype[m], ms, fs, H5P_DEFAULT, r->rows[m]) < 0)
            dataset_read_fail(r->ds, r->split, m, "reading a batch of rows failed");
        HEED_H5_CHECK(H5Sclose(ms), r->ds->path);
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

void dataset_reader_read(dataset_reader *r, const int64_t *ids, int n, batch *b) {
    const dataset *ds = r->ds;
    HEED_ASSERT(n >= 0 && n <= r->max_rows && n <= b->capacity);
    for (int i = 0; i < n; i++)
        HEED_ASSERT(ids[i] >= 0 && ids[i] < r->n);
    if (r->in_memory)
        memcpy(r->src, ids, sizeof(int64_t) * (size_t)n);
    else if (n > 0)
        stream_rows(r, ids, n);
    b->n = n;
    memcpy(b->ids, ids, sizeof(int64_t) * (size_t)n);

    if (r->rows[DS_IMAGES]) {
        const dataset_split_info *si = &ds->splits[r->split];
        int ch = ds->channels;
        size_t hw = (size_t)ds->height * (size_t)ds->width;
        for (int i = 0; i < n; i++) {
            float *out = b->images + (size_t)i * (size_t)ch * hw;
            const unsigned char *row =
                r->rows[DS_IMAGES] + (size_t)r->src[i] * r->row_bytes[DS_IMAGES];
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
    if (r->rows[DS_TOKENS]) {
        int cols = ds->max_len, len = 1;
        for (int i = 0; i < n; i++) {
            const int32_t *row = (const int32_t *)r->rows[DS_TOKENS] + r->src[i] * cols;
            int l = row_length(row, cols, ds->pad_id);
            len = l > len ? l : len;
        }
        b->len = len;
        for (int i = 0; i < n; i++)
            memcpy(b->tokens + (size_t)i * (size_t)len,
                   (const int32_t *)r->rows[DS_TOKENS] + r->src[i] * cols,
                   sizeof(int32_t) * (size_t)len);
        b->segments = r->rows[DS_SEGMENTS] ? b->segments_storage : NULL;
        if (b->segments)
            for (int i = 0; i < n; i++)
                memcpy(b->segments + (size_t)i * (size_t)len,
                       (const int32_t *)r->rows[DS_SEGMENTS] + r->src[i] * cols,
                       sizeof(int32_t) * (size_t)len);
    }
    const int32_t *labels = (const int32_t *)r->rows[DS_LABELS];
    for (int i = 0; i < n; i++)
        b->labels[i] = labels[r->src[i]];
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
