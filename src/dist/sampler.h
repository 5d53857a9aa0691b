/*
 * sampler.h - which samples each rank trains on, step by step.
 *
 * The global order of an epoch is a pure function of (seed, epoch) - not of
 * the number of ranks, not of timing - so a run resumed on 8 ranks from a
 * checkpoint taken on 2 sees the same samples in the same global batches:
 *
 *     order(e)  = a permutation of [0, N): Fisher-Yates driven by the
 *                 counter-based RNG keyed by (seed, epoch), computed once per
 *                 epoch into an int64 array (O(N) memory)
 *     step k    = global positions [k*B, (k+1)*B) of order(e); the last step
 *                 of an epoch is smaller (N % B samples), or dropped with
 *                 drop_last
 *     rank r    = its chunk of the step by the split rule: chunk r of b over
 *                 p is [r*(b/p) + min(r, b%p), ...), so the first b%p ranks
 *                 get one sample more, and with b < p some ranks get none
 *
 *     global positions:  | step 0            | step 1            | ...
 *     p = 3, B = 8:      | r0 r0 r0 r1 r1 r1 r2 r2 | r0 r0 r0 ...
 *
 * So every sample is seen exactly once per epoch across ranks (N - N%B
 * times with drop_last), never padded with duplicates. Ranks whose share is
 * smaller (or empty) must weight their gradient by n_local / global_n, not
 * 1/p, for the average to be exact.
 *
 * Length bucketing (text): the shuffled order is cut into windows of W
 * global batches; each window is sorted by row length (ties by id), cut into
 * batches of B, and the full batches of the epoch are shuffled again with
 * (seed, epoch). Batches then hold rows of similar length (less padding)
 * and the order is still a pure function of (seed, epoch).
 *
 * A cursor (epoch, position) is where the next global batch starts: saving
 * it and resuming from it reproduces the uninterrupted run exactly.
 */
#ifndef HEED_DIST_SAMPLER_H
#define HEED_DIST_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sampler_options {
    uint64_t seed;
    int64_t batch_size;     /* B: the global batch, over all ranks (>= 1) */
    bool shuffle;           /* false: order(e) is 0, 1, ..., N-1 */
    bool drop_last;         /* drop the final global batch when smaller than B */
    int bucket_window;      /* W global batches per length window; 0: off */
    const int32_t *lengths; /* [N] row lengths for bucketing; borrowed */
} sampler_options;

typedef struct sampler_cursor {
    int64_t epoch;
    int64_t position; /* global position in the epoch's order */
} sampler_cursor;

typedef struct sampler {
    int64_t n, batch_size, epoch_len; /* epoch_len: N, or N - N%B with drop_last */
    uint64_t seed;
    bool shuffle;
    int bucket_window;
    const int32_t *lengths;
    int rank, size;
    int64_t order_epoch; /* the epoch `order` holds; -1: none */
    int64_t *order;      /* [N] */
    int64_t *scratch;    /* [N] bucketing: the windows sorted by length */
    int64_t *batch_perm; /* [N/B + 1] bucketing: the shuffled batch order */
} sampler;

/* Sets up a sampler of `n` samples for rank `rank` of `size`. Returns 0, or
 * -1 with a message in err[0..errlen) for a bad configuration (B < 1, n <
 * 1, drop_last with n < B, bucketing without lengths): the caller's user
 * gave bad options. Allocates nothing on failure. Not collective. */
int sampler_init(sampler *s, int64_t n, const sampler_options *opt, int rank, int size, char *err,
                 size_t errlen);
void sampler_free(sampler *s);

/* Global batches per epoch: ceil(epoch_len / B). */
int64_t sampler_steps_per_epoch(const sampler *s);

/* The most samples a rank gets in one global batch: ceil(B / size). */
int sampler_max_local(const sampler *s);

/* The sample at global `position` in [0, N) of the order of `epoch`
 * (positions past epoch_len are the dropped ones). Computes the epoch's
 * order on first use (O(N)); later calls for that epoch are O(1). */
int64_t sampler_index(sampler *s, int64_t epoch, int64_t position);

/* The global batch at *c: positions [c->position, c->position + b), b =
 * min(B, epoch_len - position), after moving a cursor at or past the end of
 * its epoch to the start of the next. Writes this rank's ids (its chunk by
 * the split rule) to ids[0..return), the global b to *global_n, and moves
 * *c past the batch (to the next epoch after its last). */
int sampler_next(sampler *s, sampler_cursor *c, int64_t *ids, int64_t *global_n);

/* Chunk r of n over p by the split rule: [r*(n/p) + min(r, n%p), +n/p
 * (+1 if r < n%p)). Evaluation uses it for each rank's contiguous range of a
 * split (every sample once, no padding duplicates). */
void sampler_split_range(int64_t n, int p, int r, int64_t *begin, int64_t *end);

#endif
