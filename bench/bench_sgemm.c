/*
 * bench_sgemm.c - cblas_sgemm GFLOP/s at the BLAS thread count given: large
 * square products (the "sgemm peak" that model throughput is compared with)
 * and the shapes the Transformer benchmark's training step runs. Prints one
 * JSON line per shape and a last line with the peak.
 *
 *   bench_sgemm [--threads 1] [--seconds 0.3] [--clock cpu|wall]
 *
 * The per-head attention products and the recurrent step products of the
 * LSTM and GRU are also timed through small_gemm (with the transpose of B
 * that attention does for q @ k^T counted in), as "small_gemm_gflops"; the
 * recurrent weights are transposed once per sequence, so those are timed
 * as the plain products they become.
 *
 * Each shape is repeated for 5 rounds of `seconds`/5; the figure is the best
 * round (the least disturbed by other work), on random data (zeros can run
 * faster). --clock cpu (default) times the process's CPU time, which on an
 * idle core equals wall time and on a shared one leaves out the time other
 * jobs held it (bench_model reports both); --clock wall times wall time.
 */
#include "core/check.h"
#include "core/rng.h"
#include "core/small_gemm.h"

#include <cblas.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void openblas_set_num_threads(int num_threads);

static clockid_t bench_clock = CLOCK_PROCESS_CPUTIME_ID;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(bench_clock, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct shape {
    const char *what;
    int M, N, K;
    bool ta, tb;
    bool small; /* a product heed runs through small_gemm: timed that way too */
} shape;

/* one product of s through cblas_sgemm, or small_gemm (bt: scratch for B^T) */
static void run_once(const shape *s, bool small, float *a, float *b, float *c, float *bt) {
    int lda = s->ta ? s->M : s->K, ldb = s->tb ? s->K : s->N;
    if (!small) {
        cblas_sgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans,
                    s->tb ? CblasTrans : CblasNoTrans, s->M, s->N, s->K, 1.0f, a, lda, b, ldb, 0.0f,
                    c, s->N);
        return;
    }
    if (s->tb) {
        small_transpose(bt, b, s->N, s->K, ldb);
        b = bt;
        ldb = s->N;
    }
    small_gemm(s->ta, s->M, s->N, s->K, 1.0f, a, lda, b, ldb, false, c, s->N);
}

static double gflops(const shape *s, bool small, float *a, float *b, float *c, float *bt,
                     double seconds) {
    double best = 0;
    for (int round = 0; round < 5; round++) {
        int reps = 0;
        double t0 = now_s(), t;
        do {
            run_once(s, small, a, b, c, bt);
            reps++;
            t = now_s() - t0;
        } while (t < seconds / 5);
        double r = 2.0 * s->M * s->N * s->K * reps / t * 1e-9;
        best = r > best ? r : best;
    }
    return best;
}

int main(int argc, char **argv) {
    int threads = 1;
    double seconds = 0.3;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads"))
            threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds"))
            seconds = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--clock"))
            bench_clock = strcmp(argv[i + 1], "wall") ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC;
        else
            HEED_DIE(HEED_EXIT_BAD_INPUT, "unknown option %s", argv[i]);
    }
    openblas_set_num_threads(threads);
    /* N = B*T = 4096 rows, C = 128, FFN = 512, attention per (b, h) 64x64x32;
     * the ViT's per-head products are 50x50x16. */
    static const shape shapes[] = {
        {"square", 512, 512, 512, false, false, false},
        {"square", 1024, 1024, 1024, false, false, false},
        {"square", 2048, 2048, 2048, false, false, false},
        {"qkvo fwd", 4096, 128, 128, false, true, false},
        {"fc1 fwd", 4096, 512, 128, false, true, false},
        {"fc2 fwd", 4096, 128, 512, false, true, false},
        {"fc1 dW", 512, 128, 4096, true, false, false},
        {"fc1 dX", 4096, 128, 512, false, false, false},
        {"qkv fused fwd", 4096, 384, 128, false, true, false},
        {"head scores", 64, 64, 32, false, true, true},
        {"head out", 64, 32, 64, false, false, true},
        {"head dv", 64, 32, 64, true, false, true},
        {"vit head scores", 50, 50, 16, false, true, true},
        {"vit head out", 50, 16, 50, false, false, true},
        {"vit head dv", 50, 16, 50, true, false, true},
        {"lstm step", 64, 512, 128, false, false, true},
        {"lstm step dh", 64, 128, 512, false, false, true},
        {"gru step", 64, 384, 128, false, false, true},
        {"gru step dh", 64, 128, 384, false, false, true},
    };
    size_t max_elems = 4096 * 4096;
    float *a = xaligned_alloc(64, sizeof(float) * max_elems);
    float *b = xaligned_alloc(64, sizeof(float) * max_elems);
    float *c = xaligned_alloc(64, sizeof(float) * max_elems);
    float *bt = xaligned_alloc(64, sizeof(float) * 64 * 64);
    uint64_t key = rng_key(7, 8, 9);
    for (size_t i = 0; i < max_elems; i++) {
        a[i] = rng_normal(key, i);
        b[i] = rng_normal(key, max_elems + i);
    }
    double peak = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const shape *s = &shapes[i];
        double r = gflops(s, false, a, b, c, bt, seconds);
        if (!strcmp(s->what, "square") && r > peak)
            peak = r;
        printf("{\"shape\": \"%s\", \"M\": %d, \"N\": %d, \"K\": %d, \"threads\": %d, "
               "\"gflops\": %.1f",
               s->what, s->M, s->N, s->K, threads, r);
        if (s->small)
            printf(", \"small_gemm_gflops\": %.1f", gflops(s, true, a, b, c, bt, seconds));
        printf("}\n");
    }
    printf("{\"sgemm_peak_gflops\": %.1f, \"threads\": %d}\n", peak, threads);
    free(a);
    free(b);
    free(c);
    free(bt);
    return 0;
}
