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
 */
#ifndef HEED_DIST_GRAD_SYNC_H
#define HEED_DIST_GRAD_SYNC_H

#include "core/optim.h"
#include "core/params.h"
#include "dist/allreduce.h"
#include "dist/comm.h"

typedef struct grad_sync {
    const comm *comm;
    ring ring;
    bool zero;
    int64_t lo, hi; /* the range this rank updates */
    adam_state adam;
    double *norm_parts;   /* size p */
    int64_t *exact;       /* exact mode: fixed-point gradient sums (n), else NULL */
    uint64_t *norm_words; /* exact mode: 2 words per rank */
} grad_sync;

/* Exact mode keeps gradients as integers scaled by 2^GRAD_EXACT_SHIFT: a
 * resolution of 2^-40 (about 1e-12) and a range of 2^23 per element. */
enum { GRAD_EXACT_SHIFT = 40 };

/* Every rank must call this, with the same n, zero and exact. */
void grad_sync_init(grad_sync *s, const comm *c, int64_t n, bool zero, bool exact,
                    size_t segment_floats);

/* Exact mode: adds grad[0, n) to the fixed-point sums as integers (rounded
 * to nearest), so sums do not depend on the order of micro-batches or ranks.
 * Returns false when a value is out of range (|g| >= 2^23) or not finite. */
bool grad_sync_accumulate_exact(grad_sync *s, const float *grad, int64_t n);
void grad_sync_free(grad_sync *s);

/* Collective: reduces ps->grad, clips by the global norm (max_norm <= 0: no
 * clipping), applies Adam with lr, and leaves identical parameters on every
 * rank. Returns the global gradient norm before clipping. */
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
