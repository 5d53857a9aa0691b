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
 * copy-out, so block k+2 may reuse the half). A sync is a barrier on
 * counters in the window (one cache line per rank after its slot): each rank
 * publishes how many syncs it has reached with a release store and waits for
 * every other rank's count with acquire loads, so the stores before a sync
 * are visible after it. MPI_Barrier did the same at 3-5 us a call on one
 * node, which at 64 KB to 1 MB was a third of the time; spinning on a line
 * costs well under a microsecond while every rank has a core, and yields
 * the core after a few spins when ranks share cores.
 *
 * Per element each rank writes it once in, reads it p times spread over the
 * owners, and reads and writes it once out: no message fragments, no
 * handshakes.
 */
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/fastmath.h"
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

/* Rank q's sync counter: the line after its two halves. */
static _Atomic uint64_t *sync_count(ring *r, int q) {
    return (_Atomic uint64_t *)(r->shm_slot[q] + 2 * r->shm_half);
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
    /* two halves, then the line of this rank's sync counter */
    HEED_MPI_CHECK(MPI_Win_allocate_shared((MPI_Aint)(2 * r->shm_half + 64), 1, info, r->mpi, &base,
                                           &r->shm_win));
    HEED_MPI_CHECK(MPI_Info_free(&info));
    r->shm_slot = xmalloc(sizeof *r->shm_slot * (size_t)p);
    for (int q = 0; q < p; q++) {
        MPI_Aint size;
        int disp;
        HEED_MPI_CHECK(MPI_Win_shared_query(r->shm_win, q, &size, &disp, &r->shm_slot[q]));
    }
    HEED_MPI_CHECK(MPI_Win_lock_all(MPI_MODE_NOCHECK, r->shm_win));
    atomic_store_explicit(sync_count(r, r->rank), 0, memory_order_relaxed);
    r->shm_syncs = 0;
    /* every counter is zero before anyone counts */
    HEED_MPI_CHECK(MPI_Win_sync(r->shm_win));
    HEED_MPI_CHECK(MPI_Barrier(r->mpi));
    HEED_MPI_CHECK(MPI_Win_sync(r->shm_win));
}

/* own = own + t, and t = that: the sum goes to the buffer and to the half,
 * where the other ranks copy it from. */
HEED_SIMD_CLONES static void add_publish(float *restrict own, float *restrict t, int64_t m) {
    for (int64_t i = 0; i < m; i++) {
        own[i] = own[i] + t[i];
        t[i] = own[i];
    }
}

/* Spins on a counter before yielding the core: about a microsecond. */
enum { SHM_SPINS = 128 };

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static void shm_sync(ring *r) {
    const uint64_t reached = ++r->shm_syncs;
    atomic_store_explicit(sync_count(r, r->rank), reached, memory_order_release);
    for (int q = 0; q < r->size; q++) {
        if (q == r->rank)
            continue;
        _Atomic uint64_t *c = sync_count(r, q);
        /* >=: q may already have reached the next sync, never a later one */
        for (int spins = 0; atomic_load_explicit(c, memory_order_acquire) < reached; spins++) {
            if (spins < SHM_SPINS)
                cpu_relax();
            else
                sched_yield();
        }
    }
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
         * its own half (free: no input was copied there) and into buf: one
         * pass per term over the whole piece, at most a half / p. The first
         * term is fetched with memcpy, which pulls lines another core just
         * wrote at twice the speed of a loop's loads (4 vs 10 us for 32 KB on
         * the VMs measured); cut into 8 KB runs, as the loop once was, the
         * memcpys lost that and 1 MB took 2.5x longer. */
        {
            int64_t lo, hi;
            ring_chunk_range(n, p, me, &lo, &hi);
            const int64_t a = lo + k * P, b = a + P < hi ? a + P : hi;
            const int64_t off = (int64_t)me * P;
            if (a < b) {
                /* x[c+1] + x[c+2] + ... + own, as the ring adds (a + b
                 * == b + a in floats, so the first two in either order). */
                float *t = mine + off;
                memcpy(t, (const float *)(r->shm_slot[(me + 1) % p] + half) + off,
                       sizeof(float) * (size_t)(b - a));
                for (int j = 2; j < p; j++)
                    ring_add(RING_TYPE_F32, t,
                             r->shm_slot[(me + j) % p] + half + sizeof(float) * (size_t)off, b - a);
                add_publish(buf + a, t, b - a);
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
