/*
 * allreduce_nb.h - the ring reduce-scatter as a nonblocking operation that
 * the caller advances: over any chunk boundaries, on float32 or int64, one
 * segment-level pipeline through all p-1 ring steps.
 *
 * Why a state machine: MPI has no progress thread of its own here, so a
 * reduction overlapped with backward advances only when some thread calls
 * into MPI. ring_rs_progress (nonblocking) is that call: the backward hook
 * makes it after every tape entry, or grad_sync's progress thread between
 * short sleeps (grad_sync_thread.h). It posts what
 * can be posted, tests what is in flight, adds what has arrived, and returns.
 *
 * The schedule is that of allreduce.h (step k: rank r sends chunk r-k-1 and
 * receives chunk r-k-2, adding it into its copy), cut into segments of S
 * elements. Segment s of step k+1 is sent as soon as segment s of step k has
 * been received and added, not after the whole step: a bucket whose data all
 * belongs to one chunk (ZeRO shards are contiguous, see grad_sync.h) flows
 * through the ring as a pipeline instead of p-1 serial copies. Empty chunks
 * send no messages at all. Each element is still summed along one chain of
 * ranks in one order (its owner's predecessors, then its owner), so results
 * are bitwise those of ring_reduce_scatter_ref for the same boundaries.
 *
 * Up to RING_WORK receives and RING_WORK sends are in flight; receives land
 * in the ring's RING_WORK workspace buffers. Messages keep the ring's tag and
 * MPI's non-overtaking order matches them: both sides walk the same
 * (step, segment) sequence. One operation per ring at a time.
 *
 *   ring_rs op;
 *   ring_rs_start(&op, &r, buf, bounds, RING_TYPE_F32);   // every rank
 *   while (!ring_rs_progress(&op, false)) { ...compute... }
 *   // or ring_rs_progress(&op, true) to finish
 */
#ifndef HEED_DIST_ALLREDUCE_NB_H
#define HEED_DIST_ALLREDUCE_NB_H

#include <stdbool.h>
#include <stdint.h>

#include "dist/allreduce.h"

typedef struct ring_rs {
    ring *r;
    char *buf;             /* the whole buffer; chunk c is [bounds[c], bounds[c+1]) */
    const int64_t *bounds; /* p + 1 non-decreasing element offsets; caller-owned */
    ring_type type;
    int64_t seg; /* elements per segment */
    /* Next send, next receive to post, next receive to add: (step, segment). */
    int send_k, post_k, add_k;
    int64_t send_s, post_s, add_s;
    uint64_t posted, added; /* receives posted / added so far (slot = count % RING_WORK) */
    uint64_t sent, sends_done;
    MPI_Request recv_req[RING_WORK], send_req[RING_WORK];
    bool done;
} ring_rs;

/* Starts the reduce-scatter of `buf` over the ring with chunk c =
 * [bounds[c], bounds[c+1]) (c = 0..p-1; chunk c ends summed on rank c) and
 * posts its first messages. Collective in the MPI sense: every rank must
 * start the same sequence of operations with the same bounds. */
void ring_rs_start(ring_rs *op, ring *r, void *buf, const int64_t *bounds, ring_type type);

/* Advances `op`; with `block`, until it is complete. Returns true once
 * complete (then buf's chunk r holds the sum and op may be forgotten). */
bool ring_rs_progress(ring_rs *op, bool block);

/* The default boundaries of ring_chunk_range for n elements: out[0..p]. */
void ring_default_bounds(int64_t n, int p, int64_t *out);

#endif
