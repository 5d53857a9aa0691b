/*
 * dataset_scan.c - the value scan of the dataset validator: labels, token
 * and segment ids in range, float images finite, text row lengths; each
 * rank scans its share of the rows in big blocks.
 */
#include "dist/dataset_check.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "dist/bad_input.h"
#include "dist/check_dist.h"
#include "dist/dataset_h5.h"
#include "dist/sampler.h"

/* Bytes read per block by the value scan: bounded memory, big reads. */
#define SCAN_BLOCK_BYTES ((size_t)8 << 20)

/* ---- the value scan ----------------------------------------------------- */

/* This rank's share of the value scan: the sampler's split rule. */
void checker_row_share(int64_t n, int p, int r, int64_t *lo, int64_t *hi) {
    sampler_split_range(n, p, r, lo, hi);
}

/* Reads rows [row0, row0 + rows) of the rank-`nd` dataset d. */
static herr_t read_row_block(hid_t d, int nd, const hsize_t *dims, hid_t memtype, int64_t row0,
                             int64_t rows, void *buf) {
    hsize_t start[4] = {(hsize_t)row0, 0, 0, 0}, count[4];
    count[0] = (hsize_t)rows;
    for (int i = 1; i < nd; i++)
        count[i] = dims[i];
    hid_t fs = H5Dget_space(d);
    if (fs < 0)
        return -1;
    hid_t ms = H5Screate_simple(nd, count, NULL);
    herr_t rc = ms < 0 ? -1 : H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
    if (rc >= 0)
        rc = H5Dread(d, memtype, ms, fs, H5P_DEFAULT, buf);
    if (ms >= 0)
        H5Sclose(ms);
    H5Sclose(fs);
    return rc;
}

static void note_bad(first_bad *fb, int64_t row, int64_t col, int64_t value) {
    if (fb->count++ == 0) {
        fb->row = row;
        fb->col = col;
        fb->value = value;
    }
}

/* "; N more <noun>s like it" when more than one was bad (noun singular). */
void checker_more_text(const first_bad *fb, const char *noun, char *buf, size_t len) {
    buf[0] = '\0';
    if (fb->count > 1)
        snprintf(buf, len, "; %" PRId64 " more %s%s like it", fb->count - 1, noun,
                 fb->count > 2 ? "s" : "");
}

/* Scans int32 rows [lo, hi) (this rank's share) of the [n, cols] dataset d:
 * values outside [vmin, vmax) into *fb, the largest value into *vmax_seen,
 * and with `lengths` the non-pad length of each row. False on a read
 * failure (reported). */
bool checker_scan_ints(checker *c, hid_t d, const char *where, int nd, int64_t n, int64_t cols,
                       int64_t vmin, int64_t vmax, int32_t pad, int32_t *lengths, first_bad *fb,
                       int32_t *vmax_seen) {
    int64_t lo, hi;
    checker_row_share(n, c->scan_size, c->scan_rank, &lo, &hi);
    int64_t block = (int64_t)(SCAN_BLOCK_BYTES / sizeof(int32_t)) / cols;
    if (block < 1)
        block = 1;
    if (block > hi - lo)
        block = hi - lo > 0 ? hi - lo : 1;
    int32_t *buf = xmalloc(sizeof(int32_t) * (size_t)(block * cols));
    hsize_t dims[2] = {(hsize_t)n, (hsize_t)cols};
    for (int64_t r0 = lo; r0 < hi; r0 += block) {
        int64_t rows = hi - r0 < block ? hi - r0 : block;
        if (read_row_block(d, nd, dims, H5T_NATIVE_INT32, r0, rows, buf) < 0) {
            checker_problem_add(&c->pr, where,
                                "reading rows %" PRId64 "..%" PRId64
                                " failed (truncated or corrupt file?)",
                                r0, r0 + rows - 1);
            free(buf);
            return false;
        }
        for (int64_t i = 0; i < rows; i++) {
            const int32_t *row = buf + i * cols;
            int32_t last = 0;
            for (int64_t j = 0; j < cols; j++) {
                int32_t v = row[j];
                if (v < vmin || v >= vmax)
                    note_bad(fb, r0 + i, j, v);
                if (v > *vmax_seen)
                    *vmax_seen = v;
                if (v != pad)
                    last = (int32_t)j + 1;
            }
            if (lengths)
                lengths[r0 + i] = last > 0 ? last : 1;
        }
    }
    free(buf);
    return true;
}

/* Float images must be finite: NaN in the input is NaN in every loss. */
void checker_scan_float_images(checker *c, hid_t d, const char *where, const hsize_t *dims) {
    int64_t n = (int64_t)dims[0], lo, hi;
    int64_t per_row = (int64_t)(dims[1] * dims[2] * dims[3]);
    checker_row_share(n, c->scan_size, c->scan_rank, &lo, &hi);
    if (hi <= lo || per_row == 0)
        return;
    int64_t block = (int64_t)(SCAN_BLOCK_BYTES / sizeof(float)) / per_row;
    if (block < 1)
        block = 1;
    if (block > hi - lo)
        block = hi - lo;
    float *buf = xmalloc(sizeof(float) * (size_t)(block * per_row));
    first_bad fb = {0};
    for (int64_t r0 = lo; r0 < hi; r0 += block) {
        int64_t rows = hi - r0 < block ? hi - r0 : block;
        if (read_row_block(d, 4, dims, H5T_NATIVE_FLOAT, r0, rows, buf) < 0) {
            checker_problem_add(&c->pr, where,
                                "reading rows %" PRId64 "..%" PRId64
                                " failed (truncated or corrupt file?)",
                                r0, r0 + rows - 1);
            free(buf);
            return;
        }
        for (int64_t i = 0; i < rows * per_row; i++)
            if (!isfinite(buf[i]) && fb.count++ == 0) {
                fb.row = r0 + i / per_row;
                fb.fvalue = buf[i];
            }
    }
    free(buf);
    if (fb.count) {
        char more[96];
        checker_more_text(&fb, "value", more, sizeof more);
        checker_problem_add(&c->pr, where, "value %g in row %" PRId64 " is not finite%s", fb.fvalue,
                            fb.row, more);
    }
}
