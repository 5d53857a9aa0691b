/* The 2-layer Transformer encoder classifier against PyTorch
 * (scripts/make_fixtures.py -> tests/fixtures/transformer.h5): logits, loss
 * and every parameter gradient to atol 1e-5 + rtol 1e-4, and the losses of 10
 * AdamW steps to rtol 1e-4. */
#include "testutil.h"

#include "core/ops.h"
#include "core/optim.h"
#include "models/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *fixture(void) {
    return tu_fixture("transformer.h5");
}

static int attr_int(const char *name) {
    double v = tu_h5_attr(fixture(), name, NAN);
    if (isnan(v))
        fail_msg("transformer.h5 has no attribute %s", name);
    return (int)v;
}

static model *build(void) {
    data_shape shape = {.num_classes = attr_int("K"),
                        .vocab_size = attr_int("V"),
                        .max_len = attr_int("T"),
                        .pad_id = attr_int("pad_id")};
    model_config cfg = model_config_default();
    cfg.dim = attr_int("C");
    cfg.depth = attr_int("depth");
    cfg.heads = attr_int("NH");
    cfg.ffn = attr_int("FFN");
    char err[256];
    model *m = model_create("transformer", &cfg, &shape, err, sizeof err);
    if (!m)
        fail_msg("model_create: %s", err);
    for (int i = 0; i < m->ps.count; i++) {
        tensor *t = m->ps.tensors[i];
        char name[256];
        snprintf(name, sizeof name, "params/%s", t->name);
        int64_t n;
        float *v = tu_h5_read_f32(fixture(), name, &n, NULL, NULL);
        assert_int_equal(n, t->numel);
        memcpy(t->data, v, sizeof(float) * n);
        free(v);
    }
    return m;
}

typedef struct fixture_batch {
    tensor *ids, *labels;
} fixture_batch;

static fixture_batch load_batch(void) {
    int shape[4], nd;
    int64_t n;
    fixture_batch b;
    int32_t *ids = tu_h5_read_i32(fixture(), "ids", &n, &nd, shape);
    b.ids = tu_leaf_i32(2, shape, 0, 1, 0);
    memcpy(b.ids->idata, ids, sizeof(int32_t) * n);
    free(ids);
    int32_t *labels = tu_h5_read_i32(fixture(), "labels", &n, &nd, shape);
    b.labels = tu_leaf_i32(1, shape, 0, 1, 0);
    memcpy(b.labels->idata, labels, sizeof(int32_t) * n);
    free(labels);
    return b;
}

static tensor *forward_loss(model *m, graph *g, fixture_batch *b, tensor **logits) {
    model_batch mb = {.B = b->ids->shape[0], .tokens = b->ids};
    *logits = model_forward(m, g, &mb, NULL);
    return op_cross_entropy(g, *logits, b->labels, 0.0f);
}

static void test_logits_loss_grads(void **state) {
    model *m = build();
    fixture_batch b = load_batch();
    graph *g = graph_create(1 << 20, m->ps.count);
    tensor *logits;
    tensor *loss = forward_loss(m, g, &b, &logits);
    int64_t n;
    float *want = tu_h5_read_f32(fixture(), "logits", &n, NULL, NULL);
    assert_int_equal(n, logits->numel);
    tu_assert_close("logits", logits->data, want, n, 1e-5f, 1e-4f);
    free(want);
    want = tu_h5_read_f32(fixture(), "loss", &n, NULL, NULL);
    tu_assert_close("loss", loss->data, want, 1, 1e-6f, 1e-4f);
    free(want);
    graph_backward(g, loss, 1.0f);
    for (int i = 0; i < m->ps.count; i++) {
        tensor *t = m->ps.tensors[i];
        char name[256];
        snprintf(name, sizeof name, "grad/%s", t->name);
        want = tu_h5_read_f32(fixture(), name, &n, NULL, NULL);
        assert_int_equal(n, t->numel);
        tu_assert_close(name, t->grad, want, n, 1e-5f, 1e-4f);
        free(want);
    }
    graph_free(g);
    tu_leaf_free(b.ids);
    tu_leaf_free(b.labels);
    model_free(m);
}

static void test_ten_adamw_steps(void **state) {
    model *m = build();
    fixture_batch b = load_batch();
    graph *g = graph_create(1 << 20, m->ps.count);
    adam_config ac = adam_config_default();
    ac.beta1 = (float)tu_h5_attr(fixture(), "beta1", 0.9);
    ac.beta2 = (float)tu_h5_attr(fixture(), "beta2", 0.999);
    ac.eps = (float)tu_h5_attr(fixture(), "eps", 1e-8);
    ac.weight_decay = (float)tu_h5_attr(fixture(), "weight_decay", 0.01);
    float lr = (float)tu_h5_attr(fixture(), "lr", 1e-3);
    adam_state st;
    adam_state_init(&st, 0, m->ps.numel);
    int64_t n;
    float *want = tu_h5_read_f32(fixture(), "losses", &n, NULL, NULL);
    float got[64];
    assert_true(n <= 64);
    for (int step = 0; step < n; step++) {
        params_zero_grad(&m->ps);
        graph_reset(g);
        tensor *logits;
        tensor *loss = forward_loss(m, g, &b, &logits);
        got[step] = loss->data[0];
        graph_backward(g, loss, 1.0f);
        adam_step(&ac, &st, &m->ps, m->ps.grad, lr, 1.0f);
    }
    tu_assert_close("losses of 10 AdamW steps", got, want, n, 0.0f, 1e-4f);
    free(want);
    adam_state_free(&st);
    graph_free(g);
    tu_leaf_free(b.ids);
    tu_leaf_free(b.labels);
    model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_logits_loss_grads),
        cmocka_unit_test(test_ten_adamw_steps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
