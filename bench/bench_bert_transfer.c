/*
 * bench_bert_transfer.c - does MLM pretraining help? In one process: train
 * bert_mlm on the train split's token sequences for --mlm-steps steps, copy
 * every parameter the classifier shares with it (embeddings, encoder,
 * pooler) into a fresh `bert`, fine-tune that for the usual epochs, and
 * report test accuracy and macro-F1. --mlm-steps 0 trains the same
 * classifier from scratch (the control). Until checkpoints and --init-from
 * land in heed train, this is how the two-stage recipe is measured; the
 * steps are exactly heed train's (trainer_step, data_feed, AdamW, the LR
 * schedule), only the hand-over of parameters is in memory.
 *
 *   mpirun -n 2 bench_bert_transfer --data data/wordnet.h5 --mlm-steps 3000 \
 *       --mlm-lr 1e-3 [every heed train option: --epochs --lr --dim ...]
 *
 * Prints one JSON line with the results.
 */
#include "app/config.h"
#include "app/data_feed.h"
#include "app/metrics.h"
#include "app/trainer.h"

#include "core/check.h"
#include "dist/check_dist.h"
#include "dist/comm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void openblas_set_num_threads(int num_threads);

typedef struct stage {
    const char *name;
    int64_t steps;
    float lr;
} stage;

/* heed train's loop, without metrics files: `steps` steps from step 0. */
static double train_stage(trainer *t, data_feed *df, const run_config *rc, const stage *s,
                          const comm *c) {
    int64_t spe = data_feed_steps_per_epoch(df);
    lr_schedule sched = !strcmp(rc->schedule, "cosine")   ? LR_COSINE
                        : !strcmp(rc->schedule, "linear") ? LR_LINEAR
                                                          : LR_CONSTANT;
    double t0 = MPI_Wtime(), loss = NAN;
    for (int64_t step = 0; step < s->steps; step++) {
        int64_t global_n = 0;
        const sample_block *blk =
            data_feed_train_batch(df, (int)(step / spe), step % spe, &global_n);
        float lr = lr_at(sched, s->lr, step, rc->warmup, s->steps);
        step_result r = trainer_step(t, blk, global_n, step, lr, rc->clip);
        if (!r.finite)
            HEED_DIE(HEED_EXIT_NONFINITE, "%s: non-finite loss at step %lld", s->name,
                     (long long)step);
        loss = r.loss;
        if (c->rank == 0 && (step + 1) % 200 == 0)
            fprintf(stderr, "%s step %lld/%lld loss %.4f lr %.2e %.0f s\n", s->name,
                    (long long)step + 1, (long long)s->steps, r.loss, lr, MPI_Wtime() - t0);
    }
    return loss;
}

static void evaluate(trainer *t, data_feed *df, const char *split, const comm *c, double *acc,
                     double *f1, double *loss) {
    int K = t->model->shape.num_classes;
    int64_t *conf = xcalloc((size_t)K * K, sizeof *conf);
    double loss_sum = 0.0;
    data_feed_eval_begin(df, split, 0);
    const sample_block *blk;
    while ((blk = data_feed_eval_next(df)))
        trainer_eval_block(t, blk, &loss_sum, conf);
    HEED_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, conf, K * K, MPI_INT64_T, MPI_SUM, c->mpi));
    HEED_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &loss_sum, 1, MPI_DOUBLE, MPI_SUM, c->mpi));
    int64_t n = 0;
    for (int i = 0; i < K * K; i++)
        n += conf[i];
    confusion_scores(conf, K, acc, f1);
    *loss = loss_sum / (double)data_feed_split_size(df, split);
    (void)n;
    free(conf);
}

int main(int argc, char **argv) {
    int provided;
    HEED_MPI_CHECK(MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided));
    comm c;
    comm_init(&c, MPI_COMM_WORLD);
    int64_t mlm_steps = 0;
    float mlm_lr = 1e-3f;
    char **rest = xcalloc(argc, sizeof *rest);
    int nrest = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--mlm-steps") && i + 1 < argc)
            mlm_steps = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--mlm-lr") && i + 1 < argc)
            mlm_lr = strtof(argv[++i], NULL);
        else
            rest[nrest++] = argv[i];
    }
    run_config rc;
    run_config_default(&rc);
    snprintf(rc.model, sizeof rc.model, "bert");
    char err[1024];
    if (!run_config_parse_args(&rc, nrest, rest, err, sizeof err) ||
        !run_config_check(&rc, err, sizeof err))
        HEED_DIE(HEED_EXIT_BAD_INPUT, "%s", err);
    rc.mc.seed = rc.seed;
    openblas_set_num_threads(rc.threads > 0 ? rc.threads : 1);
    data_feed *df = data_feed_open(rc.data, &c, rc.batch_size, rc.seed, rc.drop_last, rc.in_memory,
                                   rc.length_buckets);
    data_shape shape;
    data_feed_shape(df, &shape);
    adam_config ac = adam_config_default();
    ac.weight_decay = rc.weight_decay;
    double t0 = MPI_Wtime();

    model *mlm = NULL;
    double mlm_loss = NAN, mlm_acc = NAN, mlm_val_loss = NAN, unused;
    if (mlm_steps > 0) {
        mlm = model_create("bert_mlm", &rc.mc, &shape, err, sizeof err);
        if (!mlm)
            HEED_DIE(HEED_EXIT_BAD_INPUT, "%s", err);
        trainer t;
        trainer_init(&t, mlm, &c, &ac, rc.zero, false, rc.micro_batch, 0.0f, rc.seed);
        stage s = {"mlm", mlm_steps, mlm_lr};
        mlm_loss = train_stage(&t, df, &rc, &s, &c);
        evaluate(&t, df, "val", &c, &mlm_acc, &unused, &mlm_val_loss);
        if (c.rank == 0)
            fprintf(stderr, "mlm: val masked-token accuracy %.4f loss %.4f\n", mlm_acc,
                    mlm_val_loss);
        trainer_free(&t);
    }
    double t_mlm = MPI_Wtime() - t0;

    model *clf = model_create("bert", &rc.mc, &shape, err, sizeof err);
    if (!clf)
        HEED_DIE(HEED_EXIT_BAD_INPUT, "%s", err);
    int copied = 0;
    for (int i = 0; mlm && i < clf->ps.count; i++) {
        tensor *dst = clf->ps.tensors[i];
        tensor *src = params_find(&mlm->ps, dst->name);
        if (src && src->numel == dst->numel) {
            memcpy(dst->data, src->data, sizeof(float) * dst->numel);
            copied++;
        }
    }
    trainer t;
    trainer_init(&t, clf, &c, &ac, rc.zero, false, rc.micro_batch, rc.label_smoothing, rc.seed);
    int64_t steps = rc.steps > 0 ? rc.steps : (int64_t)rc.epochs * data_feed_steps_per_epoch(df);
    stage s = {"finetune", steps, rc.lr};
    train_stage(&t, df, &rc, &s, &c);
    double val_acc, val_f1, test_acc, test_f1, val_loss, test_loss;
    evaluate(&t, df, "val", &c, &val_acc, &val_f1, &val_loss);
    evaluate(&t, df, "test", &c, &test_acc, &test_f1, &test_loss);
    if (c.rank == 0)
        printf("{\"bench\": \"bert_transfer\", \"ranks\": %d, \"mlm_steps\": %lld, \"mlm_lr\": %g, "
               "\"mlm_train_loss\": %.4f, \"mlm_val_masked_acc\": %.4f, \"copied_tensors\": %d, "
               "\"finetune_steps\": %lld, \"lr\": %g, \"val_accuracy\": %.4f, \"val_macro_f1\": "
               "%.4f, \"test_accuracy\": %.4f, \"test_macro_f1\": %.4f, \"mlm_s\": %.0f, "
               "\"total_s\": %.0f}\n",
               c.size, (long long)mlm_steps, mlm_lr, mlm_loss, mlm_acc, copied, (long long)steps,
               rc.lr, val_acc, val_f1, test_acc, test_f1, t_mlm, MPI_Wtime() - t0);
    trainer_free(&t);
    model_free(clf);
    model_free(mlm);
    data_feed_free(df);
    free(rest);
    comm_free(&c);
    HEED_MPI_CHECK(MPI_Finalize());
    return 0;
}
