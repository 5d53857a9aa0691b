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
 * barrier: pure communication). `exposed_ms` is the wait of the rank that
 * finished backward last, per step (the minimum over ranks, averaged over
 * steps): it waits for nobody's backward, only for the communication that
 * backward did not hide.
 *
 * `--independent 1` is the ceiling to compare against: every rank trains
 * alone (its own communicator, no gradient exchange, no synchronisation),
 * under the same launch and binding, so what it loses against 1 rank is
 * what the cores lose by running together (shared memory bandwidth,
 * frequency, noisy neighbours). samples/s is then the sum of the ranks'
 * own rates, and `slowest_samples_per_s` the slowest rank's times p.
 *
 * `--comm-thread 1` drives the overlapped reduction from grad_sync's
 * progress thread instead of the backward hook (grad_sync_thread.h), `0`
 * from the hook; the default is heed train's auto (the thread from
 * COMM_THREAD_AUTO_RANKS ranks up).
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

static double sum_over_ranks(const comm *c, double x) {
    double sum = 0;
    HEED_MPI_CHECK(MPI_Allreduce(&x, &sum, 1, MPI_DOUBLE, MPI_SUM, c->mpi));
    return sum;
}

static double mean_over_ranks(const comm *c, double x) {
    return sum_over_ranks(c, x) / c->size;
}

static double min_over_ranks(const comm *c, double x) {
    double lo = 0;
    HEED_MPI_CHECK(MPI_Allreduce(&x, &lo, 1, MPI_DOUBLE, MPI_MIN, c->mpi));
    return lo;
}

/* A communicator of this rank alone, for --independent. */
static void comm_init_solo(comm *solo, const comm *world) {
    MPI_Comm self;
    HEED_MPI_CHECK(MPI_Comm_split(world->mpi, world->rank, 0, &self));
    comm_init(solo, self);
    HEED_MPI_CHECK(MPI_Comm_free(&self));
}

int main(int argc, char **argv) {
    int provided = 0;
    HEED_MPI_CHECK(MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &provided));
    comm world;
    comm_init(&world, MPI_COMM_WORLD);
    int B = 64, steps = 6, warmup = 2, threads = 1, overlap = 1, bucket_kb = BUCKET_KB_DEFAULT;
    int zero = 1, independent = 0, comm_thread = -1, K = 10, C = 1, H = 28, W = 28;
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
        else if (!strcmp(k, "--independent"))
            independent = atoi(v);
        else if (!strcmp(k, "--comm-thread"))
            comm_thread = atoi(v);
        else if (!strcmp(k, "--image"))
            H = W = atoi(v);
        else if (!model_args_apply(&cfg, k, v))
            HEED_DIE(HEED_EXIT_BAD_INPUT, "unknown option %s", k);
    }
    if (B < 1 || steps < 1 || warmup < 0 || bucket_kb < 0)
        HEED_DIE(HEED_EXIT_BAD_INPUT, "need --batch >= 1, --steps >= 1, --warmup >= 0, "
                                      "--bucket-kb >= 0");
    /* tc: the ranks that train together (all of them, or this one alone). */
    comm solo, *tc = &world;
    if (independent) {
        comm_init_solo(&solo, &world);
        tc = &solo;
    }
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
    uint64_t key = rng_key(1, 2, (uint64_t)world.rank);
    for (int b = 0; b < B; b++) {
        labels[b] = (int32_t)(rng_bits(key, (uint64_t)b) % (uint64_t)K);
        ids[b] = (int64_t)world.rank * B + b;
    }
    for (int64_t i = 0; i < (int64_t)B * C * H * W; i++)
        images[i] = rng_normal(key, 1000 + (uint64_t)i);
    sample_block blk = {.n = B, .ids = ids, .images = images, .labels = labels};

    adam_config ac = adam_config_default();
    ac.weight_decay = 0.05f;
    trainer t;
    trainer_init(&t, m, tc, &ac, zero != 0, false, 0, 0.0f, 1);
    trainer_set_comm(&t, (size_t)bucket_kb * 1024, overlap != 0);
    if (comm_thread < 0) /* as heed train --comm-thread auto */
        comm_thread = tc->size >= COMM_THREAD_AUTO_RANKS;
    comm_thread = comm_thread && overlap && tc->size > 1; /* what runs */
    if (comm_thread && !trainer_start_comm_thread(&t))
        HEED_DIE(HEED_EXIT_BAD_INPUT, "--comm-thread 1: MPI gives no MPI_THREAD_SERIALIZED");

    double t0 = 0, wait_sum_lo = 0;
    grad_sync_stats base = {0};
    for (int s = 0; s < warmup + steps; s++) {
        if (s == warmup) {
            HEED_MPI_CHECK(MPI_Barrier(world.mpi));
            t0 = MPI_Wtime();
            base = t.sync.stats;
        }
        double wait0 = t.sync.stats.wait_s;
        step_result r = trainer_step(&t, &blk, (int64_t)B * tc->size, s, 1e-4f, 1.0f);
        if (!r.finite)
            HEED_DIE(HEED_EXIT_NONFINITE, "step %d: non-finite loss", s);
        /* One double per step: the parameter all-gather of the step
         * synchronises the ranks anyway. */
        if (s >= warmup && !independent)
            wait_sum_lo += min_over_ranks(&world, t.sync.stats.wait_s - wait0);
    }
    double own_dt = MPI_Wtime() - t0;
    HEED_MPI_CHECK(MPI_Barrier(world.mpi));
    double dt = MPI_Wtime() - t0;
    grad_sync_stats st = t.sync.stats;
    double wait = mean_over_ranks(&world, (st.wait_s - base.wait_s) / steps);
    double hook = mean_over_ranks(&world, (st.hook_s - base.hook_s) / steps);
    double gather = mean_over_ranks(&world, (st.gather_s - base.gather_s) / steps);
    double in_bwd = mean_over_ranks(
        &world, (double)(st.buckets_in_backward - base.buckets_in_backward) / steps);
    double own_rate = (double)B * steps / own_dt;
    double rate =
        independent ? sum_over_ranks(&world, own_rate) : (double)B * tc->size * steps / dt;
    double slowest = min_over_ranks(&world, own_rate) * world.size;
    /* The reduction alone: every bucket reduced right after a barrier, so
     * no rank waits for a slower one's backward (the fastest of 3, slowest
     * rank). The wait above includes such waiting; this does not. */
    double alone = 1e30;
    for (int k = 0; k < 3; k++) {
        HEED_MPI_CHECK(MPI_Barrier(tc->mpi));
        double ta = MPI_Wtime();
        grad_sync_finish(&t.sync, &m->ps);
        ta = MPI_Wtime() - ta;
        grad_sync_discard(&t.sync);
        double slow = 0;
        HEED_MPI_CHECK(MPI_Allreduce(&ta, &slow, 1, MPI_DOUBLE, MPI_MAX, world.mpi));
        alone = slow < alone ? slow : alone;
    }
    bool agree = grad_sync_params_agree(tc, &m->ps);
    agree = min_over_ranks(&world, agree) > 0;
    if (world.rank == 0)
        printf("{\"ranks\": %d, \"batch_per_rank\": %d, \"params\": %lld, \"buckets\": %d, "
               "\"bucket_kb\": %d, \"overlap\": %d, \"comm_thread\": %d, \"zero\": %d, "
               "\"independent\": %d, "
               "\"steps\": %d, \"step_s\": %.5f, \"samples_per_s\": %.2f, "
               "\"slowest_samples_per_s\": %.2f, \"wait_ms\": %.3f, \"exposed_ms\": %.3f, "
               "\"hook_ms\": %.3f, \"gather_ms\": %.3f, \"reduce_alone_ms\": %.3f, "
               "\"buckets_in_backward\": %.2f, \"params_agree\": %s}\n",
               world.size, B, (long long)m->ps.numel, t.sync.plan.count, bucket_kb, overlap,
               comm_thread, zero, independent, steps, dt / steps, rate, slowest, wait * 1e3,
               wait_sum_lo / steps * 1e3, hook * 1e3, gather * 1e3, alone * 1e3, in_bwd,
               agree ? "true" : "false");
    trainer_free(&t);
    model_free(m);
    free(images);
    free(labels);
    free(ids);
    if (independent)
        comm_free(&solo);
    comm_free(&world);
    HEED_MPI_CHECK(MPI_Finalize());
    return agree ? 0 : 1;
}
