/* BERT's masked-language-model objective (bert_mlm): the 15% / 80-10-10
 * corruption rule and its keying by (key, sample id); the loss equals the
 * per-sample mean cross-entropy recomputed from the MLM head's logits on
 * the corrupted ids; splitting a batch into micro-batches gives the same
 * mean; the gradients of the loss (tied decoder included) match finite
 * differences. Sizes from tests/fixtures/bert_ref.h5 (random weights). */
#include "testutil.h"

#include "core/ops.h"
#include "core/rng.h"
#include "models/bert.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { PAD = 0, CLS = 3, SEP = 4, MASK = 5 };

static void test_corrupt_rates(void **state) {
    enum { T = 20000, V = 1000 };
    int32_t *ids = malloc(sizeof(int32_t) * T), *out = malloc(sizeof(int32_t) * T),
            *tgt = malloc(sizeof(int32_t) * T), *again = malloc(sizeof(int32_t) * T),
            *tgt2 = malloc(sizeof(int32_t) * T);
    for (int t = 0; t < T; t++)
        ids[t] = t % 10 == 0 ? CLS : t % 10 == 1 ? SEP : t % 10 == 2 ? PAD : 6 + t % (V - 6);
    int chosen = bert_mlm_corrupt(rng_key(1, 2, 3), 77, ids, T, V, PAD, CLS, SEP, MASK, out, tgt);
    int eligible = 0, masked = 0, random = 0, kept = 0, counted = 0;
    for (int t = 0; t < T; t++) {
        bool special = ids[t] == PAD || ids[t] == CLS || ids[t] == SEP;
        eligible += !special;
        if (special) {
            assert_int_equal(tgt[t], -1);
            assert_int_equal(out[t], ids[t]);
            continue;
        }
        assert_true(out[t] != PAD);
        if (tgt[t] < 0) {
            assert_int_equal(out[t], ids[t]);
            continue;
        }
        counted++;
        assert_int_equal(tgt[t], ids[t]);
        masked += out[t] == MASK;
        kept += out[t] == ids[t];
        random += out[t] != MASK && out[t] != ids[t];
    }
    assert_int_equal(chosen, counted);
    double p = (double)chosen / eligible;
    assert_true(p > 0.14 && p < 0.16);
    assert_true(fabs((double)masked / chosen - 0.8) < 0.03);
    assert_true(fabs((double)random / chosen - 0.1) < 0.02);
    assert_true(fabs((double)kept / chosen - 0.1) < 0.02);
    /* a pure function of (key, sample id): same again, another sample differs */
    bert_mlm_corrupt(rng_key(1, 2, 3), 77, ids, T, V, PAD, CLS, SEP, MASK, again, tgt2);
    assert_memory_equal(out, again, sizeof(int32_t) * T);
    assert_memory_equal(tgt, tgt2, sizeof(int32_t) * T);
    bert_mlm_corrupt(rng_key(1, 2, 3), 78, ids, T, V, PAD, CLS, SEP, MASK, again, tgt2);
    assert_true(memcmp(tgt, tgt2, sizeof(int32_t) * T) != 0);
    /* a short sequence still gets one prediction; only specials get none */
    int32_t two[3] = {CLS, 9, PAD}, o3[3], t3[3];
    for (int64_t s = 0; s < 50; s++)
        assert_int_equal(bert_mlm_corrupt(5, s, two, 3, V, PAD, CLS, SEP, MASK, o3, t3), 1);
    int32_t none[2] = {CLS, PAD};
    assert_int_equal(bert_mlm_corrupt(5, 0, none, 2, V, PAD, CLS, SEP, MASK, o3, t3), 0);
    free(ids);
    free(out);
    free(tgt);
    free(again);
    free(tgt2);
}

static const char *ref(void) {
    return tu_fixture("bert_ref.h5");
}

static int attr_int(const char *name) {
    return (int)tu_h5_attr(ref(), name, -1);
}

static model *build(void) {
    data_shape shape = {.num_classes = attr_int("K"),
                        .vocab_size = attr_int("V"),
                        .max_len = attr_int("L"),
                        .pad_id = attr_int("pad_id"),
                        .cls_id = attr_int("cls_id"),
                        .sep_id = attr_int("sep_id"),
                        .mask_id = attr_int("mask_id")};
    model_config cfg = model_config_default();
    cfg.dim = attr_int("C");
    cfg.depth = attr_int("depth");
    cfg.heads = attr_int("NH");
    cfg.ffn = attr_int("FFN");
    cfg.seed = 3;
    char err[256];
    model *m = model_create("bert_mlm", &cfg, &shape, err, sizeof err);
    if (!m)
        fail_msg("%s", err);
    /* BERT's N(0, 0.02) init gives near-uniform predictions; larger
     * weights make the check see real curvature. */
    for (int i = 0; i < m->ps.count; i++) {
        tensor *t = m->ps.tensors[i];
        for (int64_t k = 0; k < t->numel; k++)
            t->data[k] += 0.3f * (2.0f * rng_uniform(rng_key(9, i, 0), k) - 1.0f);
    }
    return m;
}

static tensor *load_ids(const char *name) {
    int shape[4], nd;
    int64_t n;
    int32_t *v = tu_h5_read_i32(ref(), name, &n, &nd, shape);
    tensor *t = tu_leaf_i32(nd, shape, 0, 1, 0);
    memcpy(t->idata, v, sizeof(int32_t) * n);
    free(v);
    return t;
}

/* Rows [r0, r0 + n) of ids as a view. */
static tensor rows(const tensor *ids, int r0, int n) {
    tensor v = *ids;
    v.shape[0] = n;
    v.numel = (int64_t)n * ids->shape[1];
    v.idata = ids->idata + (int64_t)r0 * ids->shape[1];
    return v;
}

static const int64_t SAMPLE_IDS[3] = {40, 41, 42};

static double mlm_loss_of(model *m, graph *g, tensor *ids, tensor *seg, int r0, int n,
                          model_loss_stats *st) {
    graph_reset(g);
    graph_begin_step(g, 11, 5, SAMPLE_IDS + r0, n);
    tensor v = rows(ids, r0, n), s = rows(seg, r0, n);
    model_batch mb = {.B = n, .tokens = &v, .segments = &s};
    return model_loss(m, g, &mb, NULL, 0.0f, NULL, st)->data[0];
}

static void test_loss_matches_logits_and_splits(void **state) {
    model *m = build();
    tensor *ids = load_ids("ids"), *seg = load_ids("segments");
    int B = ids->shape[0], T = ids->shape[1], V = m->shape.vocab_size;
    graph *g = graph_create(1 << 20, m->ps.count);
    graph_set_grad(g, false);
    model_loss_stats st = {0};
    double loss = mlm_loss_of(m, g, ids, seg, 0, B, &st);
    assert_true(st.count >= B);

    /* the same key the loss drew: the first stream after begin_step */
    graph_reset(g);
    graph_begin_step(g, 11, 5, SAMPLE_IDS, B);
    uint64_t key = graph_rng_stream(g);
    tensor *in = tu_leaf_i32(2, ids->shape, 0, 1, 0);
    int32_t *tgt = malloc(sizeof(int32_t) * B * T);
    for (int b = 0; b < B; b++)
        bert_mlm_corrupt(key, SAMPLE_IDS[b], ids->idata + b * T, T, V, PAD, CLS, SEP, MASK,
                         in->idata + b * T, tgt + b * T);
    model_batch mb = {.B = B, .tokens = in, .segments = seg};
    tensor *logits = model_forward(m, g, &mb, NULL); /* (B, T, V) */
    double want = 0;
    int64_t count = 0;
    for (int b = 0; b < B; b++) {
        double sum = 0;
        int k = 0;
        for (int t = 0; t < T; t++) {
            int y = tgt[b * T + t];
            if (y < 0)
                continue;
            const float *row = logits->data + ((int64_t)b * T + t) * V;
            double mx = row[0], z = 0;
            for (int v = 1; v < V; v++)
                mx = row[v] > mx ? row[v] : mx;
            for (int v = 0; v < V; v++)
                z += exp(row[v] - mx);
            sum += -(row[y] - mx - log(z));
            k++;
        }
        want += sum / k / B;
        count += k;
    }
    assert_int_equal(count, st.count);
    assert_true(fabs(loss - want) < 1e-5 + 1e-5 * fabs(want));

    /* micro-batches {0} and {1, 2}: the n-weighted mean is the same loss */
    double l0 = mlm_loss_of(m, g, ids, seg, 0, 1, NULL);
    double l12 = mlm_loss_of(m, g, ids, seg, 1, 2, NULL);
    assert_true(fabs((l0 + 2 * l12) / 3 - loss) < 1e-5 * (1 + fabs(loss)));

    free(tgt);
    tu_leaf_free(in);
    graph_free(g);
    tu_leaf_free(ids);
    tu_leaf_free(seg);
    model_free(m);
}

typedef struct gc_user {
    model *m;
    tensor *ids, *seg;
} gc_user;

static tensor *gc_forward(graph *g, tensor **inputs, void *user) {
    gc_user *u = user;
    graph_begin_step(g, 11, 5, SAMPLE_IDS, 3);
    model_batch mb = {.B = 3, .tokens = u->ids, .segments = u->seg};
    return model_loss(u->m, g, &mb, NULL, 0.0f, NULL, NULL);
}

static void test_gradients_finite_differences(void **state) {
    model *m = build();
    gc_user u = {m, load_ids("ids"), load_ids("segments")};
    const char *names[] = {"tok_emb.weight", "mlm.dense.weight",    "mlm.bias",
                           "mlm.ln.weight",  "blocks.1.fc2.weight", "seg_emb.weight",
                           "pos_emb.weight"};
    enum { N = sizeof names / sizeof names[0] };
    tensor *in[N];
    for (int i = 0; i < N; i++) {
        in[i] = params_find(&m->ps, names[i]);
        assert_non_null(in[i]);
    }
    tu_gradcheck("bert_mlm loss", gc_forward, &u, N, in, 2e-3f, 2e-4f, 2e-2f, 24);
    tu_leaf_free(u.ids);
    tu_leaf_free(u.seg);
    model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corrupt_rates),
        cmocka_unit_test(test_loss_matches_logits_and_splits),
        cmocka_unit_test(test_gradients_finite_differences),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
