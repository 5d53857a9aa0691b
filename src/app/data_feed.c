#include "app/data_feed.h"

#include "core/check.h"
#include "dist/allreduce.h"
#include "dist/bad_input.h"
#include "dist/dataset.h"
#include "dist/loader.h"
#include "dist/sampler.h"

#include <stdlib.h>
#include <string.h>

enum { EVAL_CHUNK = 256 };
/* Splits smaller than this are read into memory whole unless asked otherwise. */
#define IN_MEMORY_AUTO_BYTES ((int64_t)1 << 30)

struct data_feed {
    const comm *comm;
    dataset *ds;
    sampler smp;
    dataset_reader *readers[DATASET_SPLIT_COUNT];
    loader *train_loader;          /* prefetching; row-split training only */
    int64_t next_epoch, next_step; /* where train_loader stands */
    sampler_options sampler_opts;  /* the training order, shared with the loader */
    bool in_memory;
    int global_batch, micro;
    batch b;
    sample_block blk;
    int64_t *ids;
    /* evaluation cursor */
    dataset_split eval_split;
    int64_t eval_pos, eval_end;     /* this rank's share of [0, eval_count) */
    int64_t eval_total, eval_count; /* rows in the split, rows evaluated */
};

static dataset_reader *feed_reader(data_feed *f, dataset_split split) {
    if (!f->readers[split]) {
        bool mem = f->in_memory || dataset_split_bytes(f->ds, split) < IN_MEMORY_AUTO_BYTES;
        int rows = f->global_batch > EVAL_CHUNK ? f->global_batch : EVAL_CHUNK;
        f->readers[split] = dataset_reader_init(f->ds, split, rows, mem);
    }
    return f->readers[split];
}

data_feed *data_feed_open(const char *path, const comm *c, int global_batch, uint64_t seed,
                          bool drop_last, bool in_memory, int length_buckets) {
    data_feed *f = xcalloc(1, sizeof *f);
    f->comm = c;
    f->global_batch = global_batch;
    f->in_memory = in_memory;
    char err[2048];
    if (dataset_open(&f->ds, path, c->mpi, NULL, err, sizeof err) != 0)
        bad_input_exit(c->mpi, err);
    const dataset_split_info *train = &f->ds->splits[DATASET_SPLIT_TRAIN];
    sampler_options so = {.seed = seed,
                          .batch_size = global_batch,
                          .shuffle = true,
                          .drop_last = drop_last,
                          .bucket_window = length_buckets,
                          .lengths = train->lengths};
    f->sampler_opts = so;
    bool bad = train->n <= 0 ||
               sampler_init(&f->smp, train->n, &so, c->rank, c->size, err, sizeof err) != 0;
    if (train->n <= 0)
        snprintf(err, sizeof err, "%s: the dataset has no train split to train on", path);
    bad_input_agree(c->mpi, bad, err);
    int cap = global_batch > EVAL_CHUNK ? global_batch : EVAL_CHUNK;
    batch_init(&f->b, f->ds, cap);
    f->ids = xmalloc(sizeof *f->ids * cap);
    return f;
}

void data_feed_use_micro_batches(data_feed *f, int micro) {
    f->micro = micro;
}

void data_feed_free(data_feed *f) {
    if (!f)
        return;
    loader_free(f->train_loader);
    for (int s = 0; s < DATASET_SPLIT_COUNT; s++)
        if (f->readers[s])
            dataset_reader_free(f->readers[s]);
    batch_free(&f->b);
    free(f->ids);
    sampler_free(&f->smp);
    dataset_close(f->ds);
    free(f);
}

void data_feed_shape(const data_feed *f, data_shape *shape) {
    const dataset *ds = f->ds;
    memset(shape, 0, sizeof *shape);
    shape->num_classes = ds->num_classes;
    if (ds->has_images) {
        shape->channels = ds->channels;
        shape->height = ds->height;
        shape->width = ds->width;
    }
    if (ds->has_tokens) {
        shape->vocab_size = ds->vocab_size;
        shape->max_len = ds->max_len;
        shape->pad_id = ds->pad_id;
        shape->cls_id = ds->cls_id;
        shape->mask_id = ds->mask_id;
        shape->sep_id = ds->sep_id;
    }
}

int64_t data_feed_split_size(const data_feed *f, const char *split) {
    int s = dataset_split_parse(split);
    return s < 0 ? 0 : f->ds->splits[s].n;
}

int64_t data_feed_steps_per_epoch(const data_feed *f) {
    return sampler_steps_per_epoch(&f->smp);
}

static const sample_block *feed_block(data_feed *f, int n) {
    f->blk = (sample_block){.n = n,
                            .ids = f->b.ids,
                            .images = f->b.images,
                            .tokens = f->b.tokens,
                            .segments = f->b.segments,
                            .L = f->b.len,
                            .labels = f->b.labels};
    return &f->blk;
}

/* Row-split training batches come from the loader's prefetch thread, which
 * walks the same sampler order; it is (re)started whenever the caller asks
 * for a batch other than the next one (the first call, a resume). */
static const sample_block *feed_loader_batch(data_feed *f, int epoch, int64_t step,
                                             int64_t *global_n) {
    if (!f->train_loader || f->next_epoch != epoch || f->next_step != step) {
        loader_free(f->train_loader);
        loader_options lo = {
            .split = DATASET_SPLIT_TRAIN,
            .mode = f->in_memory ? LOADER_MODE_MEMORY : LOADER_MODE_AUTO,
            .sampler = f->sampler_opts,
            .start = {.epoch = epoch, .position = step * f->global_batch},
        };
        char err[2048];
        if (loader_init(&f->train_loader, f->ds, f->comm->mpi, &lo, err, sizeof err) != 0)
            bad_input_exit(f->comm->mpi, err);
    }
    batch *b = loader_next(f->train_loader);
    f->next_epoch = epoch;
    f->next_step = step + 1;
    if (f->next_step == sampler_steps_per_epoch(&f->smp)) {
        f->next_epoch++;
        f->next_step = 0;
    }
    *global_n = b->global_n;
    f->blk = (sample_block){.n = b->n,
                            .ids = b->ids,
                            .images = b->images,
                            .tokens = b->tokens,
                            .segments = b->segments,
                            .L = b->len,
                            .labels = b->labels};
    return &f->blk;
}

const sample_block *data_feed_train_batch(data_feed *f, int epoch, int64_t step_in_epoch,
                                          int64_t *global_n) {
    if (f->micro == 0)
        return feed_loader_batch(f, epoch, step_in_epoch, global_n);
    int64_t start = step_in_epoch * f->global_batch;
    int64_t b =
        f->smp.epoch_len - start < f->global_batch ? f->smp.epoch_len - start : f->global_batch;
    int64_t lo, hi;
    if (f->micro > 0) {
        int64_t mlo, mhi, micro_batches = (b + f->micro - 1) / f->micro;
        ring_chunk_range(micro_batches, f->comm->size, f->comm->rank, &mlo, &mhi);
        lo = mlo * f->micro;
        hi = mhi * f->micro < b ? mhi * f->micro : b;
    } else {
        ring_chunk_range(b, f->comm->size, f->comm->rank, &lo, &hi);
    }
    int n = (int)(hi - lo);
    for (int i = 0; i < n; i++)
        f->ids[i] = sampler_index(&f->smp, epoch, start + lo + i);
    dataset_reader_read(feed_reader(f, DATASET_SPLIT_TRAIN), f->ids, n, &f->b);
    *global_n = b;
    return feed_block(f, n);
}

void data_feed_eval_begin(data_feed *f, const char *split, int64_t limit) {
    int s = dataset_split_parse(split);
    HEED_ASSERT(s >= 0);
    f->eval_split = (dataset_split)s;
    int64_t n = f->ds->splits[s].n;
    /* A limited evaluation takes every (n / limit)-th row, not the first
     * rows: splits are often stored grouped by class. */
    f->eval_total = n;
    f->eval_count = limit > 0 && limit < n ? limit : n;
    ring_chunk_range(f->eval_count, f->comm->size, f->comm->rank, &f->eval_pos, &f->eval_end);
}

const sample_block *data_feed_eval_next(data_feed *f) {
    if (f->eval_pos >= f->eval_end)
        return NULL;
    int n = (int)(f->eval_end - f->eval_pos < EVAL_CHUNK ? f->eval_end - f->eval_pos : EVAL_CHUNK);
    for (int i = 0; i < n; i++)
        f->ids[i] = (f->eval_pos + i) * f->eval_total / f->eval_count;
    f->eval_pos += n;
    dataset_reader_read(feed_reader(f, f->eval_split), f->ids, n, &f->b);
    return feed_block(f, n);
}

const sample_block *data_feed_rows(data_feed *f, const char *split, int64_t first, int n) {
    int s = dataset_split_parse(split);
    HEED_ASSERT(s >= 0 && n >= 0 && n <= EVAL_CHUNK && first >= 0 &&
                first + n <= f->ds->splits[s].n);
    for (int i = 0; i < n; i++)
        f->ids[i] = first + i;
    dataset_reader_read(feed_reader(f, (dataset_split)s), f->ids, n, &f->b);
    return feed_block(f, n);
}

const dataset *data_feed_dataset(const data_feed *f) {
    return f->ds;
}

int64_t *data_feed_train_label_counts(data_feed *f) {
    return dataset_label_counts(f->ds, DATASET_SPLIT_TRAIN);
}
