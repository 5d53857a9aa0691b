/*
 * bench_model.c - training-step throughput of one model on random data:
 * forward + cross-entropy + backward + AdamW, one rank, the BLAS thread count
 * given. Prints one JSON line (scripts/bench_models.sh compares it with the
 * same model in PyTorch).
 *
 *   bench_model --model transformer --batch 64 --len 64 --vocab 8000 \
 *               --dim 128 --depth 2 --heads 4 --ffn 512 --steps 20 --threads 1
 *
 * --lazy-grads 0 zero-fills activation gradients at birth (eager mode)
 * instead of letting their first writer overwrite them (graph.h).
 */
#include "core/check.h"
#include "core/ops.h"
#include "core/optim.h"
#include "core/rng.h"
#include "models/model.h"
#include "model_args.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void openblas_set_num_threads(int num_threads);

static double clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    const char *name = "transformer";
    int B = 64, L = 64, V = 8000, K = 10, steps = 20, warmup = 3, threads = 1;
    int C = 1, H = 28, W = 28;
    bool lazy = true; /* as heed train does */
    model_config cfg = model_config_default();
    cfg.ffn = 512;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--model"))
            name = v;
        else if (!strcmp(k, "--batch"))
            B = atoi(v);
        else if (!strcmp(k, "--len"))
            L = atoi(v);
        else if (!strcmp(k, "--vocab"))
            V = atoi(v);
        else if (!strcmp(k, "--classes"))
            K = atoi(v);
        else if (!strcmp(k, "--steps"))
            steps = atoi(v);
        else if (!strcmp(k, "--threads"))
            threads = atoi(v);
        else if (!strcmp(k, "--image"))
            H = W = atoi(v);
        else if (!strcmp(k, "--channels"))
            C = atoi(v);
        else if (!strcmp(k, "--lazy-grads"))
            lazy = atoi(v) != 0;
        else if (!model_args_apply(&cfg, k, v))
            HEED_DIE(HEED_EXIT_BAD_INPUT, "unknown option %s", k);
    }
    openblas_set_num_threads(threads);
    const model_kind *kind = model_kind_find(name);
    if (!kind)
        HEED_DIE(HEED_EXIT_BAD_INPUT, "unknown model %s", name);
    data_shape shape = {.num_classes = K};
    if (kind->needs_images) {
        shape.channels = C;
        shape.height = H;
        shape.width = W;
    }
    if (kind->needs_tokens) {
        shape.vocab_size = V;
        shape.max_len = L;
    }
    char err[256];
    model *m = model_create(name, &cfg, &shape, err, sizeof err);
    if (!m)
        HEED_DIE(HEED_EXIT_BAD_INPUT, "%s", err);

    float *images = NULL;
    int32_t *tokens = NULL, *labels = xmalloc(sizeof(int32_t) * B);
    int64_t *ids = xmalloc(sizeof(int64_t) * B);
    uint64_t key = rng_key(1, 2, 3);
    for (int b = 0; b < B; b++) {
        labels[b] = (int32_t)(rng_bits(key, b) % K);
        ids[b] = b;
    }
    if (shape.channels) {
        images = xmalloc(sizeof(float) * B * C * H * W);
        for (int64_t i = 0; i < (int64_t)B * C * H * W; i++)
            images[i] = rng_normal(key, 1000 + i);
    }
    if (shape.vocab_size) {
        tokens = xmalloc(sizeof(int32_t) * B * L);
        for (int64_t i = 0; i < (int64_t)B * L; i++)
            tokens[i] = 5 + (int32_t)(rng_bits(key, 1u << 30 | i) % (V - 5));
    }
    graph *g = graph_create(64u << 20, m->ps.count);
    graph_set_training(g, true);
    graph_set_lazy_grads(g, lazy);
    adam_config ac = adam_config_default();
    ac.weight_decay = 0.01f;
    adam_state st;
    adam_state_init(&st, 0, m->ps.numel);
    tensor timg = {.data = images,
                   .ndim = 4,
                   .shape = {B, C, H, W},
                   .numel = (int64_t)B * C * H * W,
                   .dtype = DTYPE_F32,
                   .param = -1};
    tensor ttok = {.idata = tokens,
                   .ndim = 2,
                   .shape = {B, L},
                   .numel = (int64_t)B * L,
                   .dtype = DTYPE_I32,
                   .param = -1};
    tensor tlab = {
        .idata = labels, .ndim = 1, .shape = {B}, .numel = B, .dtype = DTYPE_I32, .param = -1};
    model_batch mb = {.B = B, .images = images ? &timg : NULL, .tokens = tokens ? &ttok : NULL};
    double t_start = 0, cpu_start = 0, loss = 0;
    for (int s = 0; s < warmup + steps; s++) {
        if (s == warmup) {
            t_start = clock_s(CLOCK_MONOTONIC);
            cpu_start = clock_s(CLOCK_PROCESS_CPUTIME_ID);
        }
        params_zero_grad(&m->ps);
        graph_reset(g);
        graph_begin_step(g, 1, s, ids, B);
        tensor *l = op_cross_entropy(g, model_forward(m, g, &mb, NULL), &tlab, 0.0f);
        loss = l->data[0];
        graph_backward(g, l, 1.0f);
        adam_step(&ac, &st, &m->ps, m->ps.grad, 1e-3f, 1.0f);
    }
    double dt = clock_s(CLOCK_MONOTONIC) - t_start;
    double cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - cpu_start;
    printf(
        "{\"impl\": \"heed\", \"model\": \"%s\", \"threads\": %d, \"batch\": %d, \"params\": %lld, "
        "\"steps\": %d, \"seconds\": %.4f, \"samples_per_s\": %.2f, \"cpu_seconds\": %.4f, "
        "\"samples_per_cpu_s\": %.2f, \"loss\": %.4f}\n",
        name, threads, B, (long long)m->ps.numel, steps, dt, steps * B / dt, cpu, steps * B / cpu,
        loss);
    adam_state_free(&st);
    graph_free(g);
    model_free(m);
    free(images);
    free(tokens);
    free(labels);
    free(ids);
    return 0;
}
