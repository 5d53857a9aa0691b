/* Classifiers that read [CLS] alone run their last encoder block at [CLS]
 * only (encoder_block_forward_token). Handing the model an attention sink
 * turns that off (the sink wants every token's maps), so the two paths can
 * be compared on one model: for bert, vit, transformer and concat fusion
 * with [CLS] pooling, at depth 1 and 2, with padded text and dropout 0.1
 * in training mode (dropout masks are keyed by token coordinates, so [CLS]
 * draws the same mask on both paths),
 *   - the logits and every parameter gradient of sum(logits * R) agree to
 *     float rounding;
 *   - the path without a sink uses less graph memory (it did skip work);
 * and with mean pooling nothing is skipped: both use the same memory. */
#include "testutil.h"

#include "core/arena.h"
#include "core/ops.h"
#include "models/attention_sink.h"
#include "models/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { B = 3, CH = 1, HW = 8, L = 7, V = 13, K = 4 };

static const data_shape shape = {.num_classes = K,
                                 .channels = CH,
                                 .height = HW,
                                 .width = HW,
                                 .vocab_size = V,
                                 .max_len = L,
                                 .pad_id = 0,
                                 .cls_id = 2,
                                 .sep_id = 3,
                                 .mask_id = 4};

typedef struct run_out {
    float *logits, *grads;
    size_t arena_bytes;
} run_out;

static run_out run(model *m, graph *g, bool with_sink) {
    tensor *images = tu_leaf(4, (int[]){B, CH, HW, HW}, false, 1.0f, 3);
    tensor *tokens = tu_leaf_i32(2, (int[]){B, L}, 5, V, 4);
    for (int b = 0; b < B; b++) {
        tokens->idata[b * L] = 2; /* [CLS] */
        for (int t = L - 2 * b; t < L; t++)
            tokens->idata[b * L + t] = 0; /* right padding of 2b tokens */
    }
    tensor *r = tu_leaf(2, (int[]){B, K}, false, 1.0f, 5);
    attention_sink sink;
    attention_sink_clear(&sink);
    params_zero_grad(&m->ps);
    graph_reset(g);
    graph_begin_step(g, 5, 1, (int64_t[]){40, 41, 42}, B);
    model_batch mb = {.B = B, .images = images, .tokens = tokens};
    tensor *logits = model_forward(m, g, &mb, with_sink ? &sink : NULL);
    assert_int_equal(logits->numel, B * K);
    assert_non_null(logits->grad);
    memcpy(logits->grad, r->data, sizeof(float) * logits->numel);
    graph_backward_tape(g);
    run_out out = {.logits = malloc(sizeof(float) * B * K),
                   .grads = malloc(sizeof(float) * m->ps.numel),
                   .arena_bytes = arena_used(graph_arena(g))};
    memcpy(out.logits, logits->data, sizeof(float) * B * K);
    memcpy(out.grads, m->ps.grad, sizeof(float) * m->ps.numel);
    tu_leaf_free(images);
    tu_leaf_free(tokens);
    tu_leaf_free(r);
    return out;
}

static void compare(const char *name, const char *pool, int depth) {
    model_config cfg = model_config_default();
    cfg.dim = 8;
    cfg.heads = 2;
    cfg.depth = depth;
    cfg.ffn = 12;
    cfg.patch = 4;
    cfg.seed = 11;
    cfg.dropout = 0.1f;
    snprintf(cfg.pool, sizeof cfg.pool, "%s", pool);
    snprintf(cfg.fusion, sizeof cfg.fusion, "concat");
    char err[256];
    model *m = model_create(name, &cfg, &shape, err, sizeof err);
    if (!m)
        fail_msg("%s: %s", name, err);
    /* Larger than the init, so that every path carries a signal. */
    for (int i = 0; i < m->ps.count; i++) {
        tensor *t = m->ps.tensors[i];
        for (int64_t j = 0; j < t->numel; j++)
            t->data[j] += 0.3f * sinf(1.3f * (float)(j + 7 * i));
    }
    graph *g = graph_create(1 << 20, m->ps.count);
    graph_set_training(g, true);
    run_out full = run(m, g, true), cls = run(m, g, false);
    char what[128];
    snprintf(what, sizeof what, "%s pool %s depth %d logits", name, pool, depth);
    tu_assert_close(what, cls.logits, full.logits, B * K, 1e-5f, 1e-4f);
    for (int i = 0; i < m->ps.count; i++) {
        const tensor *t = m->ps.tensors[i];
        int64_t off = t->data - m->ps.data;
        snprintf(what, sizeof what, "%s pool %s depth %d grad %s", name, pool, depth, t->name);
        tu_assert_close(what, cls.grads + off, full.grads + off, t->numel, 1e-5f, 1e-4f);
    }
    print_message("%s pool %s depth %d: graph memory %zu bytes with a sink, %zu without\n", name,
                  pool, depth, full.arena_bytes, cls.arena_bytes);
    if (strcmp(pool, "cls") == 0)
        assert_true(cls.arena_bytes < full.arena_bytes);
    else
        assert_true(cls.arena_bytes == full.arena_bytes);
    free(full.logits);
    free(full.grads);
    free(cls.logits);
    free(cls.grads);
    graph_free(g);
    model_free(m);
}

/* [CLS] pooling at depth 1 and 2, and mean pooling (nothing skipped). */
static void compare_model(const char *name) {
    compare(name, "cls", 1);
    compare(name, "cls", 2);
    compare(name, "mean", 2);
}

static void test_bert(void **state) {
    (void)state;
    compare_model("bert");
}

static void test_vit(void **state) {
    (void)state;
    compare_model("vit");
}

static void test_transformer(void **state) {
    (void)state;
    compare_model("transformer");
}

static void test_fusion_concat(void **state) {
    (void)state;
    compare_model("fusion");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bert),
        cmocka_unit_test(test_vit),
        cmocka_unit_test(test_transformer),
        cmocka_unit_test(test_fusion_concat),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
