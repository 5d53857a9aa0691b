/*
 * bench_conv.c - GFLOP/s of heed's convolution (op_conv2d forward, and
 * forward + backward) on the conv layers of ResNet-20 / cbam_cnn at 28x28
 * (3x3 stride 1, and the stride-2 3x3 and 1x1 convs of the stage changes),
 * against cblas_sgemm on the GEMM the layer reduces to (M = OC,
 * N = OH*OW, K = C*KH*KW, once per sample) and on a square 512 sgemm, one
 * thread.
 * Prints one JSON line per layer shape. Times are process CPU time, not wall
 * time, and the best of --reps after one warm-up: on a shared VM both are far
 * less noisy (one thread). --im2col runs the im2col + sgemm twin instead of
 * the direct kernels (conv_direct.h).
 *
 *   bench_conv [--batch 64] [--reps 5] [--threads 1] [--im2col]
 */
#include "core/check.h"
#include "core/conv_direct.h"
#include "core/ops_vision.h"
#include "core/rng.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void openblas_set_num_threads(int num_threads);

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static float *randoms(int64_t n, uint64_t seed) {
    float *v = xmalloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++)
        v[i] = rng_uniform(seed, (uint64_t)i) - 0.5f;
    return v;
}

static tensor leaf(float *data, float *grad, int ndim, const int *shape) {
    tensor t = {.data = data, .grad = grad, .ndim = ndim, .dtype = DTYPE_F32, .param = -1};
    memcpy(t.shape, shape, sizeof(int) * ndim);
    t.numel = shape_numel(ndim, shape);
    return t;
}

/* GFLOP/s of an (M, N, K) sgemm repeated `times` per rep */
static double sgemm_gflops(int M, int N, int K, int times, int reps) {
    float *a = randoms((int64_t)M * K, 1), *b = randoms((int64_t)K * N, 2),
          *c = randoms((int64_t)M * N, 3);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, a, K, b, N, 0.0f, c, N);
    double dt = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        for (int i = 0; i < times; i++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, a, K, b, N, 0.0f,
                        c, N);
        double t = now_s() - t0;
        dt = t < dt ? t : dt;
    }
    free(a);
    free(b);
    free(c);
    return 2.0 * M * N * (double)K * times / dt * 1e-9;
}

int main(int argc, char **argv) {
    int B = 64, reps = 5, threads = 1;
    for (int i = 1; i < argc; i += 2) {
        if (!strcmp(argv[i], "--im2col")) {
            conv_direct_set_level(CONV_DIRECT_OFF);
            i--;
            continue;
        }
        if (i + 1 >= argc)
            HEED_DIE(HEED_EXIT_BAD_INPUT, "%s needs a value", argv[i]);
        if (!strcmp(argv[i], "--batch"))
            B = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps"))
            reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads"))
            threads = atoi(argv[i + 1]);
        else
            HEED_DIE(HEED_EXIT_BAD_INPUT, "unknown option %s", argv[i]);
    }
    openblas_set_num_threads(threads);
    /* (C, OC, H, K, stride): the conv layers of resnet20 and cbam_cnn at 28x28 */
    const int layers[][5] = {{16, 16, 28, 3, 1}, {32, 32, 14, 3, 1}, {64, 64, 7, 3, 1},
                             {32, 32, 28, 3, 1}, {64, 64, 14, 3, 1}, {16, 32, 28, 3, 2},
                             {32, 64, 14, 3, 2}, {16, 32, 28, 1, 2}, {32, 64, 14, 1, 2}};
    /* the first fraction of a second of a process runs at about half speed
     * on the VMs measured here (clock ramp-up): spend it before timing */
    for (double t0 = now_s(); now_s() - t0 < 0.5;)
        sgemm_gflops(512, 512, 512, 1, 1);
    printf("{\"sgemm_512_gflops\": %.2f, \"threads\": %d}\n", sgemm_gflops(512, 512, 512, 1, reps),
           threads);
    for (size_t l = 0; l < sizeof layers / sizeof layers[0]; l++) {
        int C = layers[l][0], OC = layers[l][1], H = layers[l][2], K = layers[l][3],
            S = layers[l][4], OH = (H + 2 * (K / 2) - K) / S + 1;
        int64_t nx = (int64_t)B * C * H * H, ny = (int64_t)B * OC * OH * OH;
        float *x = randoms(nx, 4), *w = randoms((int64_t)OC * C * K * K, 5);
        float *gx = xcalloc((size_t)nx, sizeof(float)), *gw = xcalloc((size_t)OC * C * K * K, 4);
        tensor tx = leaf(x, gx, 4, (int[]){B, C, H, H});
        tensor tw = leaf(w, gw, 4, (int[]){OC, C, K, K});
        graph *g = graph_create(64u << 20, 0);
        conv2d_geom geom = {.stride = S, .pad = K / 2, .dilation = 1, .groups = 1};
        double flops = 2.0 * (double)ny * C * K * K; /* one forward */
        /* forward only (no grad) */
        graph_set_grad(g, false);
        double fwd = 1e30, fb = 1e30;
        for (int r = 0; r <= reps; r++) { /* rep 0 warms up */
            graph_reset(g);
            double t0 = now_s();
            op_conv2d(g, &tx, &tw, NULL, geom);
            double t = now_s() - t0;
            fwd = r > 0 && t < fwd ? t : fwd;
        }
        /* forward + backward (dx and dw: 3x the forward's flops) */
        graph_set_grad(g, true);
        for (int r = 0; r <= reps; r++) {
            graph_reset(g);
            double t0 = now_s();
            tensor *y = op_conv2d(g, &tx, &tw, NULL, geom);
            for (int64_t i = 0; i < ny; i++)
                y->grad[i] = 1.0f;
            graph_backward_tape(g);
            double t = now_s() - t0;
            fb = r > 0 && t < fb ? t : fb;
        }
        double gemm = sgemm_gflops(OC, OH * OH, C * K * K, B, reps);
        printf("{\"layer\": \"conv%dx%d %d->%d @%dx%d stride %d\", \"batch\": %d, "
               "\"fwd_gflops\": %.2f, \"fwd_bwd_gflops\": %.2f, \"fwd_ms\": %.3f, "
               "\"fwd_bwd_ms\": %.3f, \"same_sgemm_gflops\": %.2f}\n",
               K, K, C, OC, H, H, S, B, flops / fwd * 1e-9, 3.0 * flops / fb * 1e-9, fwd * 1e3,
               fb * 1e3, gemm);
        graph_free(g);
        free(x);
        free(w);
        free(gx);
        free(gw);
    }
    return 0;
}
