/*
 * bench_scaling.c - weak scaling of data-parallel training: every rank
 * trains the same model on its own `--batch` random samples per step
 * (trainer_step: forward, backward, bucketed gradient reduction overlapped
 * with backward or not, ZeRO-1 AdamW, parameter all-gather). Prints one JSON
 * line from rank 0 (scripts/bench_scaling.sh runs it at several rank counts,
 * with overlap on and off).
 *
 *   mpirun -n 4 bench_scaling --dim 192 --depth 12 --heads 3 --ffn 768 \
 *          --patch 4 --batch 64 --steps 6 --warmup 2 --overlap 1 --bucket-kb 4096
 *
 * Figures: samples/s over all ranks (timed steps only, slowest rank), and
 * per step and rank (mean over ranks): the wait for reductions after
 * backward (the part of communication NOT hidden, plus any wait for a slower
 * rank's backward), the time spent in the backward hook (posting, testing,
 * adding: CPU work of the reduction done between tape entries), the
 * all-gather of parameters, and the reduction of all buckets alone (after a
 * barrier: pure communication).
 */
#include "app/trainer.h"
#include "core/check.h"
#include "core/rng.h"
#include "dist/check_dist.h"
#include "models/model.h"
#include "model_args.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void openblas_set_num_threads(int num_threads);

static double mean_over_ranks(const comm *c, double x) {
    double sum = 0;
    HEED_MPI_CHECK(MPI_Allreduce(&x, &sum, 1, MPI_DOUBLE, MPI_SUM, c->mpi));
    return sum / c->size;
}

int main(int argc, char **argv) {
    int provided = 0;
    HEED_MPI_CHECK(MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided));
    comm c;
    comm_init(&c, MPI_COMM_WORLD);
    int B = 64, steps = 6, warmup = 2, threads = 1, overlap = 1, bucket_kb = BUCKET_KB_DEFAULT;
    int zero = 1, K = 10, C = 1, H = 28, W = 28;
    model_config cfg = model_config_default();
    cfg.dim = 192;
    cfg.depth = 12;
    cfg.heads = 3;
    cfg.ffn = 768;
    cfg.patch = 4;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--batch"))
            B = atoi(v);
        else if (!strcmp(k, "--steps"))
            steps = atoi(v);
        else if (!strcmp(k, "--warmup"))
            warmup = atoi(v);
        else if (!strcmp(k, "--threads"))
            threads = atoi(v);
        else if (!strcmp(k, "--overlap"))
            overlap = atoi(v);
        else if (!strcmp(k, "--bucket-kb"))
            bucket_kb = atoi(v);
        else if (!strcmp(k, "--zero"))
            zero = atoi(v);
        else if (!strcmp(k, "--image"))
            H = W = atoi(v);
        else if (!model_args_apply(&cfg, k, v))
            HEED_DIE(HEED_EXIT_BAD_INPUT, "unknown option %s", k);
    }
    if (B < 1 || steps < 1 || warmup < 0 || bucket_kb < 0)
        HEED_DIE(HEED_EXIT_BAD_INPUT, "need --batch >= 1, --steps >= 1, --warmup >= 0, "
                                      "--bucket-kb >= 0");
    openblas_set_num_threads(threads);
    data_shape shape = {.num_classes = K, .channels = C, .height = H, .width = W};
    char err[256];
    model *m = model_create("vit", &cfg, &shape, err, sizeof err);
    if (!m)
        HEED_DIE(HEED_EXIT_BAD_INPUT, "%s", err);

    /* This rank's samples: random images, ids that differ between ranks. */
    float *images = xmalloc(sizeof(float) * (size_t)B * C * H * W);
    int32_t *labels = xmalloc(sizeof(int32_t) * (size_t)B);
    int64_t *ids = xmalloc(sizeof(int64_t) * (size_t)B);
    uint64_t key = rng_key(1, 2, (uint64_t)c.rank);
    for (int b = 0; b < B; b++) {
        labels[b] = (int32_t)(rng_bits(key, (uint64_t)b) % (uint64_t)K);
        ids[b] = (int64_t)c.rank * B + b;
    }
    for (int64_t i = 0; i < (int64_t)B * C * H * W; i++)
        images[i] = rng_normal(key, 1000 + (uint64_t)i);
    sample_block blk = {.n = B, .ids = ids, .images = images, .labels = labels};

    adam_config ac = adam_config_default();
    ac.weight_decay = 0.05f;
    trainer t;
    trainer_init(&t, m, &c, &ac, zero != 0, false, 0, 0.0f, 1);
    trainer_set_comm(&t, (size_t)bucket_kb * 1024, overlap != 0);

    double t0 = 0;
    grad_sync_stats base = {0};
    for (int s = 0; s < warmup + steps; s++) {
        if (s == warmup) {
            HEED_MPI_CHECK(MPI_Barrier(c.mpi));
            t0 = MPI_Wtime();
            base = t.sync.stats;
        }
        step_result r = trainer_step(&t, &blk, (int64_t)B * c.size, s, 1e-4f, 1.0f);
        if (!r.finite)
            HEED_DIE(HEED_EXIT_NONFINITE, "step %d: non-finite loss", s);
    }
    HEED_MPI_CHECK(MPI_Barrier(c.mpi));
    double dt = MPI_Wtime() - t0;
    grad_sync_stats st = t.sync.stats;
    double wait = mean_over_ranks(&c, (st.wait_s - base.wait_s) / steps);
    double hook = mean_over_ranks(&c, (st.hook_s - base.hook_s) / steps);
    double gather = mean_over_ranks(&c, (st.gather_s - base.gather_s) / steps);
    double in_bwd =
        mean_over_ranks(&c, (double)(st.buckets_in_backward - base.buckets_in_backward) / steps);
    /* The reduction alone: every bucket reduced right after a barrier, so
     * no rank waits for a slower one's backward (the fastest of 3, slowest
     * rank). The wait above includes such waiting; this does not. */
    double alone = 1e30;
    for (int k = 0; k < 3; k++) {
        HEED_MPI_CHECK(MPI_Barrier(c.mpi));
        double ta = MPI_Wtime();
        grad_sync_finish(&t.sync, &m->ps);
        ta = MPI_Wtime() - ta;
        grad_sync_discard(&t.sync);
        double slow = 0;
        HEED_MPI_CHECK(MPI_Allreduce(&ta, &slow, 1, MPI_DOUBLE, MPI_MAX, c.mpi));
        alone = slow < alone ? slow : alone;
    }
    bool agree = grad_sync_params_agree(&c, &m->ps);
    if (c.rank == 0)
        printf("{\"ranks\": %d, \"batch_per_rank\": %d, \"params\": %lld, \"buckets\": %d, "
               "\"bucket_kb\": %d, \"overlap\": %d, \"zero\": %d, \"steps\": %d, "
               "\"step_s\": %.5f, \"samples_per_s\": %.2f, \"wait_ms\": %.3f, \"hook_ms\": %.3f, "
               "\"gather_ms\": %.3f, \"reduce_alone_ms\": %.3f, \"buckets_in_backward\": %.2f, "
               "\"params_agree\": %s}\n",
               c.size, B, (long long)m->ps.numel, t.sync.plan.count, bucket_kb, overlap, zero,
               steps, dt / steps, (double)B * c.size * steps / dt, wait * 1e3, hook * 1e3,
               gather * 1e3, alone * 1e3, in_bwd, agree ? "true" : "false");
    trainer_free(&t);
    model_free(m);
    free(images);
    free(labels);
    free(ids);
    comm_free(&c);
    HEED_MPI_CHECK(MPI_Finalize());
    return agree ? 0 : 1;
}
