/*
 * allreduce.h - ring all-reduce, reduce-scatter and all-gather on MPI
 * point-to-point messages, with a workspace allocated once.
 *
 * Accepts: any number of ranks p >= 1, any length n >= 0 (n < p, n prime,
 * n * sizeof(element) > 2^31 included), float32 (sum, average) and int64
 * (exact sum). Returns: the result in place in every rank's buffer, bitwise
 * identical on all ranks. Limits: every rank passes the same n; one call at a
 * time per ring (a ring is not thread-safe; make one ring per thread).
 *
 * The n elements are split into p chunks, the first n % p one element longer
 * (ring_chunk_range; Open MPI splits the same way). Rank r sends to r+1 and
 * receives from r-1 (mod p). Example: p = 3, chunks a b c; "b02" means
 * b0 + b2 where b0 is rank 0's chunk b:
 *
 *                 rank 0          rank 1          rank 2
 *   start         a0  b0  c0      a1  b1  c1      a2  b2  c2
 *
 *   reduce-scatter: p-1 steps; at step k rank r sends chunk r-k-1 and
 *   receives chunk r-k-2, adding it into its own copy.
 *   step 0        send c0         send a1         send b2
 *                 b := b0+b2      c := c1+c0      a := a2+a1
 *   step 1        send b02        send c01        send a12
 *                 a := a0+a12     b := b1+b02     c := c2+c01
 *   now rank r owns chunk r, summed over all ranks (average: times 1/p):
 *                 A   .   .       .   B   .       .   .   C
 *
 *   all-gather: p-1 steps; at step k rank r sends chunk r-k and receives
 *   chunk r-k-1 straight into its buffer.
 *   step 0        send A, get C   send B, get A   send C, get B
 *   step 1        send C, get B   send A, get C   send B, get A
 *   end           A   B   C       A   B   C       A   B   C
 *
 * Why the results are bitwise identical on every rank: each chunk is summed
 * exactly once, along one chain of ranks in one fixed order, by its owner's
 * ring predecessors; afterwards it is only copied. (They differ from
 * MPI_Allreduce's within rounding, since its order is another.)
 *
 * Large buffers: every chunk message is cut into segments of at most
 * `segment` elements. ring_reduce_scatter runs them as one pipeline through
 * all p-1 steps (allreduce_nb.h: segment s of step k+1 leaves as soon as
 * segment s of step k has been added, up to RING_WORK messages in flight
 * each way); the reference twin ring_reduce_scatter_ref finishes each step
 * before the next (the receive of segment s+1 is posted into the second
 * workspace buffer before segment s is added). No message count exceeds
 * INT_MAX. Waiting is plain MPI_Wait, no spinning of our own: when a node is
 * oversubscribed Open MPI sets mpi_yield_when_idle by itself, so a waiting
 * rank yields its core while it polls.
 *
 *   ring r;
 *   ring_init(&r, &c, params_count, 0);            // every rank, once
 *   ring_allreduce(&r, grads, n, RING_OP_AVG);     // every rank, each step
 *   ring_free(&r);                                 // every rank
 */
#ifndef HEED_DIST_ALLREDUCE_H
#define HEED_DIST_ALLREDUCE_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "dist/comm.h"

/* 256 KiB segments: long enough that per-message latency (a few us on
 * shared memory) is small against the copy, short enough that two of them
 * stay in cache while one is added. */
#define RING_SEGMENT_FLOATS_DEFAULT ((size_t)65536)

/* Receive buffers (and sends) in flight at once in the pipelined
 * reduce-scatter (allreduce_nb.h). */
enum { RING_WORK = 4 };

/* Below this many bytes ring_allreduce uses recursive doubling (log2 p
 * exchanges of the whole buffer) instead of the ring (2(p-1) messages):
 * there per-message latency, not bandwidth, is the cost. Capped by the
 * ring's segment, which is the workspace it reduces into. */
#define RING_SMALL_BYTES_DEFAULT ((size_t)32768)

/* From this many bytes up, ring_allreduce on one node reduces through a
 * shared-memory window instead of messages (allreduce_shm.c): every element
 * is copied in once, summed once by its owner straight from the other ranks'
 * slots (in the ring's order, so the bits equal the ring's), and copied out
 * once; no per-message handshakes. 512 KiB half-slots per rank: from 256 KiB
 * to 2 MiB, 512 was fastest at 1 to 16 MB on 2 and 4 ranks. */
#define RING_SHM_MIN_BYTES_DEFAULT ((size_t)65536)
#define RING_SHM_HALF_BYTES ((size_t)512 << 10)

typedef enum ring_type {
    RING_TYPE_F32 = 0,
    RING_TYPE_I64,
} ring_type;

typedef enum ring_op {
    RING_OP_SUM = 0, /* elementwise sum over ranks */
    RING_OP_AVG,     /* the sum times 1.0f/p, computed once by the chunk's owner */
} ring_op;

typedef struct ring {
    MPI_Comm mpi;          /* private duplicate of the comm's communicator; owned */
    int rank;              /* this rank, 0..size-1 */
    int size;              /* p */
    size_t segment_bytes;  /* bytes per reduce-scatter message; a multiple of 8 */
    size_t small_bytes;    /* ring_allreduce: recursive doubling up to this; <= segment_bytes */
    void *work[RING_WORK]; /* receive buffers of segment_bytes; owned */
    /* Shared-memory all-reduce (allreduce_shm.c), when every rank is on one
     * node: used by ring_allreduce above shm_min_bytes (SIZE_MAX: never). The
     * window is allocated at the first such call. */
    int single_node;
    size_t shm_min_bytes;
    MPI_Win shm_win;    /* MPI_WIN_NULL until allocated; owned */
    char **shm_slot;    /* p pointers: each rank's slot in the window; owned */
    size_t shm_half;    /* bytes of one half of a slot (double-buffered) */
    int shm_next;       /* the half the next block uses (alternates across calls) */
    uint64_t shm_syncs; /* syncs this rank has reached on the window */
} ring;

/* Prepares `r` (caller-owned storage) for reductions over the ranks of `c`:
 * duplicates c's communicator (so ring traffic never matches other messages
 * and `c` need not outlive `r`) and allocates the workspace, RING_WORK receive
 * buffers of S floats each, S = min(segment_floats, max(ceil(max_floats / p),
 * 1024)), rounded down to whole int64s (at least one). `max_floats` is the
 * largest n the ring is expected to see: it only sizes the workspace, and a
 * larger n still works, in more segments. `segment_floats` is the pipelining
 * segment, 0 for RING_SEGMENT_FLOATS_DEFAULT. Exits on allocation failure,
 * aborts the job on MPI failure. Collective: every rank of `c` must call
 * this. */
void ring_init(ring *r, const comm *c, size_t max_floats, size_t segment_floats);

/* Frees the workspace and the communicator of `r`; NULL or a freed ring is a
 * no-op. Collective: every rank of the ring must call this. */
void ring_free(ring *r);

/* The split rule: chunk `r` of `n` elements over `p` parts is [*lo, *hi).
 * The first n % p chunks hold n / p + 1 elements, the others n / p (empty
 * when n < p and r >= n). Pure; not collective. */
void ring_chunk_range(int64_t n, int p, int r, int64_t *lo, int64_t *hi);

/* Sums `buf` (n floats, caller-owned) over the ranks, leaving this rank's
 * chunk (ring_chunk_range(n, p, rank)) summed in place; the rest of `buf` is
 * left as scratch (partial sums). For an average, multiply the chunk by
 * 1.0f / p afterwards, which is exactly what ring_allreduce's RING_OP_AVG
 * does. Aborts the job on MPI failure. Collective: every rank must call this
 * with the same n. */
void ring_reduce_scatter(ring *r, float *buf, int64_t n);

/* Copies every rank's chunk of `buf` (n floats, caller-owned) to all ranks:
 * on return buf on every rank is the concatenation of each rank's own chunk.
 * Only this rank's chunk is read; other elements are overwritten. Aborts the
 * job on MPI failure. Collective: every rank must call this with the same n. */
void ring_allgather(ring *r, float *buf, int64_t n);

/* Reduces `buf` (n floats, caller-owned) in place over the ranks with `op`.
 * Up to r->small_bytes: recursive doubling (pairs exchange whole buffers and
 * both add; IEEE addition commutes, so both hold the same bits). From
 * r->shm_min_bytes on one node: ring_allreduce_shm. Otherwise the
 * pipelined ring reduce-scatter (allreduce_nb.h) then ring_allgather. The
 * result is bitwise identical on every rank; it equals ring_allreduce_ref's
 * bitwise above small_bytes and within rounding below. Aborts the job on MPI
 * failure. Collective: every rank must call this with the same n and op. */
void ring_allreduce(ring *r, float *buf, int64_t n, ring_op op);

/* The shared-memory path of ring_allreduce (float sum, bitwise equal to the
 * ring). Requires r->single_node. Collective. */
void ring_allreduce_shm(ring *r, float *buf, int64_t n);

/* The plain reference twins of the optimised paths: the step-by-step ring of
 * the diagram above (each step completes before the next), whatever n.
 * Tests compare the optimised forms with these. Same contracts. */
void ring_reduce_scatter_ref(ring *r, void *buf, int64_t n, ring_type t);
void ring_allreduce_ref(ring *r, float *buf, int64_t n, ring_op op);

/* The int64 forms: exact sums (wrapping modulo 2^64 on overflow, never
 * undefined), for fixed-point gradient accumulation. Same contracts as the
 * float forms above. Collective: every rank must call them with the same n. */
void ring_reduce_scatter_i64(ring *r, int64_t *buf, int64_t n);
void ring_allgather_i64(ring *r, int64_t *buf, int64_t n);
void ring_allreduce_i64(ring *r, int64_t *buf, int64_t n);

#endif
