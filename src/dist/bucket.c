/*
 * bucket.c - the bucket plan of bucket.h.
 */
#include "dist/bucket.h"

#include <stdlib.h>

#include "core/check.h"
#include "dist/allreduce_nb.h"

/* Chunk boundaries of bucket [lo, hi): the whole buffer's, clamped. */
static void bucket_bounds(int64_t *out, const int64_t *whole, int p, int64_t lo, int64_t hi) {
    for (int c = 0; c <= p; c++)
        out[c] = whole[c] < lo ? lo : whole[c] > hi ? hi : whole[c];
}

static void bucket_finish(bucket_plan *bp, int64_t n, int p) {
    int64_t *whole = xmalloc(sizeof *whole * (size_t)(p + 1));
    ring_default_bounds(n, p, whole);
    bp->bounds = xmalloc(sizeof *bp->bounds * (size_t)(bp->count > 0 ? bp->count : 1) * (p + 1));
    for (int i = 0; i < bp->count; i++) {
        int64_t *b = bp->bounds + (size_t)i * (p + 1);
        bucket_bounds(b, whole, p, bp->b[i].lo, bp->b[i].hi);
        bp->b[i].bounds = b;
    }
    free(whole);
}

void bucket_plan_single(bucket_plan *bp, int64_t n, int p) {
    bp->ranks = p;
    bp->count = n > 0 ? 1 : 0;
    bp->b = xcalloc(1, sizeof *bp->b);
    bp->b[0] = (grad_bucket){.lo = 0, .hi = n, .first = 0, .last = -1};
    bucket_finish(bp, n, p);
}

void bucket_plan_build(bucket_plan *bp, const params *ps, size_t bucket_bytes, int p) {
    HEED_ASSERT(p >= 1);
    if (bucket_bytes == 0 || ps->count == 0) {
        bucket_plan_single(bp, ps->numel, p);
        if (bp->count)
            bp->b[0].last = ps->count - 1;
        return;
    }
    bp->ranks = p;
    bp->count = 0;
    bp->b = xcalloc((size_t)ps->count, sizeof *bp->b);
    const int64_t cap =
        (int64_t)(bucket_bytes / sizeof(float)) > 0 ? (int64_t)(bucket_bytes / sizeof(float)) : 1;
    const int64_t first_cap_kb = (int64_t)BUCKET_FIRST_KB_MAX * 1024 / (int64_t)sizeof(float);
    const int64_t first_cap = cap < first_cap_kb ? cap : first_cap_kb;
    int64_t hi = ps->numel;
    int last = ps->count - 1;
    for (int i = ps->count - 1; i >= 0; i--) {
        const int64_t lo = i == 0 ? 0 : ps->offset[i];
        const int64_t limit = bp->count == 0 ? first_cap : cap;
        /* Close the bucket at tensor i when it is full (or at the start). */
        if (hi - lo >= limit || i == 0) {
            bp->b[bp->count++] = (grad_bucket){.lo = lo, .hi = hi, .first = i, .last = last};
            hi = lo;
            last = i - 1;
        }
    }
    bucket_finish(bp, ps->numel, p);
}

void bucket_plan_free(bucket_plan *bp) {
    if (!bp)
        return;
    free(bp->b);
    free(bp->bounds);
    bp->b = NULL;
    bp->bounds = NULL;
    bp->count = 0;
}
