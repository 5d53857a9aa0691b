/*
 * allreduce_nb.c - the pipelined, nonblocking ring reduce-scatter of
 * allreduce_nb.h.
 */
#include "dist/allreduce_nb.h"

#include "dist/allreduce_impl.h"
#include "dist/check_dist.h"

void ring_default_bounds(int64_t n, int p, int64_t *out) {
    for (int c = 0; c < p; c++) {
        int64_t hi;
        ring_chunk_range(n, p, c, &out[c], &hi);
    }
    out[p] = n;
}

/* Segments of chunk c. */
static int64_t rs_nseg(const ring_rs *op, int c) {
    int64_t len = op->bounds[c + 1] - op->bounds[c];
    return (len + op->seg - 1) / op->seg;
}

/* Offset and length of segment s of chunk c. */
static void rs_segment(const ring_rs *op, int c, int64_t s, int64_t *off, int *len) {
    int64_t start = op->bounds[c] + s * op->seg, count = op->bounds[c + 1] - start;
    *off = start;
    *len = (int)(count < op->seg ? count : op->seg);
}

/* The chunk this rank sends at step k, and the one it receives (which it
 * sends at step k + 1). */
static int rs_send_chunk(const ring_rs *op, int k) {
    return ring_mod(op->r->rank - k - 1, op->r->size);
}
static int rs_recv_chunk(const ring_rs *op, int k) {
    return ring_mod(op->r->rank - k - 2, op->r->size);
}

/* Moves (k, s) to the next segment of the sequence whose chunk at step k is
 * chunk_of(k), skipping steps with empty chunks; k == p - 1 is the end. */
static void rs_next(const ring_rs *op, int *k, int64_t *s, bool send, bool advance) {
    const int steps = op->r->size - 1;
    if (advance)
        (*s)++;
    while (*k < steps && *s >= rs_nseg(op, send ? rs_send_chunk(op, *k) : rs_recv_chunk(op, *k))) {
        (*k)++;
        *s = 0;
    }
}

void ring_rs_start(ring_rs *op, ring *r, void *buf, const int64_t *bounds, ring_type type) {
    HEED_ASSERT(op && r && bounds);
    *op = (ring_rs){.r = r, .buf = buf, .bounds = bounds, .type = type};
    op->seg = (int64_t)(r->segment_bytes / ring_type_size(type));
    for (int w = 0; w < RING_WORK; w++)
        op->recv_req[w] = op->send_req[w] = MPI_REQUEST_NULL;
    rs_next(op, &op->send_k, &op->send_s, true, false);
    rs_next(op, &op->post_k, &op->post_s, false, false);
    rs_next(op, &op->add_k, &op->add_s, false, false);
    op->done = r->size == 1;
    ring_rs_progress(op, false);
}

/* Segment s of step k (k >= 1) may be sent once segment s of step k - 1 has
 * been received and added: it is the same chunk. */
static bool rs_send_ready(const ring_rs *op) {
    if (op->send_k == 0)
        return true;
    return op->add_k > op->send_k - 1 || (op->add_k == op->send_k - 1 && op->add_s > op->send_s);
}

bool ring_rs_progress(ring_rs *op, bool block) {
    if (op->done)
        return true;
    ring *r = op->r;
    const int p = r->size, steps = p - 1;
    const int right = (r->rank + 1) % p, left = (r->rank + p - 1) % p;
    const size_t es = ring_type_size(op->type);
    const MPI_Datatype dt = ring_type_mpi(op->type);
    for (;;) {
        bool moved = false;
        int flag;
        while (op->sends_done < op->sent) {
            HEED_MPI_CHECK(
                MPI_Test(&op->send_req[op->sends_done % RING_WORK], &flag, MPI_STATUS_IGNORE));
            if (!flag)
                break;
            op->sends_done++;
            moved = true;
        }
        while (op->post_k < steps && op->posted - op->added < RING_WORK) {
            int64_t off;
            int len;
            rs_segment(op, rs_recv_chunk(op, op->post_k), op->post_s, &off, &len);
            int w = (int)(op->posted % RING_WORK);
            HEED_MPI_CHECK(
                MPI_Irecv(r->work[w], len, dt, left, RING_TAG, r->mpi, &op->recv_req[w]));
            op->posted++;
            rs_next(op, &op->post_k, &op->post_s, false, true);
            moved = true;
        }
        while (op->send_k < steps && op->sent - op->sends_done < RING_WORK && rs_send_ready(op)) {
            int64_t off;
            int len;
            rs_segment(op, rs_send_chunk(op, op->send_k), op->send_s, &off, &len);
            HEED_MPI_CHECK(MPI_Isend(op->buf + (size_t)off * es, len, dt, right, RING_TAG, r->mpi,
                                     &op->send_req[op->sent % RING_WORK]));
            op->sent++;
            rs_next(op, &op->send_k, &op->send_s, true, true);
            moved = true;
        }
        while (op->added < op->posted) {
            int w = (int)(op->added % RING_WORK);
            HEED_MPI_CHECK(MPI_Test(&op->recv_req[w], &flag, MPI_STATUS_IGNORE));
            if (!flag)
                break;
            int64_t off;
            int len;
            rs_segment(op, rs_recv_chunk(op, op->add_k), op->add_s, &off, &len);
            ring_add(op->type, op->buf + (size_t)off * es, r->work[w], len);
            op->added++;
            rs_next(op, &op->add_k, &op->add_s, false, true);
            moved = true;
        }
        if (op->add_k == steps && op->send_k == steps && op->sends_done == op->sent) {
            op->done = true;
            return true;
        }
        if (moved)
            continue;
        if (!block)
            return false;
        /* Nothing can move until a message completes: wait for the oldest.
         * This cannot deadlock: our oldest receive (step k) is fed by the
         * left neighbour's send of step k, which depends on its own receive
         * of step k-1, and so on back to step 0 on rank r-k-1, never on this
         * rank (k + 1 < p); and the left neighbour's older sends, which could
         * hold up its window, match receives we have already completed. */
        if (op->added < op->posted)
            HEED_MPI_CHECK(MPI_Wait(&op->recv_req[op->added % RING_WORK], MPI_STATUS_IGNORE));
        else
            HEED_MPI_CHECK(MPI_Wait(&op->send_req[op->sends_done % RING_WORK], MPI_STATUS_IGNORE));
    }
}
