/*
 * cmd_eval.c - `heed eval --ckpt PATH --data FILE.h5 [--split test]`: the
 * loss, accuracy and macro-F1 of a checkpoint on one split, on any number
 * of ranks. The model and its options come from the configuration saved
 * in the checkpoint; the checkpoint's checksums are verified on load.
 * The collective watchdog (--collective-timeout, as heed train) covers the
 * start-up (checkpoint, dataset, model: 4 x the timeout) and the final
 * reductions, so a stuck rank ends the job with exit 4 instead of a hang.
 */
#include "app/ckpt_model.h"
#include "app/commands.h"
#include "app/metrics.h"
#include "app/trainer.h"

#include "core/check.h"
#include "dist/allreduce.h"
#include "dist/check_dist.h"
#include "dist/checkpoint.h"
#include "dist/comm.h"
#include "dist/watchdog.h"
#include "dist/watchdog_fault.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Start-up reads files as well as waiting for the other ranks. */
#define EVAL_STARTUP_TIMEOUT_FACTOR 4.0

static int eval_fail(comm *c, watchdog *wd, const char *msg) {
    if (c->rank == 0)
        fprintf(stderr, "heed eval: %s\n", msg);
    watchdog_free(wd); /* collective, as the verdict */
    comm_free(c);
    HEED_MPI_CHECK(MPI_Finalize());
    return HEED_EXIT_BAD_INPUT;
}

/* "--collective-timeout" values: a number of seconds >= 0 (0: off). */
static bool parse_seconds(const char *v, double *out) {
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end || !(x >= 0.0))
        return false;
    *out = x;
    return true;
}

int cmd_eval(int argc, char **argv) {
    const char *ckpt = NULL, *data = NULL, *split = "test";
    int threads = 0;
    double timeout = 300.0;
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
        else if (!strcmp(a, "--collective-timeout") && v && parse_seconds(v, &timeout))
            ;
        else {
            fprintf(stderr,
                    "heed eval: unexpected argument '%s'%s\nusage: heed eval --ckpt PATH "
                    "--data FILE.h5 [--split train|val|test] [--threads N] "
                    "[--collective-timeout SECONDS]\n",
                    a, strcmp(a, "--collective-timeout") ? "" : " (expects seconds >= 0)");
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
    watchdog *wd = watchdog_create(&c, timeout);
    if (strcmp(split, "train") && strcmp(split, "val") && strcmp(split, "test"))
        return eval_fail(&c, wd, "--split must be train, val or test");
    debug_fault fault = debug_fault_from_env();
    watchdog_arm_scaled(wd, -1, "eval start-up (checkpoint, dataset, model)",
                        EVAL_STARTUP_TIMEOUT_FACTOR);
    debug_fault_hit(&fault, c.rank, -1);
    ckpt_model cm;
    bool opened = ckpt_model_open(&cm, &c, ckpt, data, threads, err, sizeof err);
    watchdog_disarm(wd);
    if (!opened)
        return eval_fail(&c, wd, err);
    if (data_feed_split_size(cm.feed, split) <= 0) {
        snprintf(msg, sizeof msg, "%.900s has no '%s' split (or it is empty)", data, split);
        ckpt_model_close(&cm);
        return eval_fail(&c, wd, msg);
    }
    model *m = cm.model;
    data_feed *feed = cm.feed;
    adam_config ac = adam_config_default();
    trainer t;
    trainer_init(&t, m, &c, &ac, true, false, cm.rc.micro_batch, 0.0f, cm.rc.seed);

    int K = m->shape.num_classes;
    int64_t *confusion = xcalloc((size_t)K * K, sizeof *confusion);
    double loss_sum = 0.0;
    data_feed_eval_begin(feed, split, 0);
    const sample_block *blk;
    while ((blk = data_feed_eval_next(feed)))
        trainer_eval_block(&t, blk, &loss_sum, confusion);
    debug_fault_hit(&fault, c.rank, 0);
    watchdog_arrive(wd, 0, "eval reductions");
    watchdog_arm(wd, 0, "eval reductions (confusion counts and loss)");
    HEED_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, confusion, K * K, MPI_INT64_T, MPI_SUM, c.mpi));
    eval_result e = {0};
    e.num_classes = K;
    e.confusion = confusion;
    for (int i = 0; i < K * K; i++)
        e.n += confusion[i];
    e.loss = comm_sum_ordered(&c, loss_sum, t.parts) / (e.n ? e.n : 1);
    watchdog_disarm(wd);
    confusion_scores(confusion, K, &e.accuracy, &e.macro_f1);
    if (c.rank == 0)
        printf("eval %s of %s (step %lld): loss %.4f accuracy %.4f macro-F1 %.4f (n=%lld)\n", split,
               ckpt, (long long)cm.meta.step, e.loss, e.accuracy, e.macro_f1, (long long)e.n);
    free(confusion);
    trainer_free(&t);
    ckpt_model_close(&cm);
    watchdog_free(wd);
    comm_free(&c);
    HEED_MPI_CHECK(MPI_Finalize());
    return HEED_EXIT_OK;
}
