/* Data-parallel training of the fusion model with a frozen tower.
 *
 * Under mpirun -n p (1-4), trains the xattn fusion model (reverse direction
 * on) for 8 steps with the image tower frozen, then with the text tower
 * frozen, each with ZeRO-1 and with replicated Adam, and checks that:
 *   - every step finishes on every rank (a frozen tower records no backward,
 *     its gradients stay zero, and the all-reduce still runs over the whole
 *     buffer, so no rank waits for a gradient that never comes);
 *   - all ranks hold bitwise-identical parameters after every step;
 *   - the frozen tower's parameters are bitwise those of initialisation and
 *     the rest of the model moved;
 *   - a global batch smaller than the rank count (a rank without samples,
 *     so with no forward at all) does not hang either. */
#include "app/trainer.h"

#include "../dist/mpi_check.h"
#include "core/check.h"
#include "core/rng.h"
#include "dist/allreduce.h"

#include <math.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

enum { N = 64, HW = 8, L = 6, V = 10, K = 4, STEPS = 8 };

static float images[N * HW * HW];
static int32_t tokens[N * L], labels[N];
static int64_t ids[N];

static void make_data(void) {
    uint64_t key = rng_key(3, 1, 4);
    for (int n = 0; n < N; n++) {
        int cls = (int)(rng_bits(key, n) % 2), q = (int)(rng_bits(key, 7 * N + n) % 2);
        for (int i = 0; i < HW * HW; i++)
            images[n * HW * HW + i] = (i < HW * HW / 2) == cls ? 1.0f : -1.0f;
        int len = 3 + n % (L - 2);
        for (int t = 0; t < L; t++)
            tokens[n * L + t] = t == 0 ? 2 : t < len ? 5 + q + 2 * (t % 2) : 0;
        labels[n] = 2 * q + cls; /* needs both modalities */
        ids[n] = n;
    }
}

static model *make_model(bool freeze_image, bool freeze_text) {
    data_shape shape = {.num_classes = K,
                        .channels = 1,
                        .height = HW,
                        .width = HW,
                        .vocab_size = V,
                        .max_len = L,
                        .pad_id = 0,
                        .cls_id = 2};
    model_config cfg = model_config_default();
    cfg.dim = 8;
    cfg.heads = 2;
    cfg.depth = 1;
    cfg.ffn = 16;
    cfg.patch = 4;
    cfg.dropout = 0.1f;
    cfg.seed = 5;
    cfg.xattn_reverse = true;
    cfg.freeze_image = freeze_image;
    cfg.freeze_text = freeze_text;
    char err[256];
    model *m = model_create("fusion", &cfg, &shape, err, sizeof err);
    CHECK(m, "model_create: %s", err);
    return m;
}

static sample_block block_of(int64_t step, int global_b, int lo, int hi) {
    int first = (int)((step * global_b) % (N - global_b)) + lo;
    return (sample_block){.n = hi - lo,
                          .ids = ids + first,
                          .images = images + (int64_t)first * HW * HW,
                          .tokens = tokens + first * L,
                          .L = L,
                          .labels = labels + first};
}

static void run(const comm *world, bool freeze_image, bool zero, int global_b) {
    int rank = world->rank, p = world->size;
    model *m = make_model(freeze_image, !freeze_image);
    float *init = xmalloc(sizeof(float) * m->ps.numel);
    memcpy(init, m->ps.data, sizeof(float) * m->ps.numel);
    adam_config ac = adam_config_default();
    ac.weight_decay = 0.05f;
    trainer t;
    trainer_init(&t, m, world, &ac, zero, false, 0, 0.0f, 11);
    int64_t lo, hi;
    ring_chunk_range(global_b, p, rank, &lo, &hi);
    for (int64_t step = 0; step < STEPS; step++) {
        sample_block mine = block_of(step, global_b, (int)lo, (int)hi);
        step_result r = trainer_step(&t, &mine, global_b, step, 1e-2f, 1.0f);
        CHECK(r.finite, "step %lld: loss %g not finite", (long long)step, r.loss);
        CHECK(grad_sync_params_agree(world, &m->ps),
              "freeze %s, zero %d, batch %d, step %lld: parameters differ across ranks",
              freeze_image ? "image" : "text", zero, global_b, (long long)step);
    }
    int frozen = 0, moved = 0;
    for (int i = 0; i < m->ps.count; i++) {
        const tensor *x = m->ps.tensors[i];
        bool same = !memcmp(x->data, init + m->ps.offset[i], sizeof(float) * x->numel);
        const char *tower = freeze_image ? "image." : "text.";
        bool want_frozen = !strncmp(x->name, tower, strlen(tower));
        CHECK(m->ps.frozen[i] == want_frozen, "%s: frozen flag %d", x->name, m->ps.frozen[i]);
        if (want_frozen) {
            CHECK(same, "frozen %s changed after %d steps", x->name, STEPS);
            frozen++;
        } else {
            moved += !same;
        }
    }
    CHECK(frozen > 0 && moved > 0, "frozen %d tensors, moved %d", frozen, moved);
    if (rank == 0)
        printf("p=%d freeze %s zero %d batch %d: %d frozen tensors unchanged, %d trained tensors "
               "moved, ranks agree\n",
               p, freeze_image ? "image" : "text", zero, global_b, frozen, moved);
    trainer_free(&t);
    model_free(m);
    free(init);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    comm world;
    comm_init(&world, MPI_COMM_WORLD);
    make_data();
    for (int f = 0; f < 2; f++)
        for (int z = 0; z < 2; z++)
            run(&world, f == 0, z == 1, 8);
    run(&world, true, true, 3); /* at 4 ranks one rank has no sample */
    if (world.rank == 0)
        printf("OK\n");
    comm_free(&world);
    MPI_Finalize();
    return 0;
}
