/* The image+text fusion model (src/models/fusion.c) at tiny sizes:
 *   - every parameter's gradient (concat, xattn, xattn with the reverse
 *     direction, two blocks) against central differences of
 *     sum(logits * R), R fixed random, with padded text;
 *   - --freeze-image / --freeze-text: the frozen tower's gradients are zero
 *     and an AdamW step leaves its parameters bitwise unchanged, while the
 *     rest moves;
 *   - parameter names follow the single-modality models under image./text.;
 *   - the attention sink receives the towers' self-attention and the
 *     cross-attention maps with the right shapes, rows summing to 1 and no
 *     weight on padded text;
 *   - bad options are refused with a message naming the option. */
#include "testutil.h"

#include "core/check.h"
#include "core/ops.h"
#include "core/optim.h"
#include "models/attention_sink.h"
#include "models/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { B = 3, CH = 1, HW = 8, L = 6, V = 12, K = 5 };

static const data_shape shape = {.num_classes = K,
                                 .channels = CH,
                                 .height = HW,
                                 .width = HW,
                                 .vocab_size = V,
                                 .max_len = L,
                                 .pad_id = 0,
                                 .cls_id = 2};

static model_config tiny_config(const char *fusion_kind, int xdepth, bool reverse) {
    model_config cfg = model_config_default();
    cfg.dim = 8;
    cfg.heads = 2;
    cfg.depth = 1;
    cfg.ffn = 12;
    cfg.patch = 4;
    cfg.seed = 7;
    snprintf(cfg.fusion, sizeof cfg.fusion, "%s", fusion_kind);
    cfg.xattn_depth = xdepth;
    cfg.xattn_reverse = reverse;
    return cfg;
}

static model *make(const model_config *cfg) {
    char err[256];
    model *m = model_create("fusion", cfg, &shape, err, sizeof err);
    if (!m)
        fail_msg("model_create: %s", err);
    /* Larger than the default init, so every path carries a signal well
     * above float32 rounding in the differences. */
    for (int i = 0; i < m->ps.count; i++) {
        tensor *t = m->ps.tensors[i];
        for (int64_t j = 0; j < t->numel; j++)
            t->data[j] += 0.3f * sinf(1.7f * (float)(j + 13 * i));
    }
    return m;
}

typedef struct inputs {
    tensor *images, *tokens, *r;
} inputs;

static inputs make_inputs(void) {
    inputs in;
    in.images = tu_leaf(4, (int[]){B, CH, HW, HW}, false, 1.0f, 3);
    in.tokens = tu_leaf_i32(2, (int[]){B, L}, 5, V, 4);
    for (int b = 0; b < B; b++) {
        in.tokens->idata[b * L] = 2; /* [CLS] */
        for (int t = L - b; t < L; t++)
            in.tokens->idata[b * L + t] = 0; /* right padding of b tokens */
    }
    in.r = tu_leaf(2, (int[]){B, K}, false, 1.0f, 5);
    return in;
}

static void free_inputs(inputs *in) {
    tu_leaf_free(in->images);
    tu_leaf_free(in->tokens);
    tu_leaf_free(in->r);
}

static double objective(model *m, graph *g, const inputs *in, bool backward) {
    graph_reset(g);
    graph_set_grad(g, backward);
    model_batch mb = {.B = B, .images = in->images, .tokens = in->tokens};
    tensor *logits = model_forward(m, g, &mb, NULL);
    assert_int_equal(logits->shape[0], B);
    assert_int_equal(logits->shape[1], K);
    double s = 0;
    for (int64_t i = 0; i < logits->numel; i++)
        s += (double)logits->data[i] * in->r->data[i];
    if (backward) {
        assert_non_null(logits->grad);
        memcpy(logits->grad, in->r->data, sizeof(float) * logits->numel);
        graph_backward_tape(g);
    }
    graph_set_grad(g, true);
    return s;
}

/* Up to 4 elements of every parameter tensor. */
static void gradcheck(const model_config *cfg) {
    model *m = make(cfg);
    inputs in = make_inputs();
    graph *g = graph_create(1 << 20, m->ps.count);
    params_zero_grad(&m->ps);
    objective(m, g, &in, true);
    const float h = 3e-3f, atol = 2e-3f, rtol = 2e-2f;
    int bad = 0, checked = 0;
    for (int i = 0; i < m->ps.count; i++) {
        tensor *t = m->ps.tensors[i];
        int64_t stride = t->numel > 4 ? t->numel / 4 : 1;
        for (int64_t j = 0; j < t->numel; j += stride) {
            float saved = t->data[j];
            t->data[j] = saved + h;
            double fp = objective(m, g, &in, false);
            t->data[j] = saved - h;
            double fm = objective(m, g, &in, false);
            t->data[j] = saved;
            double numeric = (fp - fm) / (2.0 * h), analytic = t->grad[j];
            checked++;
            if (fabs(analytic - numeric) > atol + rtol * fabs(numeric)) {
                if (bad++ < 10)
                    print_error("%s fusion: %s[%lld]: analytic %.6g numeric %.6g\n", cfg->fusion,
                                t->name, (long long)j, analytic, numeric);
            }
        }
    }
    print_message("fusion %s depth %d reverse %d: %d parameters, %d elements checked\n",
                  cfg->fusion, cfg->xattn_depth, cfg->xattn_reverse, m->ps.count, checked);
    assert_int_equal(bad, 0);
    graph_free(g);
    free_inputs(&in);
    model_free(m);
}

static void test_gradcheck_concat(void **state) {
    (void)state;
    model_config cfg = tiny_config("concat", 1, false);
    gradcheck(&cfg);
}

static void test_gradcheck_xattn(void **state) {
    (void)state;
    model_config cfg = tiny_config("xattn", 1, false);
    gradcheck(&cfg);
}

static void test_gradcheck_xattn_reverse(void **state) {
    (void)state;
    model_config cfg = tiny_config("xattn", 2, true);
    gradcheck(&cfg);
}

static void test_names(void **state) {
    (void)state;
    model_config cfg = tiny_config("xattn", 1, true);
    model *m = make(&cfg);
    const char *want[] = {"image.patch_embed.weight",
                          "image.cls_token",
                          "image.pos_emb.weight",
                          "image.blocks.0.attn.q.weight",
                          "image.ln_f.weight",
                          "text.tok_emb.weight",
                          "text.pos_emb.weight",
                          "text.blocks.0.fc2.bias",
                          "text.ln_f.bias",
                          "xattn.0.attn.k.weight",
                          "xattn.0.ln_kv.weight",
                          "xattn_rev.0.attn.o.bias",
                          "xattn_ln.weight",
                          "head.fc1.weight",
                          "head.fc2.bias"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!params_find(&m->ps, want[i]))
            fail_msg("no parameter %s", want[i]);
    model_free(m);
    cfg = tiny_config("concat", 1, false);
    m = make(&cfg);
    assert_null(params_find(&m->ps, "xattn.0.attn.q.weight"));
    assert_non_null(params_find(&m->ps, "head.fc1.weight"));
    assert_int_equal(params_find(&m->ps, "head.fc1.weight")->shape[1], 2 * cfg.dim);
    model_free(m);
}

static void check_frozen(bool freeze_image, bool freeze_text) {
    model_config cfg = tiny_config("xattn", 1, true);
    cfg.freeze_image = freeze_image;
    cfg.freeze_text = freeze_text;
    model *m = make(&cfg);
    float *before = xmalloc(sizeof(float) * m->ps.numel);
    memcpy(before, m->ps.data, sizeof(float) * m->ps.numel);
    inputs in = make_inputs();
    tensor *labels = tu_leaf_i32(1, (int[]){B}, 0, K, 9);
    graph *g = graph_create(1 << 20, m->ps.count);
    graph_set_training(g, true);
    adam_config ac = adam_config_default();
    ac.weight_decay = 0.1f; /* decay must not touch frozen tensors either */
    adam_state st;
    adam_state_init(&st, 0, m->ps.numel);
    int frozen = 0, moved = 0;
    for (int step = 0; step < 2; step++) {
        graph_reset(g);
        params_zero_grad(&m->ps);
        model_batch mb = {.B = B, .images = in.images, .tokens = in.tokens};
        tensor *loss = op_cross_entropy(g, model_forward(m, g, &mb, NULL), labels, 0.0f);
        graph_backward(g, loss, 1.0f);
        for (int i = 0; i < m->ps.count; i++) {
            const tensor *t = m->ps.tensors[i];
            bool want = (freeze_image && !strncmp(t->name, "image.", 6)) ||
                        (freeze_text && !strncmp(t->name, "text.", 5));
            if (m->ps.frozen[i] != want)
                fail_msg("%s: frozen %d, expected %d", t->name, m->ps.frozen[i], want);
            if (want)
                for (int64_t j = 0; j < t->numel; j++)
                    if (t->grad[j] != 0.0f)
                        fail_msg("frozen %s has gradient %g at %lld", t->name, t->grad[j],
                                 (long long)j);
        }
        adam_step(&ac, &st, &m->ps, m->ps.grad, 1e-2f, 1.0f);
    }
    for (int i = 0; i < m->ps.count; i++) {
        const tensor *t = m->ps.tensors[i];
        bool same = !memcmp(t->data, before + m->ps.offset[i], sizeof(float) * t->numel);
        if (m->ps.frozen[i]) {
            frozen++;
            if (!same)
                fail_msg("frozen %s changed", t->name);
        } else {
            moved += !same;
        }
    }
    print_message("freeze image %d text %d: %d frozen tensors unchanged, %d others moved\n",
                  freeze_image, freeze_text, frozen, moved);
    assert_true(moved > 0);
    assert_true(frozen > 0 || (!freeze_image && !freeze_text));
    adam_state_free(&st);
    graph_free(g);
    tu_leaf_free(labels);
    free_inputs(&in);
    free(before);
    model_free(m);
}

static void test_freeze(void **state) {
    (void)state;
    check_frozen(true, false);
    check_frozen(false, true);
    check_frozen(true, true); /* only the fusion layers and the head train */
}

static void test_sink(void **state) {
    (void)state;
    model_config cfg = tiny_config("xattn", 1, true);
    model *m = make(&cfg);
    inputs in = make_inputs();
    graph *g = graph_create(1 << 20, m->ps.count);
    graph_set_grad(g, false);
    attention_sink sink;
    attention_sink_clear(&sink);
    model_batch mb = {.B = B, .images = in.images, .tokens = in.tokens};
    model_forward(m, g, &mb, &sink);
    int NP = (HW / 4) * (HW / 4);
    assert_int_equal(sink.input, ATTENTION_INPUT_PATCHES);
    assert_int_equal(sink.grid_h, HW / 4);
    assert_int_equal(sink.first_patch, 1);
    struct {
        const char *name;
        attention_kind kind;
        int T, S;
    } want[] = {{"image.blocks.0.attn", ATTENTION_SELF, NP + 1, NP + 1},
                {"text.blocks.0.attn", ATTENTION_SELF, L, L},
                {"xattn.0.attn", ATTENTION_CROSS, L, NP + 1},
                {"xattn_rev.0.attn", ATTENTION_CROSS, NP + 1, L}};
    assert_int_equal(sink.count, 4);
    assert_string_equal(sink.maps[0].name, want[0].name); /* image first: explain rolls it out */
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        const attention_map *am = attention_sink_find(&sink, want[k].name);
        if (!am)
            fail_msg("no map %s", want[k].name);
        assert_int_equal(am->kind, want[k].kind);
        const tensor *p = am->probs;
        assert_int_equal(p->ndim, 4);
        assert_int_equal(p->shape[0], B);
        assert_int_equal(p->shape[1], cfg.heads);
        assert_int_equal(p->shape[2], want[k].T);
        assert_int_equal(p->shape[3], want[k].S);
        for (int64_t row = 0; row < (int64_t)B * cfg.heads * want[k].T; row++) {
            const float *pr = p->data + row * want[k].S;
            int b = (int)(row / ((int64_t)cfg.heads * want[k].T));
            double sum = 0;
            for (int s = 0; s < want[k].S; s++) {
                sum += pr[s];
                bool text_keys = want[k].S == L && k != 0;
                if (text_keys && in.tokens->idata[b * L + s] == 0 && pr[s] != 0.0f)
                    fail_msg("%s: weight %g on padding", want[k].name, pr[s]);
            }
            assert_true(fabs(sum - 1.0) < 1e-5);
        }
    }
    graph_free(g);
    free_inputs(&in);
    model_free(m);
}

static void expect_refused(model_config cfg, const char *needle) {
    char err[256] = "";
    model *m = model_create("fusion", &cfg, &shape, err, sizeof err);
    assert_null(m);
    if (!strstr(err, needle))
        fail_msg("message '%s' does not name '%s'", err, needle);
}

static void test_bad_options(void **state) {
    (void)state;
    model_config cfg = tiny_config("mlp", 1, false);
    expect_refused(cfg, "--fusion");
    cfg = tiny_config("xattn", 0, false);
    expect_refused(cfg, "--xattn-depth");
    cfg = tiny_config("concat", 1, true);
    expect_refused(cfg, "--xattn-reverse");
    cfg = tiny_config("xattn", 1, false);
    snprintf(cfg.image_tower, sizeof cfg.image_tower, "transformer");
    expect_refused(cfg, "--image-tower");
    cfg = tiny_config("xattn", 1, false);
    snprintf(cfg.text_tower, sizeof cfg.text_tower, "lstm");
    expect_refused(cfg, "--text-tower");
    cfg = tiny_config("xattn", 1, false);
    cfg.patch = 3;
    expect_refused(cfg, "--patch");
    /* the data must have both modalities */
    data_shape text_only = shape;
    text_only.channels = 0;
    char err[256];
    cfg = tiny_config("xattn", 1, false);
    assert_null(model_create("fusion", &cfg, &text_only, err, sizeof err));
    assert_non_null(strstr(err, "needs images"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradcheck_concat),
        cmocka_unit_test(test_gradcheck_xattn),
        cmocka_unit_test(test_gradcheck_xattn_reverse),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_freeze),
        cmocka_unit_test(test_sink),
        cmocka_unit_test(test_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
