/*
 * cmd_eval.c - `heed eval --ckpt PATH --data FILE.h5 [--split test]`: the
 * loss, accuracy and macro-F1 of a checkpoint on one split, on any number
 * of ranks. The model and its options come from the configuration saved
 * in the checkpoint; the checkpoint's checksums are verified on load.
 */
#include "app/commands.h"
#include "app/config.h"
#include "app/data_feed.h"
#include "app/metrics.h"
#include "app/trainer.h"

#include "core/check.h"
#include "dist/allreduce.h"
#include "dist/check_dist.h"
#include "dist/checkpoint.h"
#include "dist/comm.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* OpenBLAS's own call; cblas.h of other BLAS builds lacks it. */
void openblas_set_num_threads(int num_threads);

static int eval_fail(comm *c, const char *msg) {
    if (c->rank == 0)
        fprintf(stderr, "heed eval: %s\n", msg);
    comm_free(c);
    HEED_MPI_CHECK(MPI_Finalize());
    return HEED_EXIT_BAD_INPUT;
}

int cmd_eval(int argc, char **argv) {
    const char *ckpt = NULL, *data = NULL, *split = "test";
    int threads = 0;
    for (int i = 0; i < argc; i += 2) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--ckpt") && v)
            ckpt = v;
        else if (!strcmp(a, "--data") && v)
            data = v;
        else if (!strcmp(a, "--split") && v)
            split = v;
        else if (!strcmp(a, "--threads") && v)
            threads = atoi(v);
        else {
            fprintf(stderr,
                    "heed eval: unexpected argument '%s'\nusage: heed eval --ckpt PATH "
                    "--data FILE.h5 [--split train|val|test] [--threads N]\n",
                    a);
            return HEED_EXIT_BAD_INPUT;
        }
    }
    if (!ckpt || !data) {
        fprintf(stderr, "usage: heed eval --ckpt PATH --data FILE.h5 [--split train|val|test]\n");
        return HEED_EXIT_BAD_INPUT;
    }
    int provided;
    HEED_MPI_CHECK(MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided));
    comm c;
    comm_init(&c, MPI_COMM_WORLD);
    char err[1024], msg[1200];
    ckpt_meta meta;
    if (!ckpt_read_meta(&c, ckpt, &meta, err, sizeof err))
        return eval_fail(&c, err);
    run_config rc;
    run_config_default(&rc);
    if (!run_config_load_ini_text(&rc, meta.config, ckpt, err, sizeof err)) {
        snprintf(msg, sizeof msg, "the configuration saved in %.1000s", err);
        return eval_fail(&c, msg);
    }
    rc.mc.seed = rc.seed;
    if (strcmp(split, "train") && strcmp(split, "val") && strcmp(split, "test"))
        return eval_fail(&c, "--split must be train, val or test");
    long cores = sysconf(_SC_NPROCESSORS_ONLN) / (c.local_size > 0 ? c.local_size : 1);
    openblas_set_num_threads(threads > 0 ? threads : cores > 0 ? (int)cores : 1);
    data_feed *feed =
        data_feed_open(data, &c, rc.batch_size, rc.seed, rc.drop_last, false, rc.length_buckets);
    if (data_feed_split_size(feed, split) <= 0) {
        snprintf(msg, sizeof msg, "%.900s has no '%s' split (or it is empty)", data, split);
        return eval_fail(&c, msg);
    }
    data_shape shape;
    data_feed_shape(feed, &shape);
    model *m = model_create(rc.model, &rc.mc, &shape, err, sizeof err);
    if (!m)
        return eval_fail(&c, err);
    adam_config ac = adam_config_default();
    trainer t;
    trainer_init(&t, m, &c, &ac, true, false, rc.micro_batch, 0.0f, rc.seed);
    if (!ckpt_read_state(&c, ckpt, &m->ps, &t.sync.adam, err, sizeof err))
        return eval_fail(&c, err);

    int K = m->shape.num_classes;
    int64_t *confusion = xcalloc((size_t)K * K, sizeof *confusion);
    double loss_sum = 0.0;
    data_feed_eval_begin(feed, split, 0);
    const sample_block *blk;
    while ((blk = data_feed_eval_next(feed)))
        trainer_eval_block(&t, blk, &loss_sum, confusion);
    HEED_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, confusion, K * K, MPI_INT64_T, MPI_SUM, c.mpi));
    eval_result e = {0};
    e.num_classes = K;
    e.confusion = confusion;
    for (int i = 0; i < K * K; i++)
        e.n += confusion[i];
    e.loss = comm_sum_ordered(&c, loss_sum, t.parts) / (e.n ? e.n : 1);
    confusion_scores(confusion, K, &e.accuracy, &e.macro_f1);
    if (c.rank == 0)
        printf("eval %s of %s (step %lld): loss %.4f accuracy %.4f macro-F1 %.4f (n=%lld)\n", split,
               ckpt, (long long)meta.step, e.loss, e.accuracy, e.macro_f1, (long long)e.n);
    free(confusion);
    trainer_free(&t);
    model_free(m);
    data_feed_free(feed);
    ckpt_meta_free(&meta);
    comm_free(&c);
    HEED_MPI_CHECK(MPI_Finalize());
    return HEED_EXIT_OK;
}
