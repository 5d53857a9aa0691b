/*
 * allreduce_impl.h - element-type helpers shared by the ring's files
 * (allreduce.c, allreduce_nb.c). Internal: not part of the ring's API.
 */
#ifndef HEED_DIST_ALLREDUCE_IMPL_H
#define HEED_DIST_ALLREDUCE_IMPL_H

#include <mpi.h>
#include <stdint.h>

#include "dist/allreduce.h"

/* The ring's communicator is private, so any tag would do; a fixed one of its
 * own makes the ring's messages easy to pick out in an MPI trace. */
enum { RING_TAG = 0x4ee };

static inline size_t ring_type_size(ring_type t) {
    return t == RING_TYPE_I64 ? sizeof(int64_t) : sizeof(float);
}

static inline MPI_Datatype ring_type_mpi(ring_type t) {
    return t == RING_TYPE_I64 ? MPI_INT64_T : MPI_FLOAT;
}

/* dst[i] += src[i]. int64 adds as uint64 so overflow wraps instead of being
 * undefined behaviour (the exact-sum contract says modulo 2^64). */
static inline void ring_add(ring_type t, void *restrict dst, const void *restrict src,
                            int64_t count) {
    if (t == RING_TYPE_F32) {
        float *restrict d = dst;
        const float *restrict s = src;
        for (int64_t i = 0; i < count; i++)
            d[i] += s[i];
    } else {
        int64_t *restrict d = dst;
        const int64_t *restrict s = src;
        for (int64_t i = 0; i < count; i++)
            d[i] = (int64_t)((uint64_t)d[i] + (uint64_t)s[i]);
    }
}

/* (a mod p) in 0..p-1 for any a > -p. */
static inline int ring_mod(int a, int p) {
    return (a % p + p) % p;
}

/* The all-gather through the shared-memory window (allreduce_shm.c), on
 * elements of `es` bytes: one copy in, one sync, p-1 copies out per block.
 * Requires r->single_node. Collective. */
void ring_allgather_shm(ring *r, void *buf, int64_t n, size_t es);

/* Frees the shared-memory window of r, if any (allreduce_shm.c). */
void ring_shm_free(ring *r);

#endif
