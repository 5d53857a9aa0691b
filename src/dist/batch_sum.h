/*
 * batch_sum.h - sums over the ranks for synchronised batch norm: the
 * graph_sum_fn that heed train --sync-bn installs on the trainer's graph.
 *
 * One all-gather of the n doubles of every rank on the batch sum's own
 * communicator, then every rank adds the p copies in rank order: all ranks
 * hold the same bits (an MPI_Allreduce need not give them), and the calls,
 * made from inside the forward and backward of every batch-norm layer,
 * never match the gradient reduction's messages.
 *
 *   batch_sum bs;
 *   batch_sum_init(&bs, &comm);                       // every rank
 *   graph_set_batch_sum(g, batch_sum_fn, &bs);
 *   ... training steps ...
 *   batch_sum_free(&bs);                              // every rank
 */
#ifndef HEED_DIST_BATCH_SUM_H
#define HEED_DIST_BATCH_SUM_H

#include "dist/comm.h"

typedef struct batch_sum {
    MPI_Comm mpi; /* owned duplicate */
    int size;
    double *all; /* (size, cap) every rank's values */
    int cap;     /* grows to the largest n seen (the first step) */
} batch_sum;

/* Collective over c. */
void batch_sum_init(batch_sum *bs, const comm *c);
/* Collective. A zeroed or freed batch_sum is a no-op. */
void batch_sum_free(batch_sum *bs);

/* graph_sum_fn: v (n) := its sum over the ranks, the same bits on all.
 * Collective: every rank calls it with the same n, in the same order. */
void batch_sum_fn(void *bs, double *v, int n);

#endif
