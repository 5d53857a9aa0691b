/*
 * data_feed.h - what the training loop needs from the dataset layer: the
 * data's shape, this rank's share of each global training batch, and this
 * rank's share of an evaluation split. A thin adapter over src/dist's
 * dataset, sampler and loader.
 */
#ifndef HEED_APP_DATA_FEED_H
#define HEED_APP_DATA_FEED_H

#include "app/trainer.h"
#include "dist/comm.h"
#include "models/model.h"

typedef struct data_feed data_feed;

/* length_buckets > 0 (text only) groups samples of similar length into
 * batches, sorting windows of that many global batches of the shuffled
 * order; the order stays a function of (seed, epoch) alone.
 * Collective: opens and validates `path` on every rank; on bad input all
 * ranks print (rank 0) and exit HEED_EXIT_BAD_INPUT together. */
data_feed *data_feed_open(const char *path, const comm *c, int global_batch, uint64_t seed,
                          bool drop_last, bool in_memory, int length_buckets);

/* Exact mode: split each global batch between ranks in whole micro-batches
 * of `micro` samples (the chunk rule over micro-batches) instead of rows,
 * so every micro-batch is the same set of samples at any rank count. */
void data_feed_use_micro_batches(data_feed *f, int micro);
void data_feed_free(data_feed *f);

void data_feed_shape(const data_feed *f, data_shape *shape);
/* Samples in a split (0 when absent). */
int64_t data_feed_split_size(const data_feed *f, const char *split);
/* Global batches in one training epoch. */
int64_t data_feed_steps_per_epoch(const data_feed *f);

/* This rank's share of global batch `step_in_epoch` of `epoch`; *global_n
 * receives the batch's size over all ranks. The block stays valid until the
 * next call. */
const sample_block *data_feed_train_batch(data_feed *f, int epoch, int64_t step_in_epoch,
                                          int64_t *global_n);

/* This rank's contiguous share of `limit` samples (0: all) of a split,
 * evenly spaced (every (n / limit)-th row), in chunks; returns NULL when done. Call
 * data_feed_eval_begin first. */
void data_feed_eval_begin(data_feed *f, const char *split, int64_t limit);
const sample_block *data_feed_eval_next(data_feed *f);

/* Rows [first, first + n) of a split in stored order (n <= 256), for
 * explaining chosen samples. Not collective. */
const sample_block *data_feed_rows(data_feed *f, const char *split, int64_t first, int n);

/* The dataset behind the feed: class names, vocabulary, lengths. */
const struct dataset *data_feed_dataset(const data_feed *f);

/* Rows of the train split per class: a new array of num_classes counts
 * (free it). Not collective. */
int64_t *data_feed_train_label_counts(data_feed *f);

#endif
