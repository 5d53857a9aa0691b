/* The BiLSTM and BiGRU classifiers (src/models/birnn.c) against PyTorch
 * (scripts/make_fixtures_rnn.py -> tests/fixtures/rnn.h5): logits, loss,
 * the attention pooling weights handed to the attention sink, and every
 * parameter gradient to atol 1e-5 + rtol 1e-4, on a right-padded batch that
 * PyTorch runs through pack_padded_sequence. */
#include "testutil.h"

#include "core/ops.h"
#include "models/attention_sink.h"
#include "models/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *fixture(void) {
    return tu_fixture("rnn.h5");
}

static int attr_int(const char *name) {
    double v = tu_h5_attr(fixture(), name, NAN);
    if (isnan(v))
        fail_msg("rnn.h5 has no attribute %s", name);
    return (int)v;
}

static int32_t *read_i32(const char *group, const char *name, int *shape) {
    char key[256];
    snprintf(key, sizeof key, "%s/%s", group, name);
    int64_t n;
    int nd;
    return tu_h5_read_i32(fixture(), key, &n, &nd, shape);
}

static void check_model(const char *name) {
    data_shape shape = {.num_classes = attr_int("K"),
                        .vocab_size = attr_int("V"),
                        .max_len = attr_int("T"),
                        .pad_id = attr_int("pad_id")};
    model_config cfg = model_config_default();
    cfg.dim = attr_int("H");
    cfg.depth = attr_int("layers");
    cfg.embed_dim = attr_int("E");
    char err[256], key[256];
    model *m = model_create(name, &cfg, &shape, err, sizeof err);
    if (!m)
        fail_msg("model_create: %s", err);
    assert_int_equal(attr_int("A"), cfg.dim); /* the attention width is H */
    int64_t n;
    for (int i = 0; i < m->ps.count; i++) {
        tensor *t = m->ps.tensors[i];
        snprintf(key, sizeof key, "%s/params/%s", name, t->name);
        float *v = tu_h5_read_f32(fixture(), key, &n, NULL, NULL);
        assert_int_equal(n, t->numel);
        memcpy(t->data, v, sizeof(float) * n);
        free(v);
    }
    int s[4];
    int32_t *ids_v = read_i32(name, "ids", s);
    tensor *ids = tu_leaf_i32(2, s, 0, 1, 0);
    memcpy(ids->idata, ids_v, sizeof(int32_t) * ids->numel);
    free(ids_v);
    int32_t *labels_v = read_i32(name, "labels", s);
    tensor *labels = tu_leaf_i32(1, s, 0, 1, 0);
    memcpy(labels->idata, labels_v, sizeof(int32_t) * labels->numel);
    free(labels_v);

    graph *g = graph_create(1 << 18, m->ps.count);
    attention_sink sink;
    attention_sink_clear(&sink);
    model_batch mb = {.B = ids->shape[0], .tokens = ids};
    tensor *logits = model_forward(m, g, &mb, &sink);
    tensor *loss = op_cross_entropy(g, logits, labels, 0.0f);
    const char *checks[3] = {"logits", "loss", "attn"};
    const attention_map *am = attention_sink_find(&sink, "attn");
    assert_non_null(am);
    assert_int_equal(am->kind, ATTENTION_ADDITIVE);
    const float *got[3] = {logits->data, loss->data, am->probs->data};
    int64_t got_n[3] = {logits->numel, 1, am->probs->numel};
    for (int c = 0; c < 3; c++) {
        snprintf(key, sizeof key, "%s/%s", name, checks[c]);
        float *want = tu_h5_read_f32(fixture(), key, &n, NULL, NULL);
        assert_int_equal(n, got_n[c]);
        tu_assert_close(key, got[c], want, n, 1e-5f, 1e-4f);
        free(want);
    }
    graph_backward(g, loss, 1.0f);
    for (int i = 0; i < m->ps.count; i++) {
        tensor *t = m->ps.tensors[i];
        snprintf(key, sizeof key, "%s/grad/%s", name, t->name);
        float *want = tu_h5_read_f32(fixture(), key, &n, NULL, NULL);
        assert_int_equal(n, t->numel);
        tu_assert_close(key, t->grad, want, n, 1e-5f, 1e-4f);
        free(want);
    }
    graph_free(g);
    tu_leaf_free(ids);
    tu_leaf_free(labels);
    model_free(m);
}

static void test_bilstm_matches_torch(void **state) {
    (void)state;
    check_model("bilstm");
}

static void test_bigru_matches_torch(void **state) {
    (void)state;
    check_model("bigru");
}

/* Bad options are refused with a message naming the option. */
static void test_bad_options(void **state) {
    (void)state;
    data_shape shape = {.num_classes = 3, .vocab_size = 10, .max_len = 8};
    model_config cfg = model_config_default();
    cfg.depth = 0;
    char err[256];
    assert_null(model_create("bilstm", &cfg, &shape, err, sizeof err));
    assert_non_null(strstr(err, "--depth"));
    cfg = model_config_default();
    cfg.embed_dim = -1;
    assert_null(model_create("bigru", &cfg, &shape, err, sizeof err));
    assert_non_null(strstr(err, "--embed-dim"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bilstm_matches_torch),
        cmocka_unit_test(test_bigru_matches_torch),
        cmocka_unit_test(test_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
