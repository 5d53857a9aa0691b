/*
 * loader.c - the prefetch ring.
 *
 * Batches are numbered 0, 1, 2, ... in the order the trainer gets them; the
 * one numbered k lives in slot k % depth. Three counters under one mutex:
 *
 *     released <= consumed <= produced <= released + depth
 *
 * The producer may fill batch `produced` while produced < released + depth;
 * loader_next releases everything it returned before (released = consumed),
 * waits for produced > consumed, and returns batch `consumed`. So the
 * trainer holds one slot and the thread keeps up to depth - 1 ready. Only
 * the producer touches the sampler, the reader and the cursor, so no lock
 * is held while it reads.
 */
#include "dist/loader.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "dist/bad_input.h"
#include "dist/check_dist.h"

struct loader {
    dataset *ds;
    dataset_split split;
    dataset_reader *reader;
    bool in_memory;
    /* producer state */
    bool eval;
    sampler smp;
    sampler_cursor cursor;
    int64_t eval_begin, eval_end, eval_pos;
    int eval_batch;
    int64_t *ids; /* [max rows] */
    /* the ring */
    int depth;
    batch *slots;
    bool threaded, thread_running;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t ready, freed;
    int64_t produced, consumed, released;
    bool done, stop;
};

/* Fills b with the next batch; false at the end of an eval pass. */
static bool produce(loader *l, batch *b) {
    int n;
    int64_t global_n;
    if (l->eval) {
        if (l->eval_pos >= l->eval_end)
            return false;
        int64_t left = l->eval_end - l->eval_pos;
        n = left < l->eval_batch ? (int)left : l->eval_batch;
        for (int i = 0; i < n; i++)
            l->ids[i] = l->eval_pos + i;
        l->eval_pos += n;
        global_n = n;
    } else {
        n = sampler_next(&l->smp, &l->cursor, l->ids, &global_n);
    }
    dataset_reader_read(l->reader, l->ids, n, b);
    b->global_n = global_n;
    b->next_epoch = l->eval ? 0 : l->cursor.epoch;
    b->next_position = l->eval ? l->eval_pos : l->cursor.position;
    return true;
}

static void *producer_main(void *arg) {
    loader *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->stop && l->produced >= l->released + l->depth)
            pthread_cond_wait(&l->freed, &l->mu);
        if (l->stop)
            break;
        batch *b = &l->slots[l->produced % l->depth];
        pthread_mutex_unlock(&l->mu);
        bool ok = produce(l, b);
        pthread_mutex_lock(&l->mu);
        if (!ok) {
            l->done = true;
            pthread_cond_signal(&l->ready);
            break;
        }
        l->produced++;
        pthread_cond_signal(&l->ready);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

static void thread_start(loader *l) {
    l->produced = l->consumed = l->released = 0;
    l->done = l->stop = false;
    if (!l->threaded)
        return;
    int rc = pthread_create(&l->thread, NULL, producer_main, l);
    if (rc != 0)
        HEED_DIE(HEED_EXIT_INTERNAL, "cannot start the prefetch thread: %s", strerror(rc));
    l->thread_running = true;
}

static void thread_stop(loader *l) {
    if (!l->thread_running)
        return;
    pthread_mutex_lock(&l->mu);
    l->stop = true;
    pthread_cond_broadcast(&l->freed);
    pthread_mutex_unlock(&l->mu);
    HEED_ASSERT(pthread_join(l->thread, NULL) == 0);
    l->thread_running = false;
}

/* The options' problems, as a message; 0 when fine. */
static int check_options(const dataset *ds, const loader_options *o, char *err, size_t errlen) {
    if (o->split < 0 || o->split >= DATASET_SPLIT_COUNT) {
        snprintf(err, errlen, "loader: unknown split %d", (int)o->split);
        return -1;
    }
    if (o->depth != 0 && o->depth < 2) {
        snprintf(err, errlen, "loader: depth %d: expected at least 2", o->depth);
        return -1;
    }
    if (o->eval && o->eval_batch < 1) {
        snprintf(err, errlen, "evaluation batch size %d: expected at least 1", o->eval_batch);
        return -1;
    }
    if (!o->eval && (o->start.epoch < 0 || o->start.position < 0 ||
                     o->start.position > ds->splits[o->split].n)) {
        snprintf(err, errlen,
                 "%s: resume cursor epoch %lld, position %lld is outside the %lld samples of "
                 "/%s (a checkpoint of another dataset?)",
                 ds->path, (long long)o->start.epoch, (long long)o->start.position,
                 (long long)ds->splits[o->split].n, dataset_split_name(o->split));
        return -1;
    }
    return 0;
}

int loader_init(loader **out, dataset *ds, MPI_Comm comm, const loader_options *opt, char *err,
                size_t errlen) {
    *out = NULL;
    int rank = 0, size = 1;
    HEED_MPI_CHECK(MPI_Comm_rank(comm, &rank));
    HEED_MPI_CHECK(MPI_Comm_size(comm, &size));
    loader *l = xcalloc(1, sizeof *l);
    char msg[HEED_BAD_INPUT_MSG_MAX] = "";
    int rc = check_options(ds, opt, msg, sizeof msg);
    int max_rows = 1;
    if (rc == 0 && opt->eval) {
        l->eval = true;
        l->eval_batch = opt->eval_batch;
        sampler_split_range(ds->splits[opt->split].n, size, rank, &l->eval_begin, &l->eval_end);
        l->eval_pos = l->eval_begin;
        max_rows = opt->eval_batch;
    } else if (rc == 0) {
        char why[512];
        sampler_options so = opt->sampler;
        if (so.bucket_window > 0 && !so.lengths)
            so.lengths = ds->splits[opt->split].lengths;
        rc = sampler_init(&l->smp, ds->splits[opt->split].n, &so, rank, size, why, sizeof why);
        if (rc != 0)
            snprintf(msg, sizeof msg, "%s: /%s: %s", ds->path, dataset_split_name(opt->split), why);
        l->cursor = opt->start;
        max_rows = rc == 0 ? sampler_max_local(&l->smp) : 1;
    }
    if (bad_input_any(comm, rc != 0, msg, err, errlen)) {
        if (!l->eval && rc == 0)
            sampler_free(&l->smp);
        free(l);
        return HEED_EXIT_BAD_INPUT;
    }
    l->ds = ds;
    l->split = opt->split;
    int64_t budget = opt->memory_budget > 0 ? opt->memory_budget : LOADER_DEFAULT_MEMORY_BUDGET;
    l->in_memory = opt->mode == LOADER_MODE_MEMORY ||
                   (opt->mode == LOADER_MODE_AUTO && dataset_split_bytes(ds, opt->split) <= budget);
    l->reader = dataset_reader_init_opts(ds, opt->split, max_rows, l->in_memory, !opt->no_map);
    l->ids = xmalloc(sizeof(int64_t) * (size_t)max_rows);
    l->depth = opt->depth ? opt->depth : 3;
    l->slots = xcalloc((size_t)l->depth, sizeof(batch));
    for (int i = 0; i < l->depth; i++)
        batch_init(&l->slots[i], ds, max_rows);
    l->threaded = !opt->synchronous;
    HEED_ASSERT(pthread_mutex_init(&l->mu, NULL) == 0);
    HEED_ASSERT(pthread_cond_init(&l->ready, NULL) == 0);
    HEED_ASSERT(pthread_cond_init(&l->freed, NULL) == 0);
    thread_start(l);
    *out = l;
    return 0;
}

batch *loader_next(loader *l) {
    if (!l->threaded) {
        batch *b = &l->slots[0];
        if (!l->done && produce(l, b))
            return b;
        l->done = true;
        return NULL;
    }
    pthread_mutex_lock(&l->mu);
    l->released = l->consumed;
    pthread_cond_signal(&l->freed);
    while (l->produced == l->consumed && !l->done)
        pthread_cond_wait(&l->ready, &l->mu);
    batch *b = NULL;
    if (l->produced > l->consumed)
        b = &l->slots[l->consumed++ % l->depth];
    pthread_mutex_unlock(&l->mu);
    return b;
}

void loader_rewind(loader *l) {
    HEED_ASSERT(l->eval);
    thread_stop(l);
    l->eval_pos = l->eval_begin;
    thread_start(l);
}

bool loader_in_memory(const loader *l) {
    return l->in_memory;
}

const char *loader_source(const loader *l) {
    return dataset_reader_source(l->reader);
}

void loader_free(loader *l) {
    if (!l)
        return;
    thread_stop(l);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->ready);
    pthread_cond_destroy(&l->freed);
    for (int i = 0; i < l->depth; i++)
        batch_free(&l->slots[i]);
    free(l->slots);
    free(l->ids);
    dataset_reader_free(l->reader);
    if (!l->eval)
        sampler_free(&l->smp);
    free(l);
}
