/*
 * cmd_train.c - `heed train`: options, data, model, the training loop,
 * evaluation, metrics and curves.
 */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT (default_threads) */

#include "app/commands.h"
#include "app/blas_kernel.h"
#include "app/class_weights.h"
#include "app/config.h"
#include "app/curves.h"
#include "app/data_feed.h"
#include "app/init_towers.h"
#include "app/metrics.h"
#include "app/trainer.h"

#include "core/check.h"
#include "dist/check_dist.h"
#include "dist/checkpoint.h"
#include "dist/comm.h"
#include "dist/dataset.h"
#include "dist/params_file.h"
#include "dist/watchdog.h"
#include "dist/watchdog_fault.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* OpenBLAS's own call; cblas.h of other BLAS builds lacks it. */
void openblas_set_num_threads(int num_threads);

typedef struct run {
    run_config rc;
    comm comm;
    data_feed *data;
    model *model;
    trainer trainer;
    metrics metrics;
    curve loss_curve, acc_curve;
    int64_t total_steps, steps_per_epoch;
    char eval_split[8];
    watchdog *wd;      /* --collective-timeout */
    debug_fault fault; /* HEED_DEBUG_FAULT, tests only */
    int64_t step_now;  /* for the watchdog's messages */
    char ckpt_dir[CONFIG_STR + 16];
    int64_t last_ckpt_step; /* -1: none written by this process */
} run;

/* Start-up may take this many --collective-timeout before the watchdog
 * calls it a hang: it loads --in-memory splits and reads checkpoints. */
#define STARTUP_TIMEOUT_FACTOR 4.0

static bool is_root(const run *r) {
    return r->comm.rank == 0;
}

/* Every rank reached the same verdict on the same input: rank 0 says why,
 * everyone leaves MPI cleanly with the same code. */
/* --class-balance: every rank counts the same train labels, so all get the
 * same weights without a collective. Rank 0 shows their range. */
static void set_class_weights(run *r) {
    int K = r->model->shape.num_classes;
    int64_t *counts = data_feed_train_label_counts(r->data);
    float *w = xmalloc(sizeof *w * (size_t)K);
    class_weights_from_counts(counts, K, r->rc.class_balance, w);
    trainer_set_class_weights(&r->trainer, w);
    if (is_root(r)) {
        const dataset *ds = data_feed_dataset(r->data);
        int lo = -1, hi = -1;
        for (int k = 0; k < K; k++) {
            if (counts[k] == 0)
                continue;
            if (lo < 0 || w[k] < w[lo])
                lo = k;
            if (hi < 0 || w[k] > w[hi])
                hi = k;
        }
        if (lo >= 0)
            printf("heed train: class weights (--class-balance %g): %.3g (%s, %lld samples) to "
                   "%.3g (%s, %lld samples)\n",
                   r->rc.class_balance, w[lo], ds->classes[lo], (long long)counts[lo], w[hi],
                   ds->classes[hi], (long long)counts[hi]);
    }
    free(w);
    free(counts);
}

/* --comm-thread: on, or auto from COMM_THREAD_AUTO_RANKS ranks up, starts
 * the progress thread of the overlapped reduction. `on` with an MPI that
 * gives less than MPI_THREAD_SERIALIZED is an error (same on every rank);
 * auto then keeps the backward hook. */
static bool start_comm_thread(run *r, int provided, char *err, size_t errlen) {
    bool on = !strcmp(r->rc.comm_thread, "on");
    bool want =
        on || (!strcmp(r->rc.comm_thread, "auto") && r->comm.size >= COMM_THREAD_AUTO_RANKS);
    if (!want || !r->rc.overlap || r->comm.size == 1 || r->rc.sync_bn)
        return true; /* --sync-bn: config.c refuses on, auto keeps the hook */
    if (trainer_start_comm_thread(&r->trainer) || !on)
        return true; /* auto without the thread level keeps the hook */
    snprintf(err, errlen,
             "--comm-thread on needs MPI_THREAD_SERIALIZED, but this MPI gives thread level %d "
             "(use --comm-thread off, or an MPI built with thread support)",
             provided);
    return false;
}

/* --sync-bn: the batch-norm sums are collectives in every micro-batch, so
 * every rank must run the same number of them, none empty. Whole global
 * batches split evenly give that. */
static bool sync_bn_shares_match(const run_config *rc, int p, char *err, size_t errlen) {
    int mb = rc->micro_batch;
    if (rc->batch_size % p == 0 && (mb <= 0 || (rc->batch_size / p) % mb == 0) && rc->drop_last)
        return true;
    snprintf(err, errlen,
             "--sync-bn runs every rank through the same micro-batches: --batch-size (%d) must be "
             "a multiple of the %d ranks%s, with --drop-last on",
             rc->batch_size, p, mb > 0 ? " times --micro-batch" : "");
    return false;
}

static int finish_bad_input(run *r, const char *msg) {
    if (r->comm.rank == 0)
        fprintf(stderr, "heed train: %s\n", msg);
    watchdog_free(r->wd); /* collective, as the verdict */
    r->wd = NULL;
    comm_free(&r->comm);
    MPI_Finalize();
    return HEED_EXIT_BAD_INPUT;
}

/* The fusion-only flags on another model are a mistake, not a no-op.
 * --init-image-from / --init-text-from (fusion only): every rank loads the
 * same files, so all start from the same values; one verdict for all ranks.
 * Before --resume, which overwrites every parameter anyway. */
static bool init_towers(run *r, char *err, size_t errlen) {
    const char *files[2] = {r->rc.init_image_from, r->rc.init_text_from};
    const char *prefixes[2] = {"image.", "text."}, *opts[2] = {"image", "text"};
    bool ok = true;
    const model_config *mc = &r->rc.mc;
    if (strcmp(r->rc.model, "fusion") != 0 &&
        (mc->freeze_image || mc->freeze_text || mc->xattn_reverse)) {
        snprintf(err, errlen,
                 "--freeze-image, --freeze-text and --xattn-reverse need --model "
                 "fusion");
        ok = false;
    }
    for (int i = 0; i < 2 && ok; i++) {
        if (!files[i][0])
            continue;
        int loaded = 0;
        if (strcmp(r->rc.model, "fusion") != 0) {
            snprintf(err, errlen, "--init-%s-from needs --model fusion", opts[i]);
            ok = false;
        } else {
            ok = init_towers_load(&r->model->ps, prefixes[i], files[i], &loaded, err, errlen);
        }
        if (ok && is_root(r))
            printf("heed train: %s tower: %d tensors from %s\n", opts[i], loaded, files[i]);
    }
    int bad = !ok, any = 0;
    HEED_MPI_CHECK(MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, r->comm.mpi));
    if (any && ok)
        snprintf(err, errlen, "--init-image-from/--init-text-from failed on another rank");
    return !any;
}

/* --init-from FILE: every tensor of the model that the file has under the
 * same name (shape checked) starts from the file's values; the others keep
 * their initial values (a new head), and the file's extra tensors (an MLM
 * head) are ignored. A file that gives the model nothing is an error. Every
 * rank reads the file; one verdict for all. Before --resume. */
static bool init_from(run *r, char *err, size_t errlen) {
    const char *path = r->rc.init_from;
    if (!path[0])
        return true;
    params_file_report rep;
    bool ok = params_file_read(path, &r->model->ps, false, &rep, err, errlen);
    if (ok && rep.loaded == 0) {
        snprintf(err, errlen, "--init-from %s: no tensor of model '%s' is in the file", path,
                 r->rc.model);
        ok = false;
    }
    if (ok && is_root(r))
        printf("heed train: --init-from %s: %d tensors loaded, %d kept initial%s%s%s, %d in the "
               "file unused%s%s%s\n",
               path, rep.loaded, rep.missing, rep.missing ? " (first: " : "",
               rep.missing ? rep.first_missing : "", rep.missing ? ")" : "", rep.unused,
               rep.unused ? " (first: " : "", rep.unused ? rep.first_unused : "",
               rep.unused ? ")" : "");
    int bad = !ok, any = 0;
    HEED_MPI_CHECK(MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, r->comm.mpi));
    if (any && ok)
        snprintf(err, errlen, "--init-from %s failed on another rank", path);
    return !any;
}

static void make_dirs(const char *path) {
    char buf[CONFIG_STR];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0777) && errno != EEXIST)
                HEED_DIE(HEED_EXIT_BAD_INPUT, "cannot create directory '%s': %s", buf,
                         strerror(errno));
            *p = '/';
        }
    }
    if (mkdir(buf, 0777) && errno != EEXIST)
        HEED_DIE(HEED_EXIT_BAD_INPUT, "cannot create directory '%s': %s", buf, strerror(errno));
}

/* Cores of the node / ranks on it, but never more than the cores this rank
 * is bound to: Open MPI binds each of 1-2 ranks to one core, and 8 threads
 * on one core are slower than 1. */
static int default_threads(const comm *c) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int t = (int)(cores / (c->local_size > 0 ? c->local_size : 1));
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) < t)
        t = CPU_COUNT(&set);
    return t > 0 ? t : 1;
}

static eval_result evaluate(run *r, const char *split, int64_t limit, int64_t *confusion) {
    int K = r->model->shape.num_classes;
    memset(confusion, 0, sizeof(int64_t) * K * K);
    double loss_sum = 0.0;
    data_feed_eval_begin(r->data, split, limit);
    const sample_block *blk;
    while ((blk = data_feed_eval_next(r->data)))
        trainer_eval_block(&r->trainer, blk, &loss_sum, confusion);
    watchdog_arrive(r->wd, r->step_now, "evaluation reductions");
    watchdog_arm(r->wd, r->step_now, "evaluation reductions");
    HEED_MPI_CHECK(
        MPI_Allreduce(MPI_IN_PLACE, confusion, K * K, MPI_INT64_T, MPI_SUM, r->comm.mpi));
    eval_result e = {0};
    e.num_classes = K;
    e.confusion = confusion;
    for (int i = 0; i < K * K; i++)
        e.n += confusion[i];
    e.loss = comm_sum_ordered(&r->comm, loss_sum, r->trainer.parts) / (e.n ? e.n : 1);
    watchdog_disarm(r->wd);
    confusion_scores(confusion, K, &e.accuracy, &e.macro_f1);
    return e;
}

static void log_eval(run *r, int64_t step, int epoch, const char *split, const eval_result *e) {
    if (!is_root(r))
        return;
    progress_end(&r->metrics);
    fprintf(stderr, "eval %s at step %lld: loss %.4f accuracy %.4f macro-F1 %.4f (n=%lld)\n", split,
            (long long)step, e->loss, e->accuracy, e->macro_f1, (long long)e->n);
    metrics_eval(&r->metrics, step, epoch, split, e);
    if (!strcmp(split, r->eval_split)) /* one split per curve; test is reported once */
        curve_add(&r->acc_curve, (double)step, e->accuracy);
}

/* The model options that fix the parameter layout and meaning: a
 * checkpoint resumes only into the same string. */
static void arch_string(const run *r, char *out, size_t len) {
    const model_config *mc = &r->rc.mc;
    const data_shape *d = &r->model->shape;
    snprintf(out, len,
             "model=%s dim=%d depth=%d heads=%d ffn=%d patch=%d max_len=%d pool=%s classes=%d "
             "channels=%d height=%d width=%d vocab=%d",
             r->rc.model, mc->dim, mc->depth, mc->heads, mc->ffn, mc->patch, mc->max_len,
             model_pool_effective(r->rc.model, mc), d->num_classes, d->channels, d->height,
             d->width, d->vocab_size);
}

/* Collective: checkpoint after `done` steps into RUNDIR/checkpoints, then
 * rank 0 applies --keep/--keep-every. */
static void save_checkpoint(run *r, int64_t done, float lr) {
    if (r->last_ckpt_step == done)
        return;
    ckpt_meta m;
    memset(&m, 0, sizeof m);
    snprintf(m.model, sizeof m.model, "%s", r->rc.model);
    arch_string(r, m.arch, sizeof m.arch);
    m.step = done;
    m.epoch = done / r->steps_per_epoch;
    m.step_in_epoch = done % r->steps_per_epoch;
    m.global_batch = r->rc.batch_size;
    m.train_size = data_feed_split_size(r->data, "train");
    m.steps_per_epoch = r->steps_per_epoch;
    m.seed = r->rc.seed;
    m.adam_t = r->trainer.sync.adam.t;
    snprintf(m.schedule, sizeof m.schedule, "%s", r->rc.schedule);
    m.base_lr = r->rc.lr;
    m.lr = lr;
    m.warmup = r->rc.warmup;
    m.total_steps = r->total_steps;
    size_t text_len = 0;
    FILE *mem = open_memstream(&m.config, &text_len);
    if (!mem)
        HEED_DIE(HEED_EXIT_INTERNAL, "open_memstream: %s", strerror(errno));
    run_config_print(&r->rc, true, mem);
    if (fclose(mem) != 0)
        HEED_DIE(HEED_EXIT_INTERNAL, "writing the configuration text failed");
    char path[CKPT_PATH];
    ckpt_path_for_step(path, sizeof path, r->ckpt_dir, done);
    double t0 = MPI_Wtime();
    ckpt_write_file(&r->comm, path, &m, &r->model->ps, &r->trainer.sync.adam);
    double dt = MPI_Wtime() - t0;
    free(m.config);
    r->last_ckpt_step = done;
    if (is_root(r)) {
        ckpt_retain(r->ckpt_dir, r->rc.keep, r->rc.keep_every);
        progress_end(&r->metrics);
        double mb = (double)r->model->ps.numel * 3 * sizeof(float) / 1e6;
        fprintf(stderr, "checkpoint %s (%.1f MB, %.2f s)\n", path, mb, dt);
    }
}

/* HEED_DEBUG_SIGNAL_STEP=N: the last rank sends itself SIGUSR1 during step
 * N, so the preemption path can be tested deterministically. */
static void debug_signal(const run *r, int64_t step) {
    const char *env = getenv("HEED_DEBUG_SIGNAL_STEP");
    if (env && env[0] && r->comm.rank == r->comm.size - 1 && strtoll(env, NULL, 10) == step)
        if (raise(SIGUSR1) != 0)
            HEED_DIE(HEED_EXIT_INTERNAL, "raise(SIGUSR1) failed");
}

static int train_loop(run *r, int64_t start_step) {
    run_config *rc = &r->rc;
    int K = r->model->shape.num_classes;
    int64_t *confusion = xcalloc((size_t)K * K, sizeof *confusion);
    lr_schedule sched = !strcmp(rc->schedule, "cosine")   ? LR_COSINE
                        : !strcmp(rc->schedule, "linear") ? LR_LINEAR
                                                          : LR_CONSTANT;
    double t0 = MPI_Wtime(), t_log = t0;
    int64_t samples_since_log = 0;
    int exit_code = HEED_EXIT_OK;
    int64_t skipped = 0;
    for (int64_t step = start_step; step < r->total_steps; step++) {
        int epoch = (int)(step / r->steps_per_epoch);
        int64_t in_epoch = step % r->steps_per_epoch;
        int64_t global_n = 0;
        r->step_now = step;
        fault_kind fault = debug_fault_hit(&r->fault, r->comm.rank, step);
        if (fault == FAULT_SKIP)
            continue;
        watchdog_arrive(r->wd, step, "train step");
        const sample_block *blk = data_feed_train_batch(r->data, epoch, in_epoch, &global_n);
        if (fault == FAULT_NAN && blk->n > 0 && blk->images)
            ((float *)blk->images)[0] = NAN; /* the loader refills it next step */
        float lr = lr_at(sched, rc->lr, step, rc->warmup, r->total_steps);
        watchdog_arm(r->wd, step, "train step (loss and gradient all-reduce)");
        step_result sr = trainer_step(&r->trainer, blk, global_n, step, lr, rc->clip);
        samples_since_log += global_n;
        if (!sr.finite)
            watchdog_disarm(r->wd);
        if (!sr.finite && !strcmp(rc->on_nonfinite, "skip")) {
            /* sr.finite is one verdict reached by all ranks before the update:
             * every rank skips the same step and the parameters are unchanged. */
            skipped++;
            if (is_root(r))
                fprintf(stderr,
                        "\nheed train: the loss or gradient is not finite at step %lld (epoch %d); "
                        "step skipped (--on-nonfinite skip, %lld skipped so far)\n",
                        (long long)step, epoch, (long long)skipped);
            continue;
        }
        if (!sr.finite) {
            if (is_root(r))
                fprintf(stderr,
                        "\nheed train: the loss or gradient is not finite at step %lld (epoch "
                        "%d, loss %g, grad norm %g); lower --lr or enable --clip, or "
                        "--on-nonfinite skip\n",
                        (long long)step, epoch, sr.loss, sr.grad_norm);
            exit_code = HEED_EXIT_NONFINITE;
            break;
        }
        if (rc->check_sync && !grad_sync_params_agree(&r->comm, &r->model->ps))
            HEED_DIE(HEED_EXIT_INTERNAL, "rank %d: parameters differ across ranks after step %lld",
                     r->comm.rank, (long long)step);
        bool last = step + 1 == r->total_steps;
        debug_signal(r, step);
        bool preempted = ckpt_signal_agree(&r->comm);
        watchdog_disarm(r->wd);
        if (preempted || last || (rc->ckpt_every && (step + 1) % rc->ckpt_every == 0)) {
            watchdog_arm(r->wd, step, "checkpoint write (collective HDF5)");
            save_checkpoint(r, step + 1, lr);
            watchdog_disarm(r->wd);
        }
        if (preempted) {
            if (is_root(r)) {
                progress_end(&r->metrics);
                fprintf(stderr,
                        "heed train: preempted by a signal after step %lld; checkpoint written, "
                        "exit %d (resume with --resume auto)\n",
                        (long long)step + 1, HEED_EXIT_PREEMPTED);
            }
            exit_code = HEED_EXIT_PREEMPTED;
            break;
        }
        if (is_root(r) && (last || (rc->log_every && (step + 1) % rc->log_every == 0))) {
            double now = MPI_Wtime();
            double sps = samples_since_log / (now - t_log);
            double eta = (now - t0) / (step + 1) * (r->total_steps - step - 1);
            progress_print(&r->metrics, step + 1, r->total_steps, epoch, sr.loss, lr, sps, eta);
            metrics_train(&r->metrics, step + 1, epoch, sr.loss, lr, sps, sr.grad_norm, now - t0);
            curve_add(&r->loss_curve, (double)(step + 1), sr.loss);
            t_log = now;
            samples_since_log = 0;
        }
        bool epoch_end = in_epoch + 1 == r->steps_per_epoch;
        bool eval_now = rc->eval_every ? (step + 1) % rc->eval_every == 0 : epoch_end;
        if (eval_now && !last && r->eval_split[0]) {
            eval_result e = evaluate(r, r->eval_split, rc->max_eval, confusion);
            log_eval(r, step + 1, epoch, r->eval_split, &e);
        }
    }
    if (exit_code == HEED_EXIT_OK && start_step < r->total_steps) {
        int epoch = (int)((r->total_steps - 1) / r->steps_per_epoch);
        if (r->eval_split[0] && strcmp(r->eval_split, "test") != 0) {
            eval_result e = evaluate(r, r->eval_split, rc->max_eval, confusion);
            log_eval(r, r->total_steps, epoch, r->eval_split, &e);
        }
        if (data_feed_split_size(r->data, "test") > 0) {
            eval_result e = evaluate(r, "test", rc->max_eval, confusion);
            log_eval(r, r->total_steps, epoch, "test", &e);
            if (is_root(r))
                printf("test accuracy: %.4f (macro-F1 %.4f, n=%lld, %d ranks, %.1f s)\n",
                       e.accuracy, e.macro_f1, (long long)e.n, r->comm.size, MPI_Wtime() - t0);
        }
    }
    free(confusion);
    return exit_code;
}

static void write_run_files(run *r) {
    char path[CONFIG_STR + 32];
    make_dirs(r->rc.out);
    snprintf(path, sizeof path, "%s/config.ini", r->rc.out);
    FILE *f = xfopen(path, "w");
    fprintf(f, "# effective configuration of this run (heed train --config %s)\n", path);
    run_config_print(&r->rc, true, f);
    if (fclose(f) != 0)
        HEED_DIE(HEED_EXIT_INTERNAL, "writing %s failed", path);
    snprintf(path, sizeof path, "%s/metrics.jsonl", r->rc.out);
    metrics_open(&r->metrics, path);
    make_dirs(r->ckpt_dir);
}

/* Collective. A checkpoint of this run's model, data and batch, or a
 * message saying what differs. */
static bool compatible(const run *r, const ckpt_meta *m, const char *path, char *err,
                       size_t errlen) {
    char arch[CKPT_STR];
    arch_string(r, arch, sizeof arch);
    if (strcmp(m->model, r->rc.model) != 0)
        snprintf(err, errlen, "%s is a checkpoint of model '%s', not '%s'", path, m->model,
                 r->rc.model);
    else if (strcmp(m->arch, arch) != 0)
        snprintf(err, errlen,
                 "%.200s was written for another architecture or dataset:\n  checkpoint: "
                 "%.300s\n  this run:   %.300s",
                 path, m->arch, arch);
    else if (m->global_batch != r->rc.batch_size || m->seed != r->rc.seed)
        snprintf(err, errlen,
                 "%s has --batch-size %lld --seed %llu, this run %d and %llu: the sample sequence "
                 "would not continue",
                 path, (long long)m->global_batch, (unsigned long long)m->seed, r->rc.batch_size,
                 (unsigned long long)r->rc.seed);
    else if (m->train_size != data_feed_split_size(r->data, "train") ||
             m->steps_per_epoch != r->steps_per_epoch)
        snprintf(err, errlen,
                 "%s was written for a train split of %lld samples (%lld steps per epoch), this "
                 "data has %lld (%lld)",
                 path, (long long)m->train_size, (long long)m->steps_per_epoch,
                 (long long)data_feed_split_size(r->data, "train"), (long long)r->steps_per_epoch);
    else
        return true;
    return false;
}

/* Collective: the checkpoint paths to try, newest first (rank 0 lists the
 * directory, everyone gets the same list). */
static int resume_candidates(const run *r, char ***paths) {
    int n = 0;
    int64_t *steps = NULL;
    if (!strcmp(r->rc.resume, "auto")) {
        if (is_root(r))
            n = ckpt_list(r->ckpt_dir, paths, &steps);
        HEED_MPI_CHECK(MPI_Bcast(&n, 1, MPI_INT, 0, r->comm.mpi));
        if (!is_root(r))
            *paths = xcalloc((size_t)(n ? n : 1), sizeof **paths);
        for (int i = 0; i < n; i++) {
            char buf[CKPT_PATH] = "";
            if (is_root(r))
                snprintf(buf, sizeof buf, "%s", (*paths)[i]);
            HEED_MPI_CHECK(MPI_Bcast(buf, (int)sizeof buf, MPI_CHAR, 0, r->comm.mpi));
            if (!is_root(r))
                (*paths)[i] = xstrdup(buf);
        }
        free(steps);
    } else {
        n = 1;
        *paths = xcalloc(1, sizeof **paths);
        (*paths)[0] = xstrdup(r->rc.resume);
    }
    return n;
}

/* Collective: --resume auto|PATH. auto takes the newest checkpoint that is
 * complete and passes its checksums, warning about each broken one it
 * skips, and starts from step 0 when there is none; a PATH must load. A
 * checkpoint of another model or configuration is refused either way. */
static bool resume(run *r, int64_t *start_step, char *err, size_t errlen) {
    bool automatic = !strcmp(r->rc.resume, "auto");
    char **paths = NULL;
    int n = resume_candidates(r, &paths);
    bool ok = true, loaded = false, dirty = false;
    for (int i = 0; i < n && !loaded; i++) {
        ckpt_meta m;
        char why[1024];
        bool good = ckpt_read_meta(&r->comm, paths[i], &m, why, sizeof why);
        if (good && !compatible(r, &m, paths[i], err, errlen)) {
            ckpt_meta_free(&m);
            ok = false;
            break;
        }
        if (good) {
            dirty = true;
            good = ckpt_read_state(&r->comm, paths[i], &r->model->ps, &r->trainer.sync.adam, why,
                                   sizeof why);
        }
        if (good) {
            *start_step = m.step;
            loaded = true;
            if (is_root(r))
                fprintf(stderr,
                        "heed train: resuming from %s (step %lld, epoch %lld, written by %d "
                        "rank%s)\n",
                        paths[i], (long long)m.step, (long long)m.epoch, m.world_size,
                        m.world_size == 1 ? "" : "s");
        } else if (automatic) {
            if (is_root(r))
                fprintf(stderr, "heed train: warning: skipping broken checkpoint %s: %s\n",
                        paths[i], why);
        } else {
            snprintf(err, errlen, "--resume: %.1000s", why);
            ok = false;
        }
        ckpt_meta_free(&m);
    }
    if (automatic && ok && !loaded) {
        if (is_root(r))
            fprintf(stderr,
                    "heed train: --resume auto: no usable checkpoint in %s, starting at "
                    "step 0\n",
                    r->ckpt_dir);
        if (dirty) { /* a failed load overwrote part of the state */
            params_reset_values(&r->model->ps, r->rc.seed);
            adam_state *a = &r->trainer.sync.adam;
            memset(a->m, 0, sizeof(float) * (size_t)(a->hi - a->lo));
            memset(a->v, 0, sizeof(float) * (size_t)(a->hi - a->lo));
            a->t = 0;
        }
    }
    for (int i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
    return ok;
}

int cmd_train(int argc, char **argv) {
    int provided;
    /* SERIALIZED: grad_sync's progress thread calls MPI while the training
     * thread computes (never both at once, grad_sync_thread.h) */
    HEED_MPI_CHECK(MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided));
    run r;
    memset(&r, 0, sizeof r);
    comm_init(&r.comm, MPI_COMM_WORLD);
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--help")) {
            if (is_root(&r)) {
                printf("usage: heed train --model NAME --data FILE.h5 [options]\n\noptions "
                       "(also as `name = value` in an INI file given by --config):\n");
                run_config_print_help(stdout);
            }
            comm_free(&r.comm);
            MPI_Finalize();
            return HEED_EXIT_OK;
        }
    char err[1024];
    run_config_default(&r.rc);
    if (!run_config_parse_args(&r.rc, argc, argv, err, sizeof err) ||
        !run_config_check(&r.rc, err, sizeof err))
        return finish_bad_input(&r, err);
    if (!r.rc.out[0])
        snprintf(r.rc.out, sizeof r.rc.out, "runs/%s", r.rc.model);
    r.rc.mc.seed = r.rc.seed;
    int threads = r.rc.threads ? r.rc.threads : default_threads(&r.comm);
    openblas_set_num_threads(threads);
    /* From here on no rank waits forever: start-up (dataset open, model set-up,
     * --init-from, --resume) runs armed with a longer limit, because it reads
     * files as well as waiting for the others. */
    r.fault = debug_fault_from_env();
    r.wd = watchdog_create(&r.comm, r.rc.collective_timeout);
    watchdog_arm_scaled(r.wd, -1, "start-up (dataset, model, --init-from, --resume)",
                        STARTUP_TIMEOUT_FACTOR);

    if (!model_kind_find(r.rc.model)) {
        /* Before touching the data: a typo in --model is the likelier mistake. */
        model_create(r.rc.model, &r.rc.mc, &(data_shape){0}, err, sizeof err);
        return finish_bad_input(&r, err);
    }
    if (r.rc.exact_reduce && r.rc.micro_batch <= 0)
        return finish_bad_input(&r, "--exact-reduce needs --micro-batch N (the unit that is "
                                    "summed exactly; keep it fixed across rank counts)");
    if (r.rc.sync_bn && r.comm.size > 1 &&
        !sync_bn_shares_match(&r.rc, r.comm.size, err, sizeof err))
        return finish_bad_input(&r, err);
    r.data = data_feed_open(r.rc.data, &r.comm, r.rc.batch_size, r.rc.seed, r.rc.drop_last,
                            r.rc.in_memory, r.rc.length_buckets);
    if (r.rc.exact_reduce)
        data_feed_use_micro_batches(r.data, r.rc.micro_batch);
    data_shape shape;
    data_feed_shape(r.data, &shape);
    r.model = model_create(r.rc.model, &r.rc.mc, &shape, err, sizeof err);
    if (!r.model) {
        data_feed_free(r.data);
        return finish_bad_input(&r, err);
    }
    if (r.rc.class_balance > 0.0f && r.model->kind->loss) {
        snprintf(err, sizeof err,
                 "--class-balance weighs the classes of a classifier's loss; model %s trains "
                 "its own objective",
                 r.rc.model);
        model_free(r.model);
        data_feed_free(r.data);
        return finish_bad_input(&r, err);
    }
    if (!init_towers(&r, err, sizeof err) || !init_from(&r, err, sizeof err)) {
        data_feed_free(r.data);
        return finish_bad_input(&r, err);
    }
    r.steps_per_epoch = data_feed_steps_per_epoch(r.data);
    if (r.steps_per_epoch <= 0) {
        snprintf(err, sizeof err, "%s: the train split has fewer samples than --batch-size %d",
                 r.rc.data, r.rc.batch_size);
        return finish_bad_input(&r, err);
    }
    snprintf(r.ckpt_dir, sizeof r.ckpt_dir, "%s/checkpoints", r.rc.out);
    r.last_ckpt_step = -1;
    r.total_steps = r.rc.steps > 0 ? r.rc.steps : (int64_t)r.rc.epochs * r.steps_per_epoch;
    snprintf(r.eval_split, sizeof r.eval_split, "%s",
             data_feed_split_size(r.data, "val") > 0    ? "val"
             : data_feed_split_size(r.data, "test") > 0 ? "test"
                                                        : "");
    adam_config ac = adam_config_default();
    ac.weight_decay = r.rc.weight_decay;
    trainer_init(&r.trainer, r.model, &r.comm, &ac, r.rc.zero, r.rc.exact_reduce, r.rc.micro_batch,
                 r.rc.label_smoothing, r.rc.seed);
    trainer_set_comm(&r.trainer, (size_t)r.rc.bucket_kb * 1024, r.rc.overlap);
    if (r.rc.sync_bn)
        trainer_set_sync_bn(&r.trainer);
    if (!start_comm_thread(&r, provided, err, sizeof err)) {
        trainer_free(&r.trainer);
        model_free(r.model);
        data_feed_free(r.data);
        return finish_bad_input(&r, err);
    }
    if (r.rc.class_balance > 0.0f)
        set_class_weights(&r);
    if (is_root(&r)) {
        write_run_files(&r);
        printf("heed train: %s on %s, %d rank%s x %d thread%s, %lld parameters, %lld steps "
               "(%lld per epoch), run directory %s\n",
               r.rc.model, r.rc.data, r.comm.size, r.comm.size > 1 ? "s" : "", threads,
               threads > 1 ? "s" : "", (long long)r.model->ps.numel, (long long)r.total_steps,
               (long long)r.steps_per_epoch, r.rc.out);
        printf("# effective configuration\n");
        run_config_print(&r.rc, false, stdout);
        fflush(stdout);
    } else {
        metrics_open(&r.metrics, NULL);
    }

    debug_fault_hit(&r.fault, r.comm.rank, -1);
    HEED_MPI_CHECK(MPI_Barrier(r.comm.mpi)); /* the run directory exists */
    int64_t start_step = 0;
    if (r.rc.resume[0] && !resume(&r, &start_step, err, sizeof err))
        return finish_bad_input(&r, err);
    if (start_step >= r.total_steps && is_root(&r))
        fprintf(stderr,
                "heed train: the checkpoint is at step %lld, --steps/--epochs ask for %lld: "
                "nothing to train\n",
                (long long)start_step, (long long)r.total_steps);
    char blas_advice[320];
    if (is_root(&r) && blas_kernel_check(blas_advice, sizeof blas_advice))
        fprintf(stderr, "heed train: warning: %s\n", blas_advice);
    ckpt_signal_install();
    watchdog_disarm(r.wd);
    int code = train_loop(&r, start_step);
    watchdog_free(r.wd);

    if (is_root(&r)) {
        progress_end(&r.metrics);
        char path[CONFIG_STR + 32];
        snprintf(path, sizeof path, "%s/curves.png", r.rc.out);
        if (!curves_write_png(path, &r.loss_curve, &r.acc_curve))
            fprintf(stderr, "heed train: could not write %s: %s\n", path, strerror(errno));
        metrics_close(&r.metrics);
    }
    curve_free(&r.loss_curve);
    curve_free(&r.acc_curve);
    trainer_free(&r.trainer);
    model_free(r.model);
    data_feed_free(r.data);
    comm_free(&r.comm);
    HEED_MPI_CHECK(MPI_Finalize());
    return code;
}
