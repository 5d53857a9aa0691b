/*
 * trainer.h - one optimisation step and one evaluation pass of a model on
 * this rank's samples, independent of where the samples come from.
 *
 * A step: zero the gradients; for each micro-batch of the rank's share of the
 * global batch, forward, cross-entropy, backward with the loss scaled by
 * (micro-batch size / global batch size), so the gradients summed over ranks
 * are those of the mean loss over the global batch; the gradient buckets
 * are reduced during the last micro-batch's backward (grad_sync.h); then
 * grad_sync_step.
 */
#ifndef HEED_APP_TRAINER_H
#define HEED_APP_TRAINER_H

#include "core/graph.h"
#include "core/optim.h"
#include "dist/batch_sum.h"
#include "dist/buffer_sync.h"
#include "dist/grad_sync.h"
#include "models/model.h"

/* Samples of one rank for one step (or one eval chunk), in the model's
 * layout. Rows are samples; ids are their global indices. */
typedef struct sample_block {
    int n;
    const int64_t *ids;
    const float *images;     /* [n, C, H, W] or NULL */
    const int32_t *tokens;   /* [n, L] or NULL */
    const int32_t *segments; /* [n, L] or NULL */
    int L;                   /* token columns in this block */
    const int32_t *labels;   /* [n] */
    /* Run every micro-batch at all L columns instead of trimming it to its
     * own longest row (explain keeps one length for all its samples). */
    bool keep_length;
} sample_block;

/* Rows [r0, r0 + n) of blk as the model's input tensors and the labels,
 * leaves in the graph's arena (views, no copies). */
void sample_block_views(graph *g, const model *m, const sample_block *blk, int r0, int n,
                        model_batch *mb, tensor **labels);

typedef struct trainer {
    model *model;
    graph *graph;
    grad_sync sync;
    adam_config adam;
    const comm *comm;
    int micro_batch;
    float label_smoothing;
    float *class_weights; /* [num_classes], owned; NULL: every class weighs 1 */
    uint64_t seed;
    bool exact;
    bool overlap;        /* reduce buckets during the last backward (trainer_set_comm) */
    double *parts;       /* p doubles for ordered sums */
    buffer_sync buffers; /* batch-norm running statistics: mean over ranks each step */
    batch_sum bn_sum;    /* --sync-bn: batch-norm statistics over all ranks */
    bool sync_bn;
} trainer;

/* Collective (grad_sync_init). micro_batch 0 = the whole rank share.
 * Exact mode (needs micro_batch > 0 and every rank's share made of whole
 * micro-batches of the global order): each micro-batch's gradient is added
 * to integer sums, so p ranks and 1 rank give bitwise-identical parameters. */
void trainer_init(trainer *t, model *m, const comm *c, const adam_config *adam, bool zero,
                  bool exact, int micro_batch, float label_smoothing, uint64_t seed);
void trainer_free(trainer *t);

/* Weights the training loss of each class by w[k] (model->shape.num_classes
 * floats, copied; NULL: all 1, the default). Evaluation losses stay
 * unweighted. Not collective, but every rank must pass the same weights. */
void trainer_set_class_weights(trainer *t, const float *w);

/* Gradient buckets of about bucket_bytes (0: one bucket) and whether their
 * reduction overlaps the last micro-batch's backward (grad_sync.h). Default
 * after trainer_init: BUCKET_KB_DEFAULT KiB, overlap on. Results are bitwise
 * the same for any choice. Collective (every rank, same arguments). */
void trainer_set_comm(trainer *t, size_t bucket_bytes, bool overlap);

/* Synchronised batch norm (heed train --sync-bn): every batch-norm layer
 * normalises with the statistics of the global batch (all ranks' samples of
 * the micro-batch), as PyTorch's SyncBatchNorm. Its sums are collectives
 * inside the forward and backward, so the progress thread must stay off.
 * Collective; a no-op on one rank. */
void trainer_set_sync_bn(trainer *t);

/* heed train --comm-thread auto starts the progress thread from this many
 * ranks up: below it the backward hook already keeps a bucket's short ring
 * moving (docs/benchmarks.md, "Progress thread"). */
enum { COMM_THREAD_AUTO_RANKS = 8 };

/* Drives the overlapped reduction from a progress thread (grad_sync.h).
 * False when MPI was not initialised with MPI_THREAD_SERIALIZED or more, or
 * the run has one rank. Bitwise the same results either way. */
bool trainer_start_comm_thread(trainer *t);

typedef struct step_result {
    double loss;      /* mean over the global batch, identical on all ranks */
    double grad_norm; /* before clipping */
    bool finite;
} step_result;

/* Collective. `global_batch` is the number of samples in this step over all
 * ranks (each rank passes its own block). */
step_result trainer_step(trainer *t, const sample_block *blk, int64_t global_batch, int64_t step,
                         float lr, float clip);

/* Adds this rank's predictions on blk to loss_sum and the K x K confusion
 * counts (no gradient, eval mode). */
void trainer_eval_block(trainer *t, const sample_block *blk, double *loss_sum, int64_t *confusion);

#endif
