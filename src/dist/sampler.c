#include "dist/sampler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/rng.h"

/* Stream ids under rng_key(seed, epoch, ·): the permutation, and the
 * shuffle of bucketed batches. */
enum { SAMPLER_STREAM_PERM = 0x5a3d01, SAMPLER_STREAM_BATCHES = 0x5a3d02 };

void sampler_split_range(int64_t n, int p, int r, int64_t *begin, int64_t *end) {
    int64_t q = n / p, rem = n % p;
    *begin = r * q + (r < rem ? r : rem);
    *end = *begin + q + (r < rem ? 1 : 0);
}

int sampler_init(sampler *s, int64_t n, const sampler_options *opt, int rank, int size, char *err,
                 size_t errlen) {
    memset(s, 0, sizeof *s);
    HEED_ASSERT(size >= 1 && rank >= 0 && rank < size);
    if (n < 1) {
        snprintf(err, errlen, "the split is empty: nothing to sample");
        return -1;
    }
    if (opt->batch_size < 1) {
        snprintf(err, errlen, "batch size %lld: expected at least 1", (long long)opt->batch_size);
        return -1;
    }
    if (opt->drop_last && n < opt->batch_size) {
        snprintf(err, errlen,
                 "batch size %lld is larger than the split's %lld samples, and drop_last would "
                 "drop them all",
                 (long long)opt->batch_size, (long long)n);
        return -1;
    }
    if (opt->bucket_window < 0 || (opt->bucket_window > 0 && !opt->lengths)) {
        snprintf(err, errlen,
                 "length bucketing needs a window >= 1 and the rows' lengths (text data, "
                 "value scan not skipped)");
        return -1;
    }
    s->n = n;
    s->batch_size = opt->batch_size;
    s->epoch_len = opt->drop_last ? n - n % opt->batch_size : n;
    s->seed = opt->seed;
    s->shuffle = opt->shuffle;
    s->bucket_window = opt->bucket_window;
    s->lengths = opt->lengths;
    s->rank = rank;
    s->size = size;
    s->order_epoch = -1;
    if (s->shuffle || s->bucket_window > 0)
        s->order = xmalloc(sizeof(int64_t) * (size_t)n);
    if (s->bucket_window > 0) {
        s->scratch = xmalloc(sizeof(int64_t) * (size_t)n);
        s->batch_perm = xmalloc(sizeof(int64_t) * (size_t)(n / s->batch_size + 1));
    }
    return 0;
}

void sampler_free(sampler *s) {
    free(s->order);
    free(s->scratch);
    free(s->batch_perm);
    memset(s, 0, sizeof *s);
}

int64_t sampler_steps_per_epoch(const sampler *s) {
    return (s->epoch_len + s->batch_size - 1) / s->batch_size;
}

int sampler_max_local(const sampler *s) {
    return (int)((s->batch_size + s->size - 1) / s->size);
}

/* Uniform in [0, bound) from 64 random bits by multiply-high: bias below
 * bound / 2^64, far below anything a training run can see. */
static int64_t below(uint64_t bits, int64_t bound) {
    __extension__ typedef unsigned __int128 u128;
    return (int64_t)(((u128)bits * (u128)bound) >> 64);
}

static void shuffle(int64_t *a, int64_t n, uint64_t key) {
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = below(rng_bits(key, (uint64_t)i), i + 1);
        int64_t t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

/* qsort has no context argument: sort (length, id) pairs packed in one
 * int64 instead (lengths < 2^23 and ids < 2^40 by the format's limits). */
static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void bucket(sampler *s, int64_t epoch) {
    int64_t b = s->batch_size, full = s->n - s->n % b; /* the tail stays last */
    int64_t window = (int64_t)s->bucket_window * b;
    int64_t *o = s->order, *w = s->scratch;
    const int64_t id_bits = 40;
    HEED_ASSERT(s->n < ((int64_t)1 << id_bits));
    for (int64_t w0 = 0; w0 < full; w0 += window) {
        int64_t w1 = w0 + window < full ? w0 + window : full;
        for (int64_t i = w0; i < w1; i++)
            w[i] = ((int64_t)s->lengths[o[i]] << id_bits) | o[i];
        qsort(w + w0, (size_t)(w1 - w0), sizeof(int64_t), cmp_i64);
        for (int64_t i = w0; i < w1; i++)
            w[i] &= ((int64_t)1 << id_bits) - 1;
    }
    /* Shuffle the order of the full batches: batch k of the result is batch
     * perm[k] of the sorted windows. */
    int64_t nb = full / b, *perm = s->batch_perm;
    for (int64_t k = 0; k < nb; k++)
        perm[k] = k;
    if (s->shuffle)
        shuffle(perm, nb, rng_key(s->seed, (uint64_t)epoch, SAMPLER_STREAM_BATCHES));
    for (int64_t k = 0; k < nb; k++)
        memcpy(o + k * b, w + perm[k] * b, sizeof(int64_t) * (size_t)b);
    /* o[full..n) still holds the shuffled tail. */
}

static void compute_order(sampler *s, int64_t epoch) {
    for (int64_t i = 0; i < s->n; i++)
        s->order[i] = i;
    if (s->shuffle)
        shuffle(s->order, s->n, rng_key(s->seed, (uint64_t)epoch, SAMPLER_STREAM_PERM));
    if (s->bucket_window > 0)
        bucket(s, epoch);
    s->order_epoch = epoch;
}

int64_t sampler_index(sampler *s, int64_t epoch, int64_t position) {
    HEED_ASSERT(position >= 0 && position < s->n && epoch >= 0);
    if (!s->order)
        return position;
    if (s->order_epoch != epoch)
        compute_order(s, epoch);
    return s->order[position];
}

int sampler_next(sampler *s, sampler_cursor *c, int64_t *ids, int64_t *global_n) {
    if (c->position >= s->epoch_len) {
        c->epoch++;
        c->position = 0;
    }
    int64_t b =
        s->epoch_len - c->position < s->batch_size ? s->epoch_len - c->position : s->batch_size;
    int64_t lo, hi;
    sampler_split_range(b, s->size, s->rank, &lo, &hi);
    for (int64_t i = lo; i < hi; i++)
        ids[i - lo] = sampler_index(s, c->epoch, c->position + i);
    *global_n = b;
    c->position += b;
    if (c->position >= s->epoch_len) {
        c->epoch++;
        c->position = 0;
    }
    return (int)(hi - lo);
}
