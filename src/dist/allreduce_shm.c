/*
 * allreduce_shm.c - all-reduce through an MPI-3 shared-memory window, for
 * ranks that share one node.
 *
 * Every rank has a slot of two halves; a half holds one "block": piece k of
 * every rank's chunk (chunk c = ring_chunk_range(n, p, c), piece k = its
 * elements [k P, (k+1) P), P = half / (p * 4) floats). For block k:
 *
 *   1. every rank copies the p-1 pieces of its buffer that others own into
 *      its half (k mod 2), each at the owner's position;
 *   2. sync; rank c sums piece c over all slots in the ring's order
 *      (x[c+1], then x[c+2] + acc, ..., x[c] + acc with its own x[c] read
 *      from its buffer: the chain its ring predecessors would add along, so
 *      the bits equal ring_allreduce_ref's) and writes the sum to its buffer
 *      and to position c of its own half (unused so far);
 *   3. sync; every rank copies piece q of slot q, for every q != itself,
 *      into its buffer.
 *
 * The halves alternate, across calls too, so copying block k out and block
 * k+1 in never touch the same memory and two syncs per block suffice (the
 * sync after block k+1's copy-in comes after every rank finished block k's
 * copy-out, so block k+2 may reuse the half). A sync is MPI_Win_sync, MPI_Barrier, MPI_Win_sync
 * (the unified memory model's rule for load/store access by several
 * processes). Per element each rank writes it once in, reads it p times
 * spread over the owners, and reads and writes it once out: no message
 * fragments, no handshakes.
 */
#include <stdlib.h>
#include <string.h>

#include "dist/allreduce.h"
#include "dist/allreduce_impl.h"
#include "dist/check_dist.h"

void ring_shm_free(ring *r) {
    if (r->shm_win != MPI_WIN_NULL && r->shm_win != (MPI_Win)0) {
        HEED_MPI_CHECK(MPI_Win_unlock_all(r->shm_win));
        HEED_MPI_CHECK(MPI_Win_free(&r->shm_win));
    }
    r->shm_win = MPI_WIN_NULL;
    free(r->shm_slot);
    r->shm_slot = NULL;
}

static void shm_alloc(ring *r) {
    const int p = r->size;
    /* A half holds p pieces of whole 64-byte lines. */
    size_t piece = RING_SHM_HALF_BYTES / (size_t)p / 64 * 64;
    if (piece < 64)
        piece = 64;
    r->shm_half = piece * (size_t)p;
    char *base = NULL;
    MPI_Info info;
    HEED_MPI_CHECK(MPI_Info_create(&info));
    /* Slots need not be contiguous across ranks: let each live near its
     * owner. */
    HEED_MPI_CHECK(MPI_Info_set(info, "alloc_shared_noncontig", "true"));
    HEED_MPI_CHECK(
        MPI_Win_allocate_shared((MPI_Aint)(2 * r->shm_half), 1, info, r->mpi, &base, &r->shm_win));
    HEED_MPI_CHECK(MPI_Info_free(&info));
    r->shm_slot = xmalloc(sizeof *r->shm_slot * (size_t)p);
    for (int q = 0; q < p; q++) {
        MPI_Aint size;
        int disp;
        HEED_MPI_CHECK(MPI_Win_shared_query(r->shm_win, q, &size, &disp, &r->shm_slot[q]));
    }
    HEED_MPI_CHECK(MPI_Win_lock_all(MPI_MODE_NOCHECK, r->shm_win));
}

static void shm_sync(ring *r) {
    HEED_MPI_CHECK(MPI_Win_sync(r->shm_win));
    HEED_MPI_CHECK(MPI_Barrier(r->mpi));
    HEED_MPI_CHECK(MPI_Win_sync(r->shm_win));
}

void ring_allreduce_shm(ring *r, float *buf, int64_t n) {
    HEED_ASSERT(r->single_node);
    const int p = r->size, me = r->rank;
    if (p == 1 || n == 0)
        return;
    if (r->shm_win == MPI_WIN_NULL)
        shm_alloc(r);
    const int64_t P = (int64_t)(r->shm_half / (size_t)p / sizeof(float));
    int64_t lo0, hi0;
    ring_chunk_range(n, p, 0, &lo0, &hi0);
    const int64_t blocks = (hi0 - lo0 + P - 1) / P;
    for (int64_t k = 0; k < blocks; k++) {
        const size_t half = (size_t)(r->shm_next & 1) * r->shm_half;
        r->shm_next ^= 1;
        /* 1. Copy in: piece k of every other rank's chunk, at position c of
         * the half (this rank's own piece is read from buf directly). */
        float *mine = (float *)(r->shm_slot[me] + half);
        for (int c = 0; c < p; c++) {
            int64_t lo, hi;
            ring_chunk_range(n, p, c, &lo, &hi);
            int64_t a = lo + k * P, b = a + P < hi ? a + P : hi;
            if (c != me && a < b)
                memcpy(mine + (int64_t)c * P, buf + a, sizeof(float) * (size_t)(b - a));
        }
        shm_sync(r);
        /* 2. Reduce this rank's piece in the ring's order into position me of
         * its own half (free: no input was copied there), in runs that stay
         * in L1, and into buf. */
        {
            int64_t lo, hi;
            ring_chunk_range(n, p, me, &lo, &hi);
            int64_t a = lo + k * P, b = a + P < hi ? a + P : hi;
            const int64_t off = (int64_t)me * P;
            float *acc = mine + off;
            enum { RUN = 2048 }; /* floats: 8 KiB */
            for (int64_t s0 = 0; s0 < b - a; s0 += RUN) {
                const int64_t m = b - a - s0 < RUN ? b - a - s0 : RUN;
                float *restrict t = acc + s0;
                float *restrict own = buf + a + s0;
                const float *restrict x1 =
                    (const float *)(r->shm_slot[(me + 1) % p] + half) + off + s0;
                if (p == 2) {
                    /* own + x[c+1] in one pass: no copy of x[c+1] first */
                    for (int64_t i = 0; i < m; i++) {
                        own[i] = own[i] + x1[i];
                        t[i] = own[i];
                    }
                    continue;
                }
                /* the first two terms in one pass, then the rest */
                const float *restrict x2 =
                    (const float *)(r->shm_slot[(me + 2) % p] + half) + off + s0;
                for (int64_t i = 0; i < m; i++)
                    t[i] = x2[i] + x1[i];
                for (int j = 3; j < p; j++) {
                    const float *restrict x =
                        (const float *)(r->shm_slot[(me + j) % p] + half) + off + s0;
                    for (int64_t i = 0; i < m; i++)
                        t[i] = x[i] + t[i];
                }
                for (int64_t i = 0; i < m; i++) {
                    own[i] = own[i] + t[i];
                    t[i] = own[i];
                }
            }
        }
        shm_sync(r);
        /* 3. Copy out the other ranks' reduced pieces. */
        for (int c = 0; c < p; c++) {
            int64_t lo, hi;
            ring_chunk_range(n, p, c, &lo, &hi);
            int64_t a = lo + k * P, b = a + P < hi ? a + P : hi;
            if (c != me && a < b)
                memcpy(buf + a, (const float *)(r->shm_slot[c] + half) + (int64_t)c * P,
                       sizeof(float) * (size_t)(b - a));
        }
    }
    /* No sync at the end: the halves keep alternating across calls, so the
     * next call's first block writes the half whose last copy-out every rank
     * finished before the sync after this call's last copy-in. */
}

/* The all-gather: block k holds piece k of every rank's chunk, each at its
 * owner's position; only the owner writes its piece, so one sync per block
 * separates the copy-in from the copy-out (the halves alternate as above). */
void ring_allgather_shm(ring *r, void *buf, int64_t n, size_t es) {
    HEED_ASSERT(r->single_node);
    const int p = r->size, me = r->rank;
    if (p == 1 || n == 0)
        return;
    if (r->shm_win == MPI_WIN_NULL)
        shm_alloc(r);
    char *bytes = buf;
    const int64_t P = (int64_t)(r->shm_half / (size_t)p / es);
    int64_t lo0, hi0;
    ring_chunk_range(n, p, 0, &lo0, &hi0);
    const int64_t blocks = (hi0 - lo0 + P - 1) / P;
    for (int64_t k = 0; k < blocks; k++) {
        const size_t half = (size_t)(r->shm_next & 1) * r->shm_half;
        r->shm_next ^= 1;
        int64_t lo, hi;
        ring_chunk_range(n, p, me, &lo, &hi);
        int64_t a = lo + k * P, b = a + P < hi ? a + P : hi;
        if (a < b)
            memcpy(r->shm_slot[me] + half + (size_t)(me * P) * es, bytes + (size_t)a * es,
                   es * (size_t)(b - a));
        shm_sync(r);
        for (int c = 0; c < p; c++) {
            ring_chunk_range(n, p, c, &lo, &hi);
            a = lo + k * P;
            b = a + P < hi ? a + P : hi;
            if (c != me && a < b)
                memcpy(bytes + (size_t)a * es, r->shm_slot[c] + half + (size_t)(c * P) * es,
                       es * (size_t)(b - a));
        }
    }
}
