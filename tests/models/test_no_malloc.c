/* After the first step, a training step (forward, loss, backward, AdamW) of
 * each model does no malloc/calloc/realloc/free: heed's objects are linked
 * with --wrap so every allocator call from heed code lands in a counter.
 * (OpenBLAS's own internal buffers are outside heed and not counted.) */
#include "testutil.h"

#include "core/ops.h"
#include "core/optim.h"
#include "models/model.h"

#include <stdlib.h>
#include <string.h>

static long alloc_calls;

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t s);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
int __real_posix_memalign(void **p, size_t a, size_t n);

void *__wrap_malloc(size_t n) {
    alloc_calls++;
    return __real_malloc(n);
}
void *__wrap_calloc(size_t n, size_t s) {
    alloc_calls++;
    return __real_calloc(n, s);
}
void *__wrap_realloc(void *p, size_t n) {
    alloc_calls++;
    return __real_realloc(p, n);
}
void __wrap_free(void *p) {
    if (p)
        alloc_calls++;
    __real_free(p);
}
int __wrap_posix_memalign(void **p, size_t a, size_t n) {
    alloc_calls++;
    return __real_posix_memalign(p, a, n);
}

static void run_steps(const char *name, const data_shape *shape, tensor *images, tensor *tokens,
                      tensor *labels) {
    model_config cfg = model_config_default();
    cfg.dim = 32;
    cfg.heads = 2;
    cfg.depth = 2;
    cfg.dropout = 0.1f;
    cfg.augment = true; /* CNNs and ViT: random crops and flips (text models ignore it) */
    char err[256];
    model *m = model_create(name, &cfg, shape, err, sizeof err);
    assert_non_null(m);
    graph *g = graph_create(1 << 16, m->ps.count); /* small: the first step must grow it */
    graph_set_training(g, true);
    graph_set_lazy_grads(g, true); /* as heed train: gradients in the planned pool */
    adam_config ac = adam_config_default();
    adam_state st;
    adam_state_init(&st, 0, m->ps.numel);
    int64_t ids[4] = {0, 1, 2, 3};
    long before = 0;
    for (int step = 0; step < 4; step++) {
        if (step == 2)
            before = alloc_calls;
        params_zero_grad(&m->ps);
        graph_reset(g);
        graph_begin_step(g, 1, step, ids, 4);
        model_batch b = {.B = 4, .images = images, .tokens = tokens};
        tensor *loss = model_loss(m, g, &b, labels, 0.1f, NULL, NULL); /* MLM: its own loss */
        graph_backward(g, loss, 1.0f);
        adam_step(&ac, &st, &m->ps, m->ps.grad, 1e-3f, 1.0f);
    }
    long during = alloc_calls - before;
    if (during != 0)
        fail_msg("%s: %ld allocator calls in steps 2-3 (expected 0)", name, during);
    adam_state_free(&st);
    graph_free(g);
    model_free(m);
}

static void test_transformer_no_malloc(void **state) {
    data_shape shape = {.num_classes = 5, .vocab_size = 50, .max_len = 12, .pad_id = 0};
    tensor *tokens = tu_leaf_i32(2, (int[]){4, 12}, 1, 50, 3);
    tokens->idata[11] = 0;
    tensor *labels = tu_leaf_i32(1, (int[]){4}, 0, 5, 4);
    run_steps("transformer", &shape, NULL, tokens, labels);
    tu_leaf_free(tokens);
    tu_leaf_free(labels);
}

static void test_vit_no_malloc(void **state) {
    data_shape shape = {.num_classes = 10, .channels = 1, .height = 8, .width = 8};
    tensor *images = tu_leaf(4, (int[]){4, 1, 8, 8}, false, 1, 5);
    tensor *labels = tu_leaf_i32(1, (int[]){4}, 0, 10, 6);
    run_steps("vit", &shape, images, NULL, labels);
    tu_leaf_free(images);
    tu_leaf_free(labels);
}

/* Both recurrent classifiers, on a batch with padding (the packed-sequence
 * path) and dropout between layers. */
static void test_birnn_no_malloc(void **state) {
    data_shape shape = {.num_classes = 5, .vocab_size = 50, .max_len = 12, .pad_id = 0};
    tensor *tokens = tu_leaf_i32(2, (int[]){4, 12}, 1, 50, 7);
    for (int t = 6; t < 12; t++)
        tokens->idata[12 + t] = 0;
    tensor *labels = tu_leaf_i32(1, (int[]){4}, 0, 5, 8);
    run_steps("bilstm", &shape, NULL, tokens, labels);
    run_steps("bigru", &shape, NULL, tokens, labels);
    tu_leaf_free(tokens);
    tu_leaf_free(labels);
}

static void test_bert_no_malloc(void **state) {
    data_shape shape = {.num_classes = 5,
                        .vocab_size = 50,
                        .max_len = 12,
                        .pad_id = 0,
                        .cls_id = 2,
                        .sep_id = 3,
                        .mask_id = 4};
    tensor *tokens = tu_leaf_i32(2, (int[]){4, 12}, 5, 50, 7);
    for (int b = 0; b < 4; b++)
        tokens->idata[b * 12] = 2;
    tokens->idata[11] = 0;
    tensor *labels = tu_leaf_i32(1, (int[]){4}, 0, 5, 8);
    run_steps("bert", &shape, NULL, tokens, labels);
    run_steps("bert_mlm", &shape, NULL, tokens, labels);
    tu_leaf_free(tokens);
    tu_leaf_free(labels);
}

static void test_cnn_no_malloc(void **state) {
    data_shape shape = {.num_classes = 10, .channels = 1, .height = 8, .width = 8};
    tensor *images = tu_leaf(4, (int[]){4, 1, 8, 8}, false, 1, 5);
    tensor *labels = tu_leaf_i32(1, (int[]){4}, 0, 10, 6);
    run_steps("cbam_cnn", &shape, images, NULL, labels);
    run_steps("resnet20", &shape, images, NULL, labels);
    tu_leaf_free(images);
    tu_leaf_free(labels);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transformer_no_malloc), cmocka_unit_test(test_vit_no_malloc),
        cmocka_unit_test(test_birnn_no_malloc),       cmocka_unit_test(test_cnn_no_malloc),
        cmocka_unit_test(test_bert_no_malloc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
