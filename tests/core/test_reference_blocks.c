/* Ops and blocks against PyTorch (scripts/make_fixtures.py ->
 * tests/fixtures/blocks.h5): for every case, the forward output (and the
 * attention probabilities or weights where the block hands them back) and
 * the gradient of sum(out * grad_out) with respect to every float input and
 * every parameter.
 *
 * Tolerance: |heed - torch| <= 1e-5 + 1e-4 * |torch| elementwise. The
 * fixture is computed in float64 from float32 values, so this bounds heed's
 * own float32 error; values are O(1) and reductions at most 16 long, where
 * float32 rounding stays near 1e-6. Every comparison prints its largest
 * difference; a mismatch fails the case.
 *
 * Parameters are registered under the block name "b", so "b.attn.q.weight"
 * is read from "<case>/params/attn.q.weight" and its gradient compared with
 * "<case>/grad/attn.q.weight". The sizes the fixture cannot carry in shapes
 * (heads, layer-norm eps) are the constants below and must match the
 * script. */
#include "testutil.h"

#include "core/blocks.h"
#include "core/ops.h"
#include "core/params.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const float ATOL = 1e-5f, RTOL = 1e-4f;

/* As in make_fixtures.py. */
enum { REF_NH = 2 };
static const float REF_LN_EPS = 1e-5f;
static const float REF_SMOOTHING = 0.1f;
static const float REF_CLASS_WEIGHTS[5] = {0.5f, 2.0f, 1.0f, 0.25f, 3.0f};

enum { REF_MAX_INPUTS = 8 };

/* One case: its fixture group, its parameters, its graph and the leaf
 * tensors loaded from the fixture. */
typedef struct ref {
    const char *group;
    params ps;
    graph *g;
    tensor *inputs[REF_MAX_INPUTS];
    const char *input_names[REF_MAX_INPUTS];
    int n_inputs;
} ref;

static const char *fixture(void) {
    return tu_fixture("blocks.h5");
}

/* "<group>/<a><b>" in a static buffer (one path at a time). */
static const char *ref_path(const ref *r, const char *a, const char *b) {
    static char buf[512];
    snprintf(buf, sizeof buf, "%s/%s%s", r->group, a, b);
    return buf;
}

/* The parameter name with the block name "b." stripped. */
static const char *ref_param_key(const tensor *t) {
    assert_true(strncmp(t->name, "b.", 2) == 0);
    return t->name + 2;
}

static void ref_begin(ref *r, const char *group) {
    memset(r, 0, sizeof *r);
    r->group = group;
    params_init(&r->ps);
}

static void ref_check_shape(const char *what, const tensor *t, int ndim, const int *shape) {
    bool same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++)
        same = t->shape[i] == shape[i];
    if (!same) {
        char got[64], want[64];
        int k = snprintf(want, sizeof want, "[");
        for (int i = 0; i < ndim && k < (int)sizeof want; i++)
            k += snprintf(want + k, sizeof want - k, i ? ", %d" : "%d", shape[i]);
        if (k < (int)sizeof want)
            snprintf(want + k, sizeof want - k, "]");
        fail_msg("%s: heed's shape is %s, the fixture's %s", what,
                 tensor_shape_str(t, got, sizeof got), want);
    }
}

/* Allocates the registered parameters and overwrites every one with the
 * fixture's values (so no parameter can silently keep its initial value),
 * then creates the graph. */
static void ref_alloc(ref *r) {
    params_alloc(&r->ps, 1);
    for (int i = 0; i < r->ps.count; i++) {
        tensor *t = r->ps.tensors[i];
        int64_t n;
        int nd, shape[8];
        float *v =
            tu_h5_read_f32(fixture(), ref_path(r, "params/", ref_param_key(t)), &n, &nd, shape);
        ref_check_shape(t->name, t, nd, shape);
        memcpy(t->data, v, sizeof(float) * n);
        free(v);
    }
    r->g = graph_create(1 << 20, r->ps.count);
}

/* A float input leaf with the fixture's shape and values; with_grad makes it
 * a differentiable input whose gradient ref_finish checks. */
static tensor *ref_input(ref *r, const char *name, bool with_grad) {
    assert_true(r->n_inputs < REF_MAX_INPUTS);
    int64_t n;
    int nd, shape[8];
    float *v = tu_h5_read_f32(fixture(), ref_path(r, name, ""), &n, &nd, shape);
    tensor *t = tu_leaf(nd, shape, with_grad, 1, 0);
    memcpy(t->data, v, sizeof(float) * n);
    free(v);
    r->input_names[r->n_inputs] = name;
    r->inputs[r->n_inputs++] = t;
    return t;
}

/* An int32 input (ids, labels, valid flags): never differentiable. */
static tensor *ref_input_i32(ref *r, const char *name) {
    assert_true(r->n_inputs < REF_MAX_INPUTS);
    int64_t n;
    int nd, shape[8];
    int32_t *v = tu_h5_read_i32(fixture(), ref_path(r, name, ""), &n, &nd, shape);
    tensor *t = tu_leaf_i32(nd, shape, 0, 1, 0);
    memcpy(t->idata, v, sizeof(int32_t) * n);
    free(v);
    r->input_names[r->n_inputs] = name;
    r->inputs[r->n_inputs++] = t;
    return t;
}

/* Compares `got` with the fixture's dataset `name`: shape, then values. */
static void ref_compare(const ref *r, const char *name, const tensor *t, const float *got) {
    int64_t n;
    int nd, shape[8];
    char what[256];
    snprintf(what, sizeof what, "%s/%s", r->group, name);
    float *want = tu_h5_read_f32(fixture(), ref_path(r, name, ""), &n, &nd, shape);
    ref_check_shape(what, t, nd, shape);
    assert_non_null(got);
    tu_assert_close(what, got, want, n, ATOL, RTOL);
    free(want);
}

/* Checks `out`, seeds its gradient with the fixture's grad_out, runs the
 * tape backwards and checks the gradient of every differentiable input and
 * every parameter; then frees the case. */
static void ref_finish(ref *r, tensor *out) {
    ref_compare(r, "out", out, out->data);

    int64_t n;
    float *seed = tu_h5_read_f32(fixture(), ref_path(r, "grad_out", ""), &n, NULL, NULL);
    assert_int_equal(n, out->numel);
    if (!out->grad)
        fail_msg("%s: the output has no gradient although its inputs have", r->group);
    memcpy(out->grad, seed, sizeof(float) * n);
    free(seed);
    graph_backward_tape(r->g);

    char name[256];
    for (int i = 0; i < r->n_inputs; i++) {
        tensor *t = r->inputs[i];
        if (!t->grad)
            continue;
        snprintf(name, sizeof name, "grad/%s", r->input_names[i]);
        ref_compare(r, name, t, t->grad);
    }
    for (int i = 0; i < r->ps.count; i++) {
        tensor *t = r->ps.tensors[i];
        snprintf(name, sizeof name, "grad/%s", ref_param_key(t));
        ref_compare(r, name, t, t->grad);
    }

    graph_free(r->g);
    params_free(&r->ps);
    for (int i = 0; i < r->n_inputs; i++)
        tu_leaf_free(r->inputs[i]);
}

/* ---- ops ---------------------------------------------------------------- */

static void test_gelu(const char *group, gelu_kind kind) {
    ref r;
    ref_begin(&r, group);
    ref_alloc(&r);
    tensor *x = ref_input(&r, "x", true);
    ref_finish(&r, op_gelu(r.g, x, kind));
}

static void test_gelu_erf(void **state) {
    test_gelu("gelu_erf", GELU_ERF);
}

static void test_gelu_tanh(void **state) {
    test_gelu("gelu_tanh", GELU_TANH);
}

static void test_softmax(void **state) {
    /* x (B, T, S), mask (B, S): one mask row serves T rows of x. */
    ref r;
    ref_begin(&r, "softmax");
    ref_alloc(&r);
    tensor *x = ref_input(&r, "x", true);
    tensor *mask = ref_input(&r, "mask", false);
    ref_finish(&r, op_softmax(r.g, x, mask));
}

static void test_log_softmax(void **state) {
    ref r;
    ref_begin(&r, "log_softmax");
    ref_alloc(&r);
    tensor *x = ref_input(&r, "x", true);
    ref_finish(&r, op_log_softmax(r.g, x, NULL));
}

static void test_cross_entropy(void **state) {
    ref r;
    ref_begin(&r, "cross_entropy");
    ref_alloc(&r);
    tensor *logits = ref_input(&r, "logits", true);
    tensor *labels = ref_input_i32(&r, "labels");
    ref_finish(&r, op_cross_entropy(r.g, logits, labels, REF_SMOOTHING));
}

static void test_cross_entropy_weighted(void **state) {
    ref r;
    ref_begin(&r, "cross_entropy_weighted");
    ref_alloc(&r);
    tensor *logits = ref_input(&r, "logits", true);
    tensor *labels = ref_input_i32(&r, "labels");
    ref_finish(&r,
               op_cross_entropy_weighted(r.g, logits, labels, REF_SMOOTHING, REF_CLASS_WEIGHTS));
}

static void test_embedding(void **state) {
    ref r;
    ref_begin(&r, "embedding");
    int nd, shape[8];
    int64_t n;
    free(tu_h5_read_f32(fixture(), "embedding/params/weight", &n, &nd, shape));
    params_push_scope(&r.ps, "b");
    tensor *table = params_add(&r.ps, "weight", PARAM_INIT(INIT_ZEROS, 0), nd, shape);
    params_pop_scope(&r.ps);
    ref_alloc(&r);
    tensor *ids = ref_input_i32(&r, "ids");
    ref_finish(&r, op_embedding(r.g, ids, table));
}

static void test_masked_mean(void **state) {
    ref r;
    ref_begin(&r, "masked_mean");
    ref_alloc(&r);
    tensor *x = ref_input(&r, "x", true);
    tensor *valid = ref_input_i32(&r, "valid");
    ref_finish(&r, op_masked_mean(r.g, x, valid));
}

/* ---- blocks --------------------------------------------------------------- */

static void test_linear(void **state) {
    ref r;
    ref_begin(&r, "linear");
    int nd, shape[8];
    int64_t n;
    free(tu_h5_read_f32(fixture(), "linear/params/weight", &n, &nd, shape));
    linear_layer l;
    linear_layer_init(&l, &r.ps, "b", shape[1], shape[0], true);
    ref_alloc(&r);
    tensor *x = ref_input(&r, "x", true);
    ref_finish(&r, linear_layer_forward(r.g, &l, x));
}

static void test_layer_norm(void **state) {
    ref r;
    ref_begin(&r, "layer_norm");
    int nd, shape[8];
    int64_t n;
    free(tu_h5_read_f32(fixture(), "layer_norm/params/weight", &n, &nd, shape));
    layer_norm_layer l;
    layer_norm_layer_init(&l, &r.ps, "b", shape[0], REF_LN_EPS);
    ref_alloc(&r);
    tensor *x = ref_input(&r, "x", true);
    ref_finish(&r, layer_norm_layer_forward(r.g, &l, x));
}

static void test_mha(const char *group, bool self) {
    ref r;
    ref_begin(&r, group);
    int nd, shape[8];
    int64_t n;
    char path[128];
    snprintf(path, sizeof path, "%s/params/q.weight", group);
    free(tu_h5_read_f32(fixture(), path, &n, &nd, shape));
    mha m;
    mha_init(&m, &r.ps, "b", shape[0], REF_NH, 0.0f);
    ref_alloc(&r);
    tensor *q_in = ref_input(&r, self ? "x" : "q_in", true);
    tensor *kv_in = self ? q_in : ref_input(&r, "kv_in", true);
    tensor *mask = ref_input(&r, "mask", false);
    tensor *probs = NULL;
    tensor *out = mha_forward(r.g, &m, q_in, kv_in, mask, &probs);
    assert_non_null(probs);
    ref_compare(&r, "probs", probs, probs->data);
    ref_finish(&r, out);
}

static void test_mha_self(void **state) {
    test_mha("mha_self", true);
}

static void test_mha_cross(void **state) {
    test_mha("mha_cross", false);
}

static void test_encoder(const char *group, bool pre_norm) {
    ref r;
    ref_begin(&r, group);
    int nd, shape[8];
    int64_t n;
    char path[128];
    snprintf(path, sizeof path, "%s/params/fc1.weight", group);
    free(tu_h5_read_f32(fixture(), path, &n, &nd, shape));
    encoder_block_config cfg = {.C = shape[1],
                                .NH = REF_NH,
                                .FFN = shape[0],
                                .pre_norm = pre_norm,
                                .act = GELU_ERF,
                                .dropout = 0.0f,
                                .ln_eps = REF_LN_EPS};
    encoder_block e;
    encoder_block_init(&e, &r.ps, "b", &cfg);
    ref_alloc(&r);
    tensor *x = ref_input(&r, "x", true);
    tensor *mask = ref_input(&r, "mask", false);
    tensor *probs = NULL;
    tensor *out = encoder_block_forward(r.g, &e, x, mask, &probs);
    assert_non_null(probs);
    ref_compare(&r, "probs", probs, probs->data);
    ref_finish(&r, out);
}

static void test_encoder_prenorm(void **state) {
    test_encoder("encoder_prenorm", true);
}

static void test_encoder_postnorm(void **state) {
    test_encoder("encoder_postnorm", false);
}

static void test_additive_attention(void **state) {
    ref r;
    ref_begin(&r, "additive_attention");
    int nd, shape[8];
    int64_t n;
    free(tu_h5_read_f32(fixture(), "additive_attention/params/proj.weight", &n, &nd, shape));
    additive_attention a;
    additive_attention_init(&a, &r.ps, "b", shape[1], shape[0]);
    ref_alloc(&r);
    tensor *x = ref_input(&r, "x", true);
    tensor *mask = ref_input(&r, "mask", false);
    tensor *weights = NULL;
    tensor *out = additive_attention_forward(r.g, &a, x, mask, &weights);
    assert_non_null(weights);
    ref_compare(&r, "weights", weights, weights->data);
    ref_finish(&r, out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear),
        cmocka_unit_test(test_layer_norm),
        cmocka_unit_test(test_gelu_erf),
        cmocka_unit_test(test_gelu_tanh),
        cmocka_unit_test(test_softmax),
        cmocka_unit_test(test_log_softmax),
        cmocka_unit_test(test_cross_entropy),
        cmocka_unit_test(test_cross_entropy_weighted),
        cmocka_unit_test(test_embedding),
        cmocka_unit_test(test_masked_mean),
        cmocka_unit_test(test_mha_self),
        cmocka_unit_test(test_mha_cross),
        cmocka_unit_test(test_encoder_prenorm),
        cmocka_unit_test(test_encoder_postnorm),
        cmocka_unit_test(test_additive_attention),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
