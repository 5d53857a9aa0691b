/*
 * bucket.h - the gradient buffer cut into buckets for overlapped reduction.
 *
 * A bucket is a contiguous range [lo, hi) of the flat gradient buffer
 * (params.h) made of whole parameter tensors (and the padding after them).
 * Buckets are numbered in the order backward finishes them: bucket 0 holds
 * the LAST tensors of the buffer (the head of the model, whose gradients
 * backward produces first), bucket count-1 starts at offset 0. Together they
 * tile [0, numel). Bucket 0 is small (first_bytes) so that communication
 * starts early in backward; the others hold about bucket_bytes each (a
 * tensor larger than that is a bucket of its own).
 *
 * Every rank builds the same plan from the same parameters, and every rank
 * reduces the buckets in plan order (0, 1, ...), whatever order its own
 * backward finishes them in: that keeps the ring's messages matched.
 *
 * Each bucket is reduce-scattered over the SAME chunk boundaries as the whole
 * buffer would be (ring_chunk_range over [0, numel), clamped to the bucket):
 * rank r's ZeRO shard stays one contiguous [lo, hi), Adam and the parameter
 * all-gather stay flat loops, and every element is summed along the same
 * chain of ranks as in one big reduce-scatter, so bucketed and unbucketed
 * gradients are bitwise equal.
 */
#ifndef HEED_DIST_BUCKET_H
#define HEED_DIST_BUCKET_H

#include <stddef.h>
#include <stdint.h>

#include "core/params.h"

typedef struct grad_bucket {
    int64_t lo, hi;        /* element range of the gradient buffer */
    int first, last;       /* tensors first..last (indices into ps->tensors) */
    const int64_t *bounds; /* p + 1 chunk boundaries within [lo, hi) (into plan.bounds) */
} grad_bucket;

typedef struct bucket_plan {
    int count;
    int ranks;
    grad_bucket *b;  /* count buckets; owned */
    int64_t *bounds; /* count * (ranks + 1); owned */
} bucket_plan;

/* Default sizes: 1 MiB first bucket, 4 MiB after (--bucket-kb sets the
 * latter; the first is min(1 MiB, bucket)). */
enum { BUCKET_KB_DEFAULT = 4096, BUCKET_FIRST_KB_MAX = 1024 };

/* Builds the plan for ps over p ranks. bucket_bytes 0: one bucket holding
 * everything. Pure and deterministic: the same on every rank. */
void bucket_plan_build(bucket_plan *bp, const params *ps, size_t bucket_bytes, int p);

/* Plan with one bucket [0, n) (no tensor structure), for callers without
 * params. */
void bucket_plan_single(bucket_plan *bp, int64_t n, int p);

void bucket_plan_free(bucket_plan *bp);

#endif
