/* CNNs with batch norm keep identical parameters AND buffers on all ranks.
 *
 * Each rank normalises with the statistics of its own samples, so after the
 * forward passes of a step the running statistics differ between ranks; the
 * trainer averages them over ranks (dist/buffer_sync.h) before the optimiser
 * step. For cbam_cnn and resnet20 (tiny widths, 8x8 images, augmentation
 * on, ZeRO-1 and replicated Adam, micro-batches of 2 too, and synchronised
 * batch norm, trainer_set_sync_bn, whose statistics are global) this checks for 6
 * steps that the hash of the whole parameter buffer (buffers included)
 * agrees on all ranks, that the running statistics moved, and that eval-mode
 * logits agree bit for bit. */
#include "app/trainer.h"

#include "core/check.h"
#include "core/rng.h"
#include "dist/allreduce.h"

#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N = 48, C = 1, HW = 8, K = 3, GLOBAL_B = 12, STEPS = 6 };

static float images[N * C * HW * HW];
static int32_t labels[N];
static int64_t ids[N];

/* Label = the quadrant with the brightest blob (3 classes), plus noise. */
static void make_data(void) {
    uint64_t key = rng_key(3, 1, 4);
    for (int n = 0; n < N; n++) {
        labels[n] = n % K;
        ids[n] = n;
        for (int i = 0; i < HW * HW; i++) {
            int y = i / HW, x = i % HW, q = (y >= HW / 2) * 2 + (x >= HW / 2);
            images[n * HW * HW + i] =
                (q == labels[n] ? 1.0f : 0.0f) + 0.5f * rng_uniform(key, (uint64_t)(n * 64 + i));
        }
    }
}

static model *make_model(const char *name) {
    data_shape shape = {.num_classes = K, .channels = C, .height = HW, .width = HW};
    model_config cfg = model_config_default();
    cfg.width = 4;
    cfg.augment = true;
    cfg.crop_pad = 1;
    cfg.cbam = true; /* resnet: CBAM in the blocks too */
    cfg.seed = 7;
    char err[256];
    model *m = model_create(name, &cfg, &shape, err, sizeof err);
    if (!m)
        HEED_DIE(HEED_EXIT_INTERNAL, "%s", err);
    return m;
}

static sample_block block_of(int64_t step, int lo, int hi) {
    int first = (int)((step * GLOBAL_B) % N) + lo;
    sample_block b = {.n = hi - lo,
                      .ids = ids + first,
                      .images = images + (int64_t)first * C * HW * HW,
                      .labels = labels + first};
    return b;
}

static int failures;

#define EXPECT(cond, ...)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            fprintf(stderr, "rank %d: FAIL %s: ", rank, #cond);                                    \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

/* Sum of |running_mean| over the model's buffers: 0 at initialisation. */
static double running_mean_mass(const params *ps) {
    double s = 0.0;
    for (int i = 0; i < ps->count; i++)
        if (ps->buffer[i] && strstr(ps->tensors[i]->name, "running_mean"))
            for (int64_t j = 0; j < ps->tensors[i]->numel; j++)
                s += fabs(ps->tensors[i]->data[j]);
    return s;
}

static void run(const comm *world, const char *name, bool zero, int micro_batch, bool sync_bn) {
    int rank = world->rank, p = world->size;
    adam_config ac = adam_config_default();
    model *m = make_model(name);
    trainer t;
    trainer_init(&t, m, world, &ac, zero, false, micro_batch, 0.0f, 11);
    if (sync_bn)
        trainer_set_sync_bn(&t);
    int64_t lo, hi;
    ring_chunk_range(GLOBAL_B, p, rank, &lo, &hi);
    for (int64_t step = 0; step < STEPS; step++) {
        sample_block mine = block_of(step, (int)lo, (int)hi);
        step_result r = trainer_step(&t, &mine, GLOBAL_B, step, 1e-2f, 1.0f);
        EXPECT(r.finite, "%s step %lld: non-finite loss", name, (long long)step);
        EXPECT(grad_sync_params_agree(world, &m->ps),
               "%s zero=%d micro=%d sync_bn=%d step %lld: parameters or buffers differ across "
               "ranks",
               name, zero, micro_batch, sync_bn, (long long)step);
    }
    EXPECT(running_mean_mass(&m->ps) > 0.0, "%s: running statistics never moved", name);
    /* eval on the same block everywhere: identical logits -> identical loss bits */
    sample_block all = block_of(0, 0, GLOBAL_B);
    double loss = 0.0;
    int64_t confusion[K * K] = {0};
    trainer_eval_block(&t, &all, &loss, confusion);
    double lmin = loss, lmax = loss;
    MPI_Allreduce(MPI_IN_PLACE, &lmin, 1, MPI_DOUBLE, MPI_MIN, world->mpi);
    MPI_Allreduce(MPI_IN_PLACE, &lmax, 1, MPI_DOUBLE, MPI_MAX, world->mpi);
    EXPECT(lmin == lmax, "%s: eval losses differ across ranks (%.9g vs %.9g)", name, lmin, lmax);
    if (rank == 0)
        printf("p=%d %s zero=%d micro=%d sync_bn=%d: eval loss %.6f, ranks agree\n", p, name, zero,
               micro_batch, sync_bn, loss / GLOBAL_B);
    trainer_free(&t);
    model_free(m);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    comm world;
    comm_init(&world, MPI_COMM_WORLD);
    make_data();
    const char *models[2] = {"cbam_cnn", "resnet20"};
    for (int i = 0; i < 2; i++) {
        run(&world, models[i], true, 0, false);
        run(&world, models[i], false, 0, false);
        run(&world, models[i], true, 2, false);
        run(&world, models[i], true, 2, true);
    }
    int total = 0;
    MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (world.rank == 0)
        printf("%s: %d failures\n", total ? "FAILED" : "OK", total);
    comm_free(&world);
    MPI_Finalize();
    return total ? 1 : 0;
}
