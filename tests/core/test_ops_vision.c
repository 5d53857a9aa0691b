/* Finite-difference gradient checks of the vision ops (ops_conv, ops_pool2d,
 * ops_batchnorm) and blocks (CBAM, basic and bottleneck residual blocks),
 * plus the augmentation's keying. Central differences with h = 1e-2 on
 * inputs in [-1, 1]; tolerance atol 3e-3 + rtol 1e-2 (float32 forward). */
#include "testutil.h"

#include "core/blocks_cnn.h"
#include "core/check.h"
#include "core/conv_direct.h"
#include "core/conv_strided.h"
#include "core/conv_winograd.h"
#include "core/ops_vision.h"
#include "core/optim.h"
#include "core/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define H 1e-2f
#define ATOL 3e-3f
#define RTOL 1e-2f

/* ---- conv2d ------------------------------------------------------------ */

typedef struct conv_case {
    conv2d_geom geom;
    bool bias;
} conv_case;

static tensor *fwd_conv(graph *g, tensor **in, void *user) {
    conv_case *c = user;
    return op_conv2d(g, in[0], in[1], c->bias ? in[2] : NULL, c->geom);
}

/* Direct-loop reference of a conv, so the forward is checked independently
 * of im2col (PyTorch fixtures check it again). */
static void conv_naive(float *out, const tensor *x, const tensor *w, const tensor *b,
                       conv2d_geom gm, int OH, int OW) {
    int B = x->shape[0], C = x->shape[1], Hh = x->shape[2], W = x->shape[3];
    int OC = w->shape[0], Cg = w->shape[1], K = w->shape[2], OCg = OC / gm.groups;
    (void)C;
    for (int n = 0; n < B; n++)
        for (int o = 0; o < OC; o++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    double s = b ? b->data[o] : 0.0;
                    int gi = o / OCg;
                    for (int c = 0; c < Cg; c++)
                        for (int kh = 0; kh < K; kh++)
                            for (int kw = 0; kw < w->shape[3]; kw++) {
                                int ih = oh * gm.stride - gm.pad + kh * gm.dilation;
                                int iw = ow * gm.stride - gm.pad + kw * gm.dilation;
                                if (ih < 0 || ih >= Hh || iw < 0 || iw >= W)
                                    continue;
                                int ci = gi * Cg + c;
                                s += (double)x->data[((n * x->shape[1] + ci) * Hh + ih) * W + iw] *
                                     w->data[((o * Cg + c) * K + kh) * w->shape[3] + kw];
                            }
                    out[((n * OC + o) * OH + oh) * OW + ow] = (float)s;
                }
}

static void check_conv(const char *name, int B, int C, int Hh, int W, int OC, int K, conv2d_geom gm,
                       bool bias) {
    tensor *in[3] = {tu_leaf(4, (int[]){B, C, Hh, W}, true, 1, 1),
                     tu_leaf(4, (int[]){OC, C / gm.groups, K, K}, true, 0.5f, 2),
                     tu_leaf(1, (int[]){OC}, true, 0.5f, 3)};
    conv_case cc = {gm, bias};
    graph *g = graph_create(1 << 16, 0);
    tensor *out = fwd_conv(g, in, &cc);
    int OH = out->shape[2], OW = out->shape[3];
    assert_int_equal(OH, (Hh + 2 * gm.pad - gm.dilation * (K - 1) - 1) / gm.stride + 1);
    float *want = xmalloc(sizeof(float) * out->numel);
    conv_naive(want, in[0], in[1], bias ? in[2] : NULL, gm, OH, OW);
    tu_assert_close(name, out->data, want, out->numel, 1e-5f, 1e-5f);
    free(want);
    graph_free(g);
    tu_gradcheck(name, fwd_conv, &cc, bias ? 3 : 2, in, H, ATOL, RTOL, 200);
    for (int i = 0; i < 3; i++)
        tu_leaf_free(in[i]);
}

static void test_conv2d(void **state) {
    (void)state;
    check_conv("conv3x3", 2, 3, 6, 5, 4, 3, (conv2d_geom){1, 1, 1, 1}, true);
    check_conv("conv3x3_stride2", 2, 3, 7, 6, 4, 3, (conv2d_geom){2, 1, 1, 1}, false);
    check_conv("conv1x1", 2, 4, 5, 5, 3, 1, (conv2d_geom){1, 0, 1, 1}, true);
    check_conv("conv1x1_stride2", 2, 4, 5, 5, 3, 1, (conv2d_geom){2, 0, 1, 1}, false);
    check_conv("conv_groups", 2, 4, 5, 6, 6, 3, (conv2d_geom){1, 1, 1, 2}, true);
    check_conv("conv_dilation", 1, 2, 7, 7, 3, 3, (conv2d_geom){1, 2, 2, 1}, true);
    check_conv("conv7x7_pad3", 2, 2, 6, 6, 1, 7, (conv2d_geom){1, 3, 1, 1}, true);
    check_conv("conv_stride3_pad2", 1, 2, 8, 7, 2, 3, (conv2d_geom){3, 2, 1, 1}, false);
    /* a 7x7 kernel overhanging a 2x3 map on every side */
    check_conv("conv7x7_small_map", 2, 2, 2, 3, 2, 7, (conv2d_geom){1, 3, 1, 1}, true);
    /* the direct kernels (channels that fill their tiles) */
    check_conv("conv3x3_direct", 2, 8, 5, 6, 16, 3, (conv2d_geom){1, 1, 1, 1}, true);
    check_conv("conv_direct_groups", 1, 16, 4, 5, 16, 3, (conv2d_geom){1, 1, 1, 2}, false);
}

/* ---- the direct conv kernel against its im2col twin --------------------- */

/* out and the gradients of x, w, b after a backward of out . r, with the
 * direct kernels at `level`; res holds out then each input's gradient. */
static void conv_run(float *res, tensor **in, conv_case *cc, conv_direct_level level) {
    conv_direct_set_level(level);
    graph *g = graph_create(1 << 16, 0);
    for (int i = 0; i < 3; i++)
        memset(in[i]->grad, 0, sizeof(float) * in[i]->numel);
    tensor *out = fwd_conv(g, in, cc);
    uint64_t key = rng_key(99, 1, 2);
    for (int64_t i = 0; i < out->numel; i++)
        out->grad[i] = 2.0f * rng_uniform(key, i) - 1.0f;
    graph_backward_tape(g);
    memcpy(res, out->data, sizeof(float) * out->numel);
    res += out->numel;
    for (int i = 0; i < 3; i++) {
        memcpy(res, in[i]->grad, sizeof(float) * in[i]->numel);
        res += in[i]->numel;
    }
    graph_free(g);
    conv_direct_set_level(CONV_DIRECT_BEST);
}

/* Each direct kernel this CPU has (AVX2, and the best one), and the
 * Winograd path where it applies (3x3, channels in eights), against the
 * im2col twin, forward and every gradient; a strided conv runs the strided
 * tiles (conv_strided.h) at each level instead. */
static void check_conv_twins(const char *name, int B, int C, int Hh, int W, int OC, int K,
                             conv2d_geom gm) {
    int OH = (Hh + 2 * gm.pad - gm.dilation * (K - 1) - 1) / gm.stride + 1,
        OW = (W + 2 * gm.pad - gm.dilation * (K - 1) - 1) / gm.stride + 1;
    conv_direct_geom fwd = {C / gm.groups, OC / gm.groups, Hh, W, K, K, gm.pad, gm.dilation};
    conv_strided_geom sg = {C / gm.groups, OC / gm.groups, Hh, W, OH, OW, K, K, gm.stride, gm.pad};
    bool strided = gm.stride > 1;
    tensor *in[3] = {tu_leaf(4, (int[]){B, C, Hh, W}, true, 1, 11),
                     tu_leaf(4, (int[]){OC, C / gm.groups, K, K}, true, 0.5f, 12),
                     tu_leaf(1, (int[]){OC}, true, 0.5f, 13)};
    conv_case cc = {gm, true};
    int64_t n = (int64_t)B * OC * OH * OW + in[0]->numel + in[1]->numel + in[2]->numel;
    float *direct = xmalloc(sizeof(float) * n), *twin = xmalloc(sizeof(float) * n);
    conv_run(twin, in, &cc, CONV_DIRECT_OFF);
    const conv_direct_level levels[3] = {CONV_DIRECT_AVX2, CONV_DIRECT_BEST, CONV_DIRECT_BEST};
    for (int l = 0; l < 3; l++) {
        bool wino = l == 2;
        conv_winograd_set_mode(wino ? CONV_WINOGRAD_ALWAYS : CONV_WINOGRAD_OFF);
        conv_direct_set_level(levels[l]);
        /* the input gradient may fall back to im2col (say, for 1 channel) */
        bool usable = strided ? !wino && conv_strided_usable(&sg)
                              : conv_direct_usable(&fwd) && (!wino || conv_winograd_usable(&fwd));
        conv_direct_set_level(CONV_DIRECT_BEST);
        if (!usable) {
            /* a strided conv has no Winograd path: nothing to say */
            if (wino && !strided)
                print_message("%s: not a Winograd shape, skipped\n", name);
            else if (!wino)
                print_message("%s: no direct kernel at level %d on this CPU, skipped\n", name, l);
            conv_winograd_set_mode(CONV_WINOGRAD_AUTO);
            continue;
        }
        conv_run(direct, in, &cc, levels[l]);
        conv_winograd_set_mode(CONV_WINOGRAD_AUTO);
        /* Winograd's weight gradient sums transformed products over the
         * whole batch: rounding grows with the map, by a few ulps */
        tu_assert_close(name, direct, twin, n, 1e-5f, wino ? 5e-5f : 1e-5f);
    }
    free(direct);
    free(twin);
    for (int i = 0; i < 3; i++)
        tu_leaf_free(in[i]);
}

static void test_conv2d_direct_twin(void **state) {
    (void)state;
    /* channel counts that fill the AVX2 (4) and AVX-512 (8) channel tiles,
     * maps whose padded grid is not a whole number of pixel tiles */
    check_conv_twins("direct3x3", 2, 8, 5, 6, 16, 3, (conv2d_geom){1, 1, 1, 1});
    check_conv_twins("direct3x3_28", 1, 16, 28, 28, 16, 3, (conv2d_geom){1, 1, 1, 1});
    check_conv_twins("direct_groups", 2, 16, 7, 7, 32, 3, (conv2d_geom){1, 1, 1, 2});
    check_conv_twins("direct_dilated", 1, 8, 9, 5, 8, 3, (conv2d_geom){1, 2, 2, 1});
    check_conv_twins("direct7x7_small", 2, 8, 2, 3, 8, 7, (conv2d_geom){1, 3, 1, 1});
    /* Cg*KK = 9 and 45: weight-gradient tiles with a tail; 1 and 5 input
     * channels: an input gradient through im2col, or with a channel tail */
    check_conv_twins("direct_stem", 2, 1, 6, 6, 8, 3, (conv2d_geom){1, 1, 1, 1});
    check_conv_twins("direct_c5", 1, 5, 6, 7, 8, 3, (conv2d_geom){1, 1, 1, 1});
    /* Winograd: odd sizes (a last tile row and column half outside the
     * map), 1x1 and 2x2 maps, and a map of several tile blocks with a short
     * last block */
    check_conv_twins("winograd_odd", 2, 16, 7, 5, 8, 3, (conv2d_geom){1, 1, 1, 1});
    check_conv_twins("winograd_tiny", 3, 8, 1, 2, 8, 3, (conv2d_geom){1, 1, 1, 1});
    check_conv_twins("winograd_blocks", 1, 64, 20, 17, 64, 3, (conv2d_geom){1, 1, 1, 1});
    /* strided tiles: ResNet's stage changes (3x3 pad 1 and 1x1 pad 0 at
     * stride 2, even and odd maps: phases of unequal size), stride 3 with a
     * kernel wider than the stride and pad 2, a 5x5 kernel on a 3x4 map,
     * groups */
    check_conv_twins("strided3x3_28", 2, 16, 28, 28, 32, 3, (conv2d_geom){2, 1, 1, 1});
    check_conv_twins("strided3x3_odd", 2, 8, 7, 9, 16, 3, (conv2d_geom){2, 1, 1, 1});
    check_conv_twins("strided1x1", 2, 16, 14, 14, 32, 1, (conv2d_geom){2, 0, 1, 1});
    check_conv_twins("strided1x1_odd", 1, 8, 7, 5, 8, 1, (conv2d_geom){2, 0, 1, 1});
    check_conv_twins("strided_s3_p2", 2, 8, 11, 10, 8, 3, (conv2d_geom){3, 2, 1, 1});
    check_conv_twins("strided5x5_small", 1, 8, 3, 4, 16, 5, (conv2d_geom){2, 2, 1, 1});
    check_conv_twins("strided_groups", 2, 16, 9, 8, 32, 3, (conv2d_geom){2, 1, 1, 2});
}

/* ---- pools and gates ---------------------------------------------------- */

typedef tensor *(*unary_fn)(graph *, tensor *);

static tensor *fwd_unary(graph *g, tensor **in, void *user) {
    return ((unary_fn)user)(g, in[0]);
}
static tensor *max_pool_2(graph *g, tensor *x) {
    return op_max_pool2d(g, x, 2, 2, 0);
}
static tensor *max_pool_3s2p1(graph *g, tensor *x) {
    return op_max_pool2d(g, x, 3, 2, 1);
}
static tensor *avg_pool_2(graph *g, tensor *x) {
    return op_avg_pool2d(g, x, 2, 2, 0);
}
static tensor *avg_pool_3s2p1(graph *g, tensor *x) {
    return op_avg_pool2d(g, x, 3, 2, 1);
}

/* Distinct values at least 0.05 apart, so no max sits on a tie within h. */
static tensor *leaf_distinct(int ndim, const int *shape, uint64_t seed) {
    tensor *x = tu_leaf(ndim, shape, true, 1, seed);
    for (int64_t i = 0; i < x->numel; i++)
        x->data[i] = 0.05f * (float)((i * 37 + (int64_t)seed) % x->numel) - 1.0f;
    return x;
}

/* Max pool 2x2 on a plane full of ties against the rule written out: the
 * first maximum of each window in (kh, kw) order wins, and backward routes
 * its gradient there (PyTorch's choice). Odd sizes drop the last row and
 * column, as PyTorch does. */
static void check_max_pool_ties(void) {
    int B = 2, C = 3, NH = 7, NW = 5, NOH = NH / 2, NOW = NW / 2;
    tensor *x = tu_leaf(4, (int[]){B, C, NH, NW}, true, 1, 5);
    for (int64_t i = 0; i < x->numel; i++)
        x->data[i] = (float)((i * 7) % 3); /* values 0, 1, 2: many ties */
    memset(x->grad, 0, sizeof(float) * x->numel);
    graph *g = graph_create(1 << 14, 0);
    tensor *y = op_max_pool2d(g, x, 2, 2, 0);
    assert_int_equal(y->numel, B * C * NOH * NOW);
    for (int64_t i = 0; i < y->numel; i++)
        y->grad[i] = 1.0f;
    graph_backward_tape(g);
    float *want_dx = xcalloc((size_t)x->numel, sizeof(float));
    for (int p = 0; p < B * C; p++)
        for (int oh = 0; oh < NOH; oh++)
            for (int ow = 0; ow < NOW; ow++) {
                const float *xp = x->data + (int64_t)p * NH * NW;
                int bi = -1;
                for (int kh = 0; kh < 2; kh++)
                    for (int kw = 0; kw < 2; kw++) {
                        int i = (2 * oh + kh) * NW + 2 * ow + kw;
                        if (bi < 0 || xp[i] > xp[bi])
                            bi = i;
                    }
                assert_true(y->data[((int64_t)p * NOH + oh) * NOW + ow] == xp[bi]);
                want_dx[(int64_t)p * NH * NW + bi] += 1.0f;
            }
    tu_assert_close("max_pool2d_ties_dx", x->grad, want_dx, x->numel, 0.0f, 0.0f);
    free(want_dx);
    graph_free(g);
    tu_leaf_free(x);
}

static void test_pools(void **state) {
    (void)state;
    tensor *x = leaf_distinct(4, (int[]){2, 3, 6, 5}, 7);
    tu_gradcheck("max_pool2d", fwd_unary, (void *)max_pool_2, 1, &x, H, ATOL, RTOL, 200);
    tu_gradcheck("max_pool2d_3s2p1", fwd_unary, (void *)max_pool_3s2p1, 1, &x, H, ATOL, RTOL, 200);
    tu_gradcheck("avg_pool2d", fwd_unary, (void *)avg_pool_2, 1, &x, H, ATOL, RTOL, 200);
    tu_gradcheck("avg_pool2d_3s2p1", fwd_unary, (void *)avg_pool_3s2p1, 1, &x, H, ATOL, RTOL, 200);
    tu_gradcheck("global_avg_pool", fwd_unary, (void *)op_global_avg_pool, 1, &x, H, ATOL, RTOL,
                 200);
    tu_gradcheck("global_max_pool", fwd_unary, (void *)op_global_max_pool, 1, &x, H, ATOL, RTOL,
                 200);
    tu_gradcheck("channel_pool", fwd_unary, (void *)op_channel_pool, 1, &x, H, ATOL, RTOL, 200);
    /* values: max pool of a known plane, padding never wins */
    graph *g = graph_create(1 << 12, 0);
    tensor *p = tu_leaf(4, (int[]){1, 1, 2, 2}, false, 1, 1);
    float v[4] = {-4, -3, -2, -1};
    memcpy(p->data, v, sizeof v);
    tensor *mp = op_max_pool2d(g, p, 3, 2, 1);
    assert_int_equal(mp->numel, 1);
    assert_true(mp->data[0] == -1.0f);
    tensor *ap = op_avg_pool2d(g, p, 2, 2, 0);
    assert_true(fabsf(ap->data[0] + 2.5f) < 1e-6f);
    graph_free(g);
    tu_leaf_free(p);
    tu_leaf_free(x);
    check_max_pool_ties();
}

static tensor *fwd_scale_channels(graph *g, tensor **in, void *user) {
    (void)user;
    return op_scale_channels(g, in[0], in[1]);
}
static tensor *fwd_scale_spatial(graph *g, tensor **in, void *user) {
    (void)user;
    return op_scale_spatial(g, in[0], in[1]);
}

static void test_gates(void **state) {
    (void)state;
    tensor *in[2] = {tu_leaf(4, (int[]){2, 3, 4, 5}, true, 1, 1),
                     tu_leaf(2, (int[]){2, 3}, true, 1, 2)};
    tu_gradcheck("scale_channels", fwd_scale_channels, NULL, 2, in, H, ATOL, RTOL, 200);
    tensor *sp[2] = {in[0], tu_leaf(4, (int[]){2, 1, 4, 5}, true, 1, 3)};
    tu_gradcheck("scale_spatial", fwd_scale_spatial, NULL, 2, sp, H, ATOL, RTOL, 200);
    tu_leaf_free(in[0]);
    tu_leaf_free(in[1]);
    tu_leaf_free(sp[1]);
}

/* ---- batch norm ---------------------------------------------------------- */

typedef struct bn_case {
    tensor *rm, *rv;
    bool training;
} bn_case;

static tensor *fwd_bn(graph *g, tensor **in, void *user) {
    bn_case *c = user;
    graph_set_training(g, c->training);
    return op_batch_norm(g, in[0], in[1], in[2], c->rm, c->rv, 0.1f, 1e-5f);
}

static void check_bn(int ndim, const int *shape, bool training) {
    int C = shape[1];
    tensor *in[3] = {tu_leaf(ndim, shape, true, 1, 1), tu_leaf(1, (int[]){C}, true, 1, 2),
                     tu_leaf(1, (int[]){C}, true, 1, 3)};
    bn_case c = {tu_leaf(1, (int[]){C}, false, 0.3f, 4), tu_leaf(1, (int[]){C}, false, 0.3f, 5),
                 training};
    for (int i = 0; i < C; i++)
        c.rv->data[i] += 1.0f;
    tu_gradcheck(training ? "batch_norm_train" : "batch_norm_eval", fwd_bn, &c, 3, in, H, ATOL,
                 RTOL, 200);
    for (int i = 0; i < 3; i++)
        tu_leaf_free(in[i]);
    tu_leaf_free(c.rm);
    tu_leaf_free(c.rv);
}

static void test_batch_norm(void **state) {
    (void)state;
    check_bn(4, (int[]){3, 2, 3, 4}, true);
    check_bn(4, (int[]){3, 2, 3, 4}, false);
    check_bn(2, (int[]){5, 3}, true);
    /* running statistics: one training step from (0, 1) with momentum 0.1 */
    tensor *x = tu_leaf(4, (int[]){2, 1, 1, 2}, false, 1, 1);
    float v[4] = {1, 2, 3, 6};
    memcpy(x->data, v, sizeof v);
    tensor *w = tu_leaf(1, (int[]){1}, false, 1, 2), *b = tu_leaf(1, (int[]){1}, false, 1, 3);
    tensor *rm = tu_leaf(1, (int[]){1}, false, 1, 4), *rv = tu_leaf(1, (int[]){1}, false, 1, 5);
    rm->data[0] = 0.0f;
    rv->data[0] = 1.0f;
    graph *g = graph_create(1 << 12, 0);
    graph_set_training(g, true);
    op_batch_norm(g, x, w, b, rm, rv, 0.1f, 1e-5f);
    /* mean 3, unbiased var (4 + 1 + 0 + 9) / 3 */
    assert_true(fabsf(rm->data[0] - 0.3f) < 1e-6f);
    assert_true(fabsf(rv->data[0] - (0.9f + 0.1f * 14.0f / 3.0f)) < 1e-5f);
    graph_free(g);
    tu_leaf_free(x);
    tu_leaf_free(w);
    tu_leaf_free(b);
    tu_leaf_free(rm);
    tu_leaf_free(rv);
}

/* A batch sum as if a second rank held the same samples: the statistics of
 * the doubled batch are those of the batch (the sums double exactly), so
 * output and gradients are bit for bit those without a batch sum, while the
 * unbiased running variance counts 2N - 1 degrees of freedom. */
static int doubled_calls;

static void sum_doubled(void *ctx, double *v, int n) {
    (void)ctx;
    doubled_calls++;
    for (int i = 0; i < n; i++)
        v[i] *= 2.0;
}

static void run_bn_once(bool doubled, float **got, int64_t n, int C) {
    int shape[4] = {3, C, 5, 7};
    tensor *in[3] = {tu_leaf(4, shape, true, 2, 21), tu_leaf(1, (int[]){C}, true, 1, 22),
                     tu_leaf(1, (int[]){C}, true, 1, 23)};
    tensor *rm = tu_leaf(1, (int[]){C}, false, 0, 24), *rv = tu_leaf(1, (int[]){C}, false, 0, 25);
    graph *g = graph_create(1 << 16, 0);
    graph_set_training(g, true);
    if (doubled)
        graph_set_batch_sum(g, sum_doubled, NULL);
    tensor *out = op_batch_norm(g, in[0], in[1], in[2], rm, rv, 0.5f, 1e-5f);
    for (int64_t i = 0; i < n; i++)
        out->grad[i] = 0.25f - 0.01f * (float)(i % 53);
    graph_backward_tape(g);
    memcpy(got[0], out->data, sizeof(float) * n);
    memcpy(got[1], in[0]->grad, sizeof(float) * n);
    memcpy(got[2], in[1]->grad, sizeof(float) * C);
    memcpy(got[3], in[2]->grad, sizeof(float) * C);
    memcpy(got[4], rm->data, sizeof(float) * C);
    memcpy(got[5], rv->data, sizeof(float) * C);
    graph_free(g);
    for (int i = 0; i < 3; i++)
        tu_leaf_free(in[i]);
    tu_leaf_free(rm);
    tu_leaf_free(rv);
}

static void test_batch_norm_batch_sum(void **state) {
    (void)state;
    int C = 4;
    int64_t n = 3 * C * 5 * 7, len[6] = {n, n, C, C, C, C};
    float *plain[6], *doubled[6];
    for (int i = 0; i < 6; i++) {
        plain[i] = test_malloc(sizeof(float) * len[i]);
        doubled[i] = test_malloc(sizeof(float) * len[i]);
    }
    run_bn_once(false, plain, n, C);
    doubled_calls = 0;
    run_bn_once(true, doubled, n, C);
    assert_int_equal(doubled_calls, 3); /* mean, deviations; backward sums */
    static const char *what[] = {"out", "dx", "dw", "db", "running_mean"};
    for (int i = 0; i < 5; i++)
        tu_assert_close(what[i], doubled[i], plain[i], len[i], 0, 0);
    /* running var = 0.5 var_u; var_u = ss / (N - 1) against 2 ss / (2N - 1) */
    double N = 3.0 * 5 * 7;
    for (int c = 0; c < C; c++) {
        double ss = 2.0 * plain[5][c] * (N - 1);
        assert_true(fabs(doubled[5][c] - 0.5 * 2.0 * ss / (2.0 * N - 1.0)) < 1e-5);
    }
    for (int i = 0; i < 6; i++) {
        test_free(plain[i]);
        test_free(doubled[i]);
    }
}

/* ---- blocks -------------------------------------------------------------- */

typedef enum block_kind { BLOCK_CBAM, BLOCK_BASIC, BLOCK_BOTTLENECK } block_kind;

typedef struct block_case {
    block_kind kind;
    cbam att;
    residual_block res;
} block_case;

static tensor *fwd_block(graph *g, tensor **in, void *user) {
    block_case *c = user;
    graph_set_training(g, true);
    if (c->kind == BLOCK_CBAM)
        return cbam_forward(g, &c->att, in[0]);
    return residual_block_forward(g, &c->res, in[0]);
}

static void check_block(const char *name, block_kind kind, int C, int planes, int stride,
                        bool with_cbam) {
    params ps;
    params_init(&ps);
    block_case c = {.kind = kind};
    if (kind == BLOCK_CBAM)
        cbam_init(&c.att, &ps, "cbam", C, 2);
    else
        residual_block_init(&c.res, &ps, "block", C, planes, stride, kind == BLOCK_BOTTLENECK,
                            with_cbam, 0.1f);
    params_alloc(&ps, 3);
    tensor *in[64];
    int n = 0;
    in[n++] = tu_leaf(4, (int[]){2, C, 5, 4}, true, 1, 9);
    for (int i = 0; i < ps.count && n < 64; i++)
        if (!ps.buffer[i])
            in[n++] = ps.tensors[i];
    /* ReLU and max kinks: a few elements may straddle one within h, so the
     * step is smaller here and the tolerance a little wider */
    tu_gradcheck(name, fwd_block, &c, n, in, 5e-4f, 5e-3f, 2e-2f, 40);
    tu_leaf_free(in[0]);
    params_free(&ps);
}

static void test_blocks(void **state) {
    (void)state;
    check_block("cbam", BLOCK_CBAM, 4, 0, 1, false);
    check_block("basic_block", BLOCK_BASIC, 3, 3, 1, false);
    check_block("basic_block_down", BLOCK_BASIC, 3, 4, 2, true);
    check_block("bottleneck_block", BLOCK_BOTTLENECK, 4, 2, 2, false);
}

/* ---- augmentation ------------------------------------------------------- */

static void test_augment(void **state) {
    (void)state;
    int B = 4;
    tensor *x = tu_leaf(4, (int[]){B, 2, 5, 6}, false, 1, 1);
    graph *g = graph_create(1 << 14, 0);
    /* eval: identity */
    assert_ptr_equal(op_augment_images(g, x, 2, true), x);
    graph_set_training(g, true);
    int64_t ids[4] = {10, 11, 12, 13};
    graph_begin_step(g, 5, 7, ids, B);
    tensor *a = op_augment_images(g, x, 2, true);
    /* the same sample at another row (another rank or micro-batch) */
    int64_t per = x->numel / B;
    tensor *one = tu_leaf(4, (int[]){1, 2, 5, 6}, false, 1, 1);
    memcpy(one->data, x->data + 2 * per, sizeof(float) * per);
    graph *g2 = graph_create(1 << 14, 0);
    graph_set_training(g2, true);
    graph_begin_step(g2, 5, 7, (int64_t[]){12}, 1);
    tensor *a1 = op_augment_images(g2, one, 2, true);
    assert_memory_equal(a1->data, a->data + 2 * per, sizeof(float) * per);
    /* every output value is an input value of the same sample and channel,
     * or a zero from the padding */
    for (int64_t i = 0; i < a->numel; i++) {
        int64_t plane = i / 30;
        bool found = a->data[i] == 0.0f;
        for (int j = 0; j < 30 && !found; j++)
            found = x->data[plane * 30 + j] == a->data[i];
        assert_true(found);
    }
    /* no crop, flip only: each row is the input row or its mirror */
    graph_begin_step(g, 5, 8, ids, B);
    tensor *f = op_augment_images(g, x, 0, true);
    int flipped = 0;
    for (int b = 0; b < B; b++) {
        const float *xs = x->data + b * per, *fs = f->data + b * per;
        bool same = memcmp(xs, fs, sizeof(float) * per) == 0;
        bool mirror = true;
        for (int r = 0; r < 10; r++)
            for (int j = 0; j < 6; j++)
                mirror &= fs[r * 6 + j] == xs[r * 6 + 5 - j];
        assert_true(same || mirror);
        flipped += mirror;
    }
    (void)flipped;
    graph_free(g);
    graph_free(g2);
    tu_leaf_free(x);
    tu_leaf_free(one);
}

/* ---- buffers ---------------------------------------------------------- */

/* A batch-norm layer's running statistics are buffers: in the parameter
 * buffer (so checkpoints carry them), frozen, not decayed, and left alone
 * by AdamW even when their gradient slot were non-zero. */
static void test_bn_buffers(void **state) {
    (void)state;
    params ps;
    params_init(&ps);
    bn_layer l;
    bn_layer_init(&l, &ps, "bn", 3, 0.1f);
    params_alloc(&ps, 1);
    assert_int_equal(params_buffer_numel(&ps), 6);
    int rm = l.running_mean->param, w = l.weight->param;
    assert_true(ps.buffer[rm] && ps.frozen[rm] && !ps.decay[rm]);
    assert_false(ps.buffer[w] || ps.frozen[w]);
    assert_true(l.running_var->data[0] == 1.0f && l.running_mean->data[0] == 0.0f);
    assert_true(l.running_mean->data >= ps.data && l.running_mean->data < ps.data + ps.numel);
    for (int64_t i = 0; i < ps.numel; i++)
        ps.grad[i] = 0.5f;
    adam_config ac = adam_config_default();
    ac.weight_decay = 0.1f;
    adam_state st;
    adam_state_init(&st, 0, ps.numel);
    adam_step(&ac, &st, &ps, ps.grad, 1e-2f, 1.0f);
    assert_true(l.running_mean->data[1] == 0.0f && l.running_var->data[2] == 1.0f);
    assert_true(l.weight->data[0] != 1.0f); /* the weight did move */
    adam_state_free(&st);
    params_free(&ps);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv2d),     cmocka_unit_test(test_conv2d_direct_twin),
        cmocka_unit_test(test_pools),      cmocka_unit_test(test_gates),
        cmocka_unit_test(test_batch_norm), cmocka_unit_test(test_batch_norm_batch_sum),
        cmocka_unit_test(test_blocks),     cmocka_unit_test(test_augment),
        cmocka_unit_test(test_bn_buffers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
