/* heed's vision ops and blocks against PyTorch (tests/fixtures/vision.h5,
 * written by scripts/make_fixtures_vision.py): outputs, the gradient of the
 * input and of every parameter, and the running statistics after a training
 * forward, to 1e-4 relative (plus 1e-5 absolute for values near zero). */
#include "testutil.h"

#include "core/blocks_cnn.h"
#include "core/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ATOL 1e-5f
#define RTOL 1e-4f

static const char *fixture(void) {
    return tu_fixture("vision.h5");
}

/* "<group>/<a><b>" in a static buffer (one path at a time). */
static const char *path2(const char *group, const char *a, const char *b) {
    static char buf[512];
    snprintf(buf, sizeof buf, "%s/%s%s", group, a, b);
    return buf;
}

/* The parameter name without the block prefix "b.". */
static const char *key_of(const tensor *t) {
    assert_true(strncmp(t->name, "b.", 2) == 0);
    return t->name + 2;
}

static void compare(const char *group, const char *name, const float *got, int64_t numel) {
    int64_t n;
    char what[256];
    snprintf(what, sizeof what, "%s/%s", group, name);
    float *want = tu_h5_read_f32(fixture(), path2(group, name, ""), &n, NULL, NULL);
    assert_int_equal(n, numel);
    assert_non_null(got);
    tu_assert_close(what, got, want, n, ATOL, RTOL);
    free(want);
}

typedef tensor *(*case_forward)(graph *g, void *blk, tensor *x);

/* Loads every parameter and buffer of ps and the input, runs fwd (in
 * training mode when the group says so), checks out, then every gradient,
 * then (training) the running statistics. */
static void run_case(const char *group, params *ps, void *blk, case_forward fwd) {
    params_alloc(ps, 1);
    for (int i = 0; i < ps->count; i++) {
        tensor *t = ps->tensors[i];
        int64_t n;
        float *v = tu_h5_read_f32(fixture(), path2(group, "params/", key_of(t)), &n, NULL, NULL);
        assert_int_equal(n, t->numel);
        memcpy(t->data, v, sizeof(float) * n);
        free(v);
    }
    int64_t n;
    int nd, shape[8];
    float *xv = tu_h5_read_f32(fixture(), path2(group, "x", ""), &n, &nd, shape);
    tensor *x = tu_leaf(nd, shape, true, 1, 0);
    memcpy(x->data, xv, sizeof(float) * n);
    free(xv);
    graph *g = graph_create(1 << 20, ps->count);
    char attr[128];
    snprintf(attr, sizeof attr, "training_%s", group);
    double mode = tu_h5_attr(fixture(), attr, -1);
    assert_true(mode == 0 || mode == 1);
    bool training = mode == 1;
    graph_set_training(g, training);
    tensor *out = fwd(g, blk, x);
    compare(group, "out", out->data, out->numel);
    float *seed = tu_h5_read_f32(fixture(), path2(group, "grad_out", ""), &n, NULL, NULL);
    assert_int_equal(n, out->numel);
    assert_non_null(out->grad);
    memcpy(out->grad, seed, sizeof(float) * n);
    free(seed);
    graph_backward_tape(g);
    compare(group, "grad/x", x->grad, x->numel);
    char name[256];
    for (int i = 0; i < ps->count; i++) {
        tensor *t = ps->tensors[i];
        snprintf(name, sizeof name, "%s/%s", ps->buffer[i] ? "after" : "grad", key_of(t));
        if (ps->buffer[i] && !training)
            snprintf(name, sizeof name, "params/%s", key_of(t)); /* eval: unchanged */
        compare(group, name, ps->buffer[i] ? t->data : t->grad, t->numel);
    }
    graph_free(g);
    tu_leaf_free(x);
    params_free(ps);
}

/* ---- cases ------------------------------------------------------------- */

static tensor *fwd_conv(graph *g, void *blk, tensor *x) {
    return conv_layer_forward(g, blk, x);
}
static tensor *fwd_bn(graph *g, void *blk, tensor *x) {
    return bn_layer_forward(g, blk, x);
}
static tensor *fwd_cbam(graph *g, void *blk, tensor *x) {
    return cbam_forward(g, blk, x);
}
static tensor *fwd_block(graph *g, void *blk, tensor *x) {
    return residual_block_forward(g, blk, x);
}

static void conv_case(const char *group, int C, int OC, int K, conv2d_geom geom, bool bias) {
    params ps;
    params_init(&ps);
    params_push_scope(&ps, "b");
    conv_layer l;
    conv_layer_init(&l, &ps, "conv", C, OC, K, geom, bias);
    params_pop_scope(&ps);
    run_case(group, &ps, &l, fwd_conv);
}

static void test_conv2d(void **state) {
    (void)state;
    conv_case("conv2d", 3, 4, 3, (conv2d_geom){1, 1, 1, 1}, true);
    conv_case("conv2d_strided", 4, 6, 3, (conv2d_geom){2, 2, 2, 2}, true);
    conv_case("conv2d_1x1", 4, 3, 1, (conv2d_geom){1, 0, 1, 1}, false);
}

static void test_batch_norm(void **state) {
    (void)state;
    const char *groups[2] = {"batch_norm_train", "batch_norm_eval"};
    for (int i = 0; i < 2; i++) {
        params ps;
        params_init(&ps);
        params_push_scope(&ps, "b");
        bn_layer l;
        bn_layer_init(&l, &ps, "bn", 4, 0.1f);
        params_pop_scope(&ps);
        run_case(groups[i], &ps, &l, fwd_bn);
    }
}

static void test_cbam(void **state) {
    (void)state;
    params ps;
    params_init(&ps);
    params_push_scope(&ps, "b");
    cbam m;
    cbam_init(&m, &ps, "cbam", 8, 4);
    params_pop_scope(&ps);
    run_case("cbam", &ps, &m, fwd_cbam);
}

static void block_case(const char *group, int C, int planes, int stride, bool bottleneck,
                       bool with_cbam) {
    params ps;
    params_init(&ps);
    residual_block r;
    residual_block_init(&r, &ps, "b", C, planes, stride, bottleneck, with_cbam, 0.1f);
    run_case(group, &ps, &r, fwd_block);
}

static void test_residual_blocks(void **state) {
    (void)state;
    block_case("basic_block", 4, 6, 2, false, false);
    block_case("basic_block_cbam", 8, 8, 1, false, true);
    block_case("bottleneck_block", 4, 2, 2, true, false);
    block_case("bottleneck_block_identity", 8, 2, 1, true, false);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv2d),
        cmocka_unit_test(test_batch_norm),
        cmocka_unit_test(test_cbam),
        cmocka_unit_test(test_residual_blocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
