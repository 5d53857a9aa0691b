/* BERT imported from a Hugging Face state dict against a plain-PyTorch BERT
 * (scripts/make_fixtures_bert.py): tests/fixtures/bert_hf.h5 is what
 * scripts/convert_hf_bert.py wrote from a fake HF directory, bert_ref.h5
 * holds the batch and the reference outputs. Hidden states of every layer,
 * the pooled output, the classifier's logits and loss, every parameter
 * gradient and the MLM head's logits must match to atol 1e-5 + rtol 1e-4. */
#include "testutil.h"

#include "core/ops.h"
#include "models/bert.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *hf(void) {
    return tu_fixture("bert_hf.h5");
}

static const char *ref(void) {
    return tu_fixture("bert_ref.h5");
}

static int attr_int(const char *path, const char *name) {
    double v = tu_h5_attr(path, name, NAN);
    if (isnan(v))
        fail_msg("%s has no attribute %s", path, name);
    return (int)v;
}

/* The model the converted file describes (its own root attributes), with
 * every parameter read from /params/<name> (shape checked). */
static model *build_pooled(const char *kind, const char *pool) {
    data_shape shape = {.num_classes = attr_int(hf(), "num_classes"),
                        .vocab_size = attr_int(hf(), "vocab_size"),
                        .max_len = attr_int(ref(), "L"),
                        .pad_id = attr_int(ref(), "pad_id"),
                        .cls_id = attr_int(ref(), "cls_id"),
                        .sep_id = attr_int(ref(), "sep_id"),
                        .mask_id = attr_int(ref(), "mask_id")};
    model_config cfg = model_config_default();
    cfg.dim = attr_int(hf(), "dim");
    cfg.depth = attr_int(hf(), "depth");
    cfg.heads = attr_int(hf(), "heads");
    cfg.ffn = attr_int(hf(), "ffn");
    cfg.max_len = attr_int(hf(), "max_len");
    snprintf(cfg.pool, sizeof cfg.pool, "%s", pool);
    char err[256];
    model *m = model_create(kind, &cfg, &shape, err, sizeof err);
    if (!m)
        fail_msg("model_create(%s): %s", kind, err);
    for (int i = 0; i < m->ps.count; i++) {
        tensor *t = m->ps.tensors[i];
        char name[256];
        snprintf(name, sizeof name, "params/%s", t->name);
        int64_t n;
        int nd, sh[8];
        float *v = tu_h5_read_f32(hf(), name, &n, &nd, sh);
        assert_int_equal(nd, t->ndim);
        for (int d = 0; d < nd; d++)
            assert_int_equal(sh[d], t->shape[d]);
        memcpy(t->data, v, sizeof(float) * n);
        free(v);
    }
    return m;
}

static model *build(const char *kind) {
    return build_pooled(kind, "");
}

static const tensor *param_named(const model *m, const char *name) {
    for (int i = 0; i < m->ps.count; i++)
        if (!strcmp(m->ps.tensors[i]->name, name))
            return m->ps.tensors[i];
    fail_msg("no parameter %s", name);
    return NULL;
}

static tensor *load_i32(const char *name) {
    int shape[4], nd;
    int64_t n;
    int32_t *v = tu_h5_read_i32(ref(), name, &n, &nd, shape);
    tensor *t = tu_leaf_i32(nd, shape, 0, 1, 0);
    memcpy(t->idata, v, sizeof(int32_t) * n);
    free(v);
    return t;
}

static void check(const char *name, const tensor *got) {
    int64_t n;
    float *want = tu_h5_read_f32(ref(), name, &n, NULL, NULL);
    assert_int_equal(n, got->numel);
    tu_assert_close(name, got->data, want, n, 1e-5f, 1e-4f);
    free(want);
}

static void test_hidden_states_pooled(void **state) {
    model *m = build("bert");
    tensor *ids = load_i32("ids"), *seg = load_i32("segments");
    graph *g = graph_create(1 << 20, m->ps.count);
    graph_set_grad(g, false);
    model_batch mb = {.B = ids->shape[0], .tokens = ids, .segments = seg};
    tensor *hidden[16], *pooled;
    assert_true(m->cfg.depth + 1 <= 16);
    bert_encode(m, g, &mb, hidden, &pooled);
    for (int i = 0; i <= m->cfg.depth; i++) {
        char name[32];
        snprintf(name, sizeof name, "hidden_%d", i);
        check(name, hidden[i]);
    }
    check("pooled", pooled);
    graph_free(g);
    tu_leaf_free(ids);
    tu_leaf_free(seg);
    model_free(m);
}

/* --pool mean: the pooler (dense + tanh) runs on the mean of the last
 * hidden state over each sample's non-pad positions instead of [CLS]. */
static void test_mean_pool(void **state) {
    model *m = build_pooled("bert", "mean");
    tensor *ids = load_i32("ids"), *seg = load_i32("segments");
    graph *g = graph_create(1 << 20, m->ps.count);
    graph_set_grad(g, false);
    model_batch mb = {.B = ids->shape[0], .tokens = ids, .segments = seg};
    tensor *hidden[16], *pooled;
    bert_encode(m, g, &mb, hidden, &pooled);
    const tensor *h = hidden[m->cfg.depth];
    const tensor *w = param_named(m, "pooler.weight"), *b = param_named(m, "pooler.bias");
    int B = ids->shape[0], T = ids->shape[1], C = m->cfg.dim, pad = m->shape.pad_id;
    assert_int_equal(pooled->numel, (int64_t)B * C);
    double mean[1024];
    assert_true(C <= 1024);
    for (int i = 0; i < B; i++) {
        int n = 0;
        for (int c = 0; c < C; c++)
            mean[c] = 0.0;
        for (int t = 0; t < T; t++) {
            if (ids->idata[i * T + t] == pad)
                continue;
            n++;
            for (int c = 0; c < C; c++)
                mean[c] += h->data[((int64_t)i * T + t) * C + c];
        }
        assert_true(n > 0);
        for (int o = 0; o < C; o++) {
            double acc = b->data[o];
            for (int c = 0; c < C; c++)
                acc += (double)w->data[o * C + c] * (mean[c] / n);
            assert_float_equal(pooled->data[i * C + o], tanh(acc), 1e-5);
        }
    }
    graph_free(g);
    tu_leaf_free(ids);
    tu_leaf_free(seg);
    model_free(m);
}

static void test_logits_loss_grads(void **state) {
    model *m = build("bert");
    tensor *ids = load_i32("ids"), *seg = load_i32("segments"), *labels = load_i32("labels");
    graph *g = graph_create(1 << 20, m->ps.count);
    model_batch mb = {.B = ids->shape[0], .tokens = ids, .segments = seg};
    tensor *logits = model_forward(m, g, &mb, NULL);
    check("logits", logits);
    tensor *loss = op_cross_entropy(g, logits, labels, 0.0f);
    check("loss", loss);
    graph_backward(g, loss, 1.0f);
    for (int i = 0; i < m->ps.count; i++) {
        tensor *t = m->ps.tensors[i];
        char name[256];
        snprintf(name, sizeof name, "grad/%s", t->name);
        int64_t n;
        float *want = tu_h5_read_f32(ref(), name, &n, NULL, NULL);
        assert_int_equal(n, t->numel);
        tu_assert_close(name, t->grad, want, n, 1e-5f, 1e-4f);
        free(want);
    }
    graph_free(g);
    tu_leaf_free(ids);
    tu_leaf_free(seg);
    tu_leaf_free(labels);
    model_free(m);
}

static void test_mlm_head_logits(void **state) {
    model *m = build("bert_mlm");
    tensor *ids = load_i32("ids"), *seg = load_i32("segments");
    graph *g = graph_create(1 << 20, m->ps.count);
    graph_set_grad(g, false);
    model_batch mb = {.B = ids->shape[0], .tokens = ids, .segments = seg};
    check("mlm_logits", model_forward(m, g, &mb, NULL));
    graph_free(g);
    tu_leaf_free(ids);
    tu_leaf_free(seg);
    model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hidden_states_pooled),
        cmocka_unit_test(test_mean_pool),
        cmocka_unit_test(test_logits_loss_grads),
        cmocka_unit_test(test_mlm_head_logits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
