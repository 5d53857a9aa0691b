/*
 * grad_sync.h - the global optimiser step over ranks.
 *
 * After backward, every rank holds the gradient of its own samples (already
 * divided by the global batch size, so the sum over ranks is the gradient of
 * the global batch). grad_sync turns that into the same parameter update on
 * every rank:
 *
 *   ZeRO-1 (default for p > 1):  reduce-scatter grads -> rank r owns chunk r
 *                                Adam on chunk r (moments for chunk r only)
 *                                all-gather parameters
 *   replicated:                  all-reduce grads; Adam on everything
 *
 * Both end with bitwise-identical parameters on all ranks: each chunk is
 * reduced in one fixed order by the ring and then copied, and the global
 * gradient norm is summed from per-rank parts in rank order on every rank.
 *
 * Buckets and overlap (bucket.h): the gradient reduce-scatter runs bucket by
 * bucket. With overlap, grad_sync_begin installs a backward hook on the
 * graph of the step's LAST micro-batch (earlier micro-batches only
 * accumulate): after each tape entry the hook starts every bucket, in plan
 * order, whose tensors' first use (graph_param_first_use) backward has
 * passed, and advances the one in flight with MPI_Test (nonblocking ring,
 * allreduce_nb.h): the tape gives the training thread a call every few
 * microseconds to milliseconds. Or, after grad_sync_start_thread, a
 * progress thread does the same schedule every 50 us to 1 ms while the hook
 * only publishes how far backward has got (grad_sync_thread.h): at many
 * ranks a bucket's ring has more steps than the hook has calls. A bucket whose tensors all went
 * unused this step (a branch not taken, a frozen tower) only starts in grad_sync_finish, after
 * backward, so it cannot hang: every rank reaches finish and reduces what is left in the same
 * order. Without overlap, finish reduces every bucket after backward. Results are bitwise the same
 * either way, and the same as one reduce-scatter of the whole buffer (same chunk boundaries).
 *
 *   grad_sync_plan_buckets(&s, &ps, bucket_bytes);       // once
 *   each step: ... last micro-batch forward ...
 *              grad_sync_begin(&s, &ps, g, overlap);
 *              graph_backward(g, loss, seed);
 *              grad_sync_finish(&s, &ps);
 *              grad_sync_step(&s, &ps, ...);               // or _exact
 */
#ifndef HEED_DIST_GRAD_SYNC_H
#define HEED_DIST_GRAD_SYNC_H

#include "core/optim.h"
#include "core/params.h"
#include "core/graph.h"
#include "dist/allreduce.h"
#include "dist/allreduce_nb.h"
#include "dist/bucket.h"
#include "dist/comm.h"

/* Where communication time went, summed since grad_sync_init (seconds of
 * this rank). */
typedef struct grad_sync_stats {
    double wait_s;   /* in grad_sync_finish: reduction NOT hidden behind backward */
    double hook_s;   /* in the backward hook (posting, testing, adding) */
    double gather_s; /* parameter all-gather (ZeRO) or gradient all-gather */
    int64_t steps;
    int64_t buckets_in_backward; /* buckets started from the hook */
    int64_t buckets_at_finish;   /* buckets started in finish */
} grad_sync_stats;

typedef struct grad_sync_thread grad_sync_thread; /* grad_sync_thread.h */

typedef struct grad_sync {
    const comm *comm;
    ring ring;
    bool zero;
    int64_t numel;  /* length of the gradient buffer */
    int64_t lo, hi; /* the range this rank updates */
    adam_state adam;
    double *norm_parts;   /* size p */
    int64_t *exact;       /* exact mode: fixed-point gradient sums (n), else NULL */
    uint64_t *norm_words; /* exact mode: 2 words per rank */
    /* Buckets (see the top of this file). */
    bucket_plan plan;
    int *ready_at; /* per bucket: tape index after which it is final, -1: at finish */
    int next;      /* next bucket of the plan to start */
    bool active;   /* `op` is in flight (bucket next - 1) */
    ring_rs op;
    graph *hooked;            /* graph whose backward hook is ours, or NULL */
    params *ps;               /* the parameters being reduced this step */
    bool convert;             /* exact mode: buckets' float grads still to add to `exact` */
    bool in_range;            /* exact mode: every converted value was in range */
    bool reduced;             /* gradients reduced this step, Adam not yet applied */
    grad_sync_thread *thread; /* progress thread, or NULL: the hook drives */
    grad_sync_stats stats;
} grad_sync;

/* Exact mode keeps gradients as integers scaled by 2^GRAD_EXACT_SHIFT: a
 * resolution of 2^-40 (about 1e-12) and a range of 2^23 per element. */
enum { GRAD_EXACT_SHIFT = 40 };

/* Every rank must call this, with the same n, zero and exact. */
void grad_sync_init(grad_sync *s, const comm *c, int64_t n, bool zero, bool exact,
                    size_t segment_floats);

/* Cuts the gradient buffer into buckets of about bucket_bytes (0: one
 * bucket). Without this call the plan is one bucket. Every rank must call it
 * with the same arguments. */
void grad_sync_plan_buckets(grad_sync *s, const params *ps, size_t bucket_bytes);

/* Before the step's last backward (after its forward, so g's first-use table
 * is this micro-batch's): with `overlap` (and p > 1) installs the hook on g.
 * In exact mode, from here on the sync adds the last micro-batch's float
 * gradients to the fixed-point sums itself, bucket by bucket (the caller
 * accumulates only the earlier micro-batches). */
void grad_sync_begin(grad_sync *s, params *ps, graph *g, bool overlap);

/* Optional, after init: drives overlapped reductions from a progress thread
 * instead of from the backward hook (grad_sync_thread.h). Needs MPI
 * initialised with MPI_THREAD_SERIALIZED or higher and p > 1; returns false
 * (and changes nothing) otherwise. Not collective; bitwise the same results. */
bool grad_sync_start_thread(grad_sync *s);

/* Advances the overlapped reduction once backward has finished tape entry
 * `entry`: completes the bucket in flight if it can, starts the buckets
 * that are final, in plan order. Returns whether a bucket completed or
 * started. Called by the hook or by the progress thread. */
bool grad_sync_advance(grad_sync *s, int entry);

/* After backward: removes the hook and reduces (reduce-scatter) every bucket
 * not yet reduced, in plan order; replicated mode then all-gathers the
 * gradients. Works without grad_sync_begin (a rank with no samples).
 * Collective. Exact mode: returns false when a value was out of range. */
bool grad_sync_finish(grad_sync *s, params *ps);

/* Forgets a reduced step without applying it (non-finite loss): clears the
 * fixed-point sums. Not collective. */
void grad_sync_discard(grad_sync *s);

/* Exact mode: adds grad[0, n) to the fixed-point sums as integers (rounded
 * to nearest), so sums do not depend on the order of micro-batches or ranks.
 * Returns false when a value is out of range (|g| >= 2^23) or not finite. */
bool grad_sync_accumulate_exact(grad_sync *s, const float *grad, int64_t n);
void grad_sync_free(grad_sync *s);

/* Collective: reduces ps->grad (unless grad_sync_finish did), clips by the global norm (max_norm <=
 * 0: no clipping), applies Adam with lr, and leaves identical parameters on every rank. Returns the
 * global gradient norm before clipping. */
double grad_sync_step(grad_sync *s, params *ps, const adam_config *cfg, float lr, float max_norm);

/* Exact mode's step: reduces the fixed-point sums (integer ring), converts
 * the rank's range back into ps->grad, computes the norm from the integers
 * (order-independent), applies Adam and gathers the parameters. The result
 * depends on the micro-batch gradients only, not on how they were spread
 * over ranks. Clears the sums for the next step. */
double grad_sync_step_exact(grad_sync *s, params *ps, const adam_config *cfg, float lr,
                            float max_norm);

/* Collective: sum of one double per rank, added in rank order on every rank
 * (so the result is bitwise the same everywhere). */
double comm_sum_ordered(const comm *c, double local, double *parts);

/* Collective: FNV hash of the parameters compared across ranks; false when
 * any rank differs. */
bool grad_sync_params_agree(const comm *c, const params *ps);

#endif
