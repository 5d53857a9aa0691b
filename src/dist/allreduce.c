/*
 * allreduce.c - the ring of allreduce.h. One generic reduce-scatter and one
 * generic all-gather work on bytes; a small element-type switch supplies the
 * MPI datatype, the element size and the addition, so float32 and int64 share
 * every line of the message schedule.
 */
#include "dist/allreduce.h"

#include <limits.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "dist/allreduce_impl.h"
#include "dist/allreduce_nb.h"
#include "dist/check_dist.h"

/* The smallest segment ring_init picks by itself (4 KiB). */
enum { RING_SEGMENT_FLOATS_MIN = 1024 };

void ring_chunk_range(int64_t n, int p, int r, int64_t *lo, int64_t *hi) {
    HEED_ASSERT(n >= 0 && p >= 1 && r >= 0 && r < p);
    int64_t base = n / p, extra = n % p;
    int64_t start = (int64_t)r * base + (r < extra ? r : extra);
    *lo = start;
    *hi = start + base + (r < extra ? 1 : 0);
}

void ring_init(ring *r, const comm *c, size_t max_floats, size_t segment_floats) {
    HEED_ASSERT(r != NULL && c != NULL);
    memset(r, 0, sizeof *r);
    HEED_MPI_CHECK(MPI_Comm_dup(c->mpi, &r->mpi));
    HEED_MPI_CHECK(MPI_Comm_rank(r->mpi, &r->rank));
    HEED_MPI_CHECK(MPI_Comm_size(r->mpi, &r->size));

    /* No reduce-scatter message is longer than the largest chunk, so a
     * segment beyond ceil(max_floats / p) would only waste memory. But never
     * below 4 KiB unless asked: a ring sized for a few floats and then given
     * a long buffer would crawl through 8-byte messages. */
    size_t seg = segment_floats ? segment_floats : RING_SEGMENT_FLOATS_DEFAULT;
    size_t chunk_max = max_floats / (size_t)r->size + (max_floats % (size_t)r->size != 0);
    if (chunk_max < RING_SEGMENT_FLOATS_MIN)
        chunk_max = RING_SEGMENT_FLOATS_MIN;
    if (chunk_max < seg)
        seg = chunk_max;
    /* A whole number of int64s, at least one; and each message count fits
     * in an int. */
    size_t bytes = seg * sizeof(float);
    if (bytes > (size_t)INT_MAX)
        bytes = (size_t)INT_MAX;
    bytes = bytes / sizeof(int64_t) * sizeof(int64_t);
    if (bytes < sizeof(int64_t))
        bytes = sizeof(int64_t);
    r->segment_bytes = bytes;
    /* 64-byte alignment keeps the vectorised addition on whole cache lines. */
    size_t alloc = (bytes + 63) / 64 * 64;
    for (int w = 0; w < RING_WORK; w++)
        r->work[w] = xaligned_alloc(64, alloc);
    r->small_bytes = RING_SMALL_BYTES_DEFAULT < bytes ? RING_SMALL_BYTES_DEFAULT : bytes;
    r->single_node = c->num_nodes == 1;
    /* HEED_NO_SHM=1 keeps every path on messages (a fallback for systems
     * whose MPI cannot allocate shared windows). */
    const char *no_shm = getenv("HEED_NO_SHM");
    if (no_shm && no_shm[0] && strcmp(no_shm, "0") != 0)
        r->single_node = 0;
    r->shm_min_bytes = r->single_node ? RING_SHM_MIN_BYTES_DEFAULT : SIZE_MAX;
    r->shm_win = MPI_WIN_NULL;
}

void ring_free(ring *r) {
    if (!r)
        return;
    for (int w = 0; w < RING_WORK; w++) {
        free(r->work[w]);
        r->work[w] = NULL;
    }
    ring_shm_free(r);
    if (r->mpi != MPI_COMM_NULL && r->mpi != (MPI_Comm)0)
        HEED_MPI_CHECK(MPI_Comm_free(&r->mpi));
    r->mpi = MPI_COMM_NULL;
}

/* Segment s of chunk [lo, hi) with segments of `seg` elements: its offset
 * into the buffer and its length (0 when the chunk is shorter than the
 * longest one and s is its last segment, or when the chunk is empty). */
static void ring_segment(int64_t lo, int64_t hi, int64_t seg, int64_t s, int64_t *off, int *len) {
    int64_t start = lo + s * seg;
    int64_t count = hi - start;
    if (count > seg)
        count = seg;
    if (count < 0)
        count = 0;
    *off = start;
    *len = (int)count;
}

/* The reference reduce-scatter of allreduce.h on `n` elements of type `t`:
 * each step completes before the next starts. Every step
 * runs the same number of segments on every rank (that of chunk 0, the
 * longest), so sender and receiver always agree on each message's length;
 * a shorter chunk just sends an empty last segment. */
void ring_reduce_scatter_ref(ring *r, void *buf, int64_t n, ring_type t) {
    HEED_ASSERT(r != NULL && n >= 0 && (buf != NULL || n == 0));
    const int p = r->size;
    if (p == 1 || n == 0)
        return;
    const size_t es = ring_type_size(t);
    const MPI_Datatype dt = ring_type_mpi(t);
    const int64_t seg = (int64_t)(r->segment_bytes / es);
    const int right = (r->rank + 1) % p, left = (r->rank + p - 1) % p;
    char *bytes = buf;

    int64_t lo0, hi0;
    ring_chunk_range(n, p, 0, &lo0, &hi0);
    const int64_t nseg = (hi0 - lo0 + seg - 1) / seg;

    for (int k = 0; k < p - 1; k++) {
        int64_t slo, shi, rlo, rhi;
        ring_chunk_range(n, p, ring_mod(r->rank - k - 1, p), &slo, &shi);
        ring_chunk_range(n, p, ring_mod(r->rank - k - 2, p), &rlo, &rhi);
        MPI_Request recv_req[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL};
        MPI_Request send_req[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL};
        int64_t off;
        int len;

        ring_segment(rlo, rhi, seg, 0, &off, &len);
        HEED_MPI_CHECK(MPI_Irecv(r->work[0], len, dt, left, RING_TAG, r->mpi, &recv_req[0]));
        for (int64_t s = 0; s < nseg; s++) {
            const int cur = (int)(s & 1), nxt = cur ^ 1;
            /* Post the next receive into the other buffer first, so its
             * transfer can proceed (fully, where the transport progresses on
             * its own) while this segment is being added. That buffer was
             * freed when segment s-1 was added below. */
            if (s + 1 < nseg) {
                ring_segment(rlo, rhi, seg, s + 1, &off, &len);
                HEED_MPI_CHECK(
                    MPI_Irecv(r->work[nxt], len, dt, left, RING_TAG, r->mpi, &recv_req[nxt]));
            }
            /* At most two sends in flight: the receiver has two buffers, so
             * more would only pile up in MPI's unexpected-message queue. The
             * sent chunk was completed in the previous step. */
            HEED_MPI_CHECK(MPI_Wait(&send_req[cur], MPI_STATUS_IGNORE));
            ring_segment(slo, shi, seg, s, &off, &len);
            HEED_MPI_CHECK(MPI_Isend(bytes + (size_t)off * es, len, dt, right, RING_TAG, r->mpi,
                                     &send_req[cur]));

            HEED_MPI_CHECK(MPI_Wait(&recv_req[cur], MPI_STATUS_IGNORE));
            ring_segment(rlo, rhi, seg, s, &off, &len);
            ring_add(t, bytes + (size_t)off * es, r->work[cur], len);
        }
        /* Requests do not outlive their step (the next step's first sends
         * reuse the slots). */
        HEED_MPI_CHECK(MPI_Waitall(2, send_req, MPI_STATUSES_IGNORE));
    }
}

/* The all-gather of allreduce.h. Data lands directly in `buf`, so no
 * workspace is needed and messages are whole chunks, cut only into pieces
 * whose counts fit in an int. */
static void ring_allgather_any(ring *r, void *buf, int64_t n, ring_type t) {
    HEED_ASSERT(r != NULL && n >= 0 && (buf != NULL || n == 0));
    const int p = r->size;
    if (p == 1 || n == 0)
        return;
    const size_t es = ring_type_size(t);
    if (r->single_node && (size_t)n * es >= r->shm_min_bytes) {
        ring_allgather_shm(r, buf, n, es);
        return;
    }
    const MPI_Datatype dt = ring_type_mpi(t);
    /* 2^28 elements (1 or 2 GiB): a count that fits in an int with room to
     * spare, and so large that cutting costs nothing. */
    const int64_t piece = (int64_t)1 << 28;
    const int right = (r->rank + 1) % p, left = (r->rank + p - 1) % p;
    char *bytes = buf;

    int64_t lo0, hi0;
    ring_chunk_range(n, p, 0, &lo0, &hi0);
    const int64_t npiece = (hi0 - lo0 + piece - 1) / piece;

    for (int k = 0; k < p - 1; k++) {
        int64_t slo, shi, rlo, rhi;
        ring_chunk_range(n, p, ring_mod(r->rank - k, p), &slo, &shi);
        ring_chunk_range(n, p, ring_mod(r->rank - k - 1, p), &rlo, &rhi);
        for (int64_t s = 0; s < npiece; s++) {
            MPI_Request req[2];
            int64_t off;
            int len;
            ring_segment(rlo, rhi, piece, s, &off, &len);
            HEED_MPI_CHECK(
                MPI_Irecv(bytes + (size_t)off * es, len, dt, left, RING_TAG, r->mpi, &req[0]));
            ring_segment(slo, shi, piece, s, &off, &len);
            HEED_MPI_CHECK(
                MPI_Isend(bytes + (size_t)off * es, len, dt, right, RING_TAG, r->mpi, &req[1]));
            HEED_MPI_CHECK(MPI_Waitall(2, req, MPI_STATUSES_IGNORE));
        }
    }
}

/* The pipelined reduce-scatter (allreduce_nb.h) over the default chunks. */
static void ring_reduce_scatter_any(ring *r, void *buf, int64_t n, ring_type t) {
    HEED_ASSERT(r != NULL && n >= 0 && (buf != NULL || n == 0));
    if (r->size == 1 || n == 0)
        return;
    int64_t bounds_small[17], *bounds = bounds_small;
    if (r->size > 16)
        bounds = xmalloc(sizeof *bounds * (size_t)(r->size + 1));
    ring_default_bounds(n, r->size, bounds);
    ring_rs op;
    ring_rs_start(&op, r, buf, bounds, t);
    ring_rs_progress(&op, true);
    if (bounds != bounds_small)
        free(bounds);
}

/* Recursive doubling on n elements that fit in one workspace buffer. With
 * p not a power of two, the first 2 * rem ranks pair up first: each even one
 * hands its buffer to the odd one above it, sits out, and gets the result at
 * the end. In each exchange both partners add the other's buffer to their
 * own: x + y and y + x are the same bits, so every rank ends identical. */
static void ring_allreduce_small(ring *r, void *buf, int64_t n, ring_type t) {
    const int p = r->size, me = r->rank;
    const size_t es = ring_type_size(t);
    const MPI_Datatype dt = ring_type_mpi(t);
    HEED_ASSERT((size_t)n * es <= r->segment_bytes);
    int p2 = 1;
    while (p2 * 2 <= p)
        p2 *= 2;
    const int rem = p - p2;
    int vrank; /* rank among the p2 that take part in the exchanges, or -1 */
    if (me < 2 * rem) {
        if (me % 2 == 0) {
            HEED_MPI_CHECK(MPI_Send(buf, (int)n, dt, me + 1, RING_TAG, r->mpi));
            vrank = -1;
        } else {
            HEED_MPI_CHECK(
                MPI_Recv(r->work[0], (int)n, dt, me - 1, RING_TAG, r->mpi, MPI_STATUS_IGNORE));
            ring_add(t, buf, r->work[0], n);
            vrank = me / 2;
        }
    } else {
        vrank = me - rem;
    }
    if (vrank >= 0) {
        for (int mask = 1; mask < p2; mask <<= 1) {
            int vpartner = vrank ^ mask;
            int partner = vpartner < rem ? 2 * vpartner + 1 : vpartner + rem;
            HEED_MPI_CHECK(MPI_Sendrecv(buf, (int)n, dt, partner, RING_TAG, r->work[0], (int)n, dt,
                                        partner, RING_TAG, r->mpi, MPI_STATUS_IGNORE));
            ring_add(t, buf, r->work[0], n);
        }
    }
    if (me < 2 * rem) {
        if (me % 2 == 1)
            HEED_MPI_CHECK(MPI_Send(buf, (int)n, dt, me - 1, RING_TAG, r->mpi));
        else
            HEED_MPI_CHECK(MPI_Recv(buf, (int)n, dt, me + 1, RING_TAG, r->mpi, MPI_STATUS_IGNORE));
    }
}

static void ring_scale_avg(ring *r, float *buf, int64_t lo, int64_t hi) {
    const float scale = 1.0f / (float)r->size;
    for (int64_t i = lo; i < hi; i++)
        buf[i] *= scale;
}

void ring_reduce_scatter(ring *r, float *buf, int64_t n) {
    ring_reduce_scatter_any(r, buf, n, RING_TYPE_F32);
}

void ring_allgather(ring *r, float *buf, int64_t n) {
    ring_allgather_any(r, buf, n, RING_TYPE_F32);
}

void ring_allreduce(ring *r, float *buf, int64_t n, ring_op op) {
    HEED_ASSERT(op == RING_OP_SUM || op == RING_OP_AVG);
    if (r->size == 1 || n == 0)
        return;
    if ((size_t)n * sizeof(float) <= r->small_bytes) {
        ring_allreduce_small(r, buf, n, RING_TYPE_F32);
        if (op == RING_OP_AVG)
            ring_scale_avg(r, buf, 0, n); /* same bits on every rank */
        return;
    }
    if (r->single_node && (size_t)n * sizeof(float) >= r->shm_min_bytes) {
        ring_allreduce_shm(r, buf, n);
        if (op == RING_OP_AVG)
            ring_scale_avg(r, buf, 0, n); /* sum * (1/p) on every rank: the owner's bits */
        return;
    }
    ring_reduce_scatter_any(r, buf, n, RING_TYPE_F32);
    if (op == RING_OP_AVG) {
        /* Only the owner scales its chunk, once; the all-gather copies it. */
        int64_t lo, hi;
        ring_chunk_range(n, r->size, r->rank, &lo, &hi);
        ring_scale_avg(r, buf, lo, hi);
    }
    ring_allgather_any(r, buf, n, RING_TYPE_F32);
}

void ring_allreduce_ref(ring *r, float *buf, int64_t n, ring_op op) {
    HEED_ASSERT(op == RING_OP_SUM || op == RING_OP_AVG);
    ring_reduce_scatter_ref(r, buf, n, RING_TYPE_F32);
    if (op == RING_OP_AVG && r->size > 1) {
        int64_t lo, hi;
        ring_chunk_range(n, r->size, r->rank, &lo, &hi);
        ring_scale_avg(r, buf, lo, hi);
    }
    ring_allgather_any(r, buf, n, RING_TYPE_F32);
}

void ring_reduce_scatter_i64(ring *r, int64_t *buf, int64_t n) {
    ring_reduce_scatter_any(r, buf, n, RING_TYPE_I64);
}

void ring_allgather_i64(ring *r, int64_t *buf, int64_t n) {
    ring_allgather_any(r, buf, n, RING_TYPE_I64);
}

void ring_allreduce_i64(ring *r, int64_t *buf, int64_t n) {
    if (r->size > 1 && (size_t)n * sizeof(int64_t) <= r->small_bytes) {
        ring_allreduce_small(r, buf, n, RING_TYPE_I64); /* exact either way */
        return;
    }
    ring_reduce_scatter_any(r, buf, n, RING_TYPE_I64);
    ring_allgather_any(r, buf, n, RING_TYPE_I64);
}
