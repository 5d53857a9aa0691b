/*
 * buffer_sync.h - keeps the model's buffers (batch-norm running statistics,
 * params_add_buffer) identical on all ranks.
 *
 * Each rank updates its buffers from its own samples during the forward
 * passes of a step, so after the micro-batches they differ between ranks.
 * buffer_sync_average replaces every buffer element by the mean over ranks,
 * summed in rank order (in double) on every rank from one all-gather, so all
 * ranks hold the same bits. The trainer calls it after the micro-batches and
 * BEFORE the optimiser step: with ZeRO-1 the step all-gathers the whole
 * parameter buffer chunk by chunk, which would otherwise stitch the buffers
 * together from different ranks. docs/architecture.md says why this rather
 * than synchronised batch norm.
 */
#ifndef HEED_DIST_BUFFER_SYNC_H
#define HEED_DIST_BUFFER_SYNC_H

#include "core/params.h"
#include "dist/comm.h"

typedef struct buffer_sync {
    const comm *comm;
    int64_t n;   /* buffer elements of the model (0: nothing to do) */
    float *mine; /* (n) this rank's buffers, packed */
    float *all;  /* (p, n) every rank's */
} buffer_sync;

/* Sizes the workspace for ps's buffers (allocated here, once). */
void buffer_sync_init(buffer_sync *s, const comm *c, const params *ps);
void buffer_sync_free(buffer_sync *s);

/* Collective (every rank, same model): buffers := mean over ranks. A no-op
 * on one rank or for a model without buffers. */
void buffer_sync_average(buffer_sync *s, params *ps);

#endif
