/* ViT with --augment: in training the images are cropped and flipped per
 * sample (keyed by seed, step and sample id, like the CNNs), so the logits
 * differ from the unaugmented model's and repeat for the same key; in
 * evaluation augmentation is off and the logits are the unaugmented ones. */
#include "testutil.h"

#include "core/ops.h"
#include "models/model.h"

#include <string.h>

static model *build(bool augment) {
    data_shape shape = {.num_classes = 10, .channels = 1, .height = 8, .width = 8};
    model_config cfg = model_config_default();
    cfg.dim = 16;
    cfg.heads = 2;
    cfg.depth = 1;
    cfg.patch = 4;
    cfg.augment = augment;
    cfg.crop_pad = 2;
    char err[256];
    model *m = model_create("vit", &cfg, &shape, err, sizeof err);
    if (!m)
        fail_msg("model_create: %s", err);
    return m;
}

/* Logits of `m` on `images` (4 samples) at `step`, copied into out[40]. */
static void logits_at(model *m, tensor *images, bool training, uint64_t step, float *out) {
    graph *g = graph_create(1 << 20, m->ps.count);
    graph_set_training(g, training);
    int64_t ids[4] = {10, 11, 12, 13};
    graph_begin_step(g, 7, step, ids, 4);
    model_batch b = {.B = 4, .images = images};
    tensor *logits = model_forward(m, g, &b, NULL);
    assert_int_equal(logits->numel, 40);
    memcpy(out, logits->data, sizeof(float) * 40);
    graph_free(g);
}

static bool same(const float *a, const float *b) {
    return memcmp(a, b, sizeof(float) * 40) == 0;
}

static void test_vit_augment_train_and_eval(void **state) {
    (void)state;
    tensor *images = tu_leaf(4, (int[]){4, 1, 8, 8}, false, 1, 21);
    model *plain = build(false), *aug = build(true);
    assert_int_equal(plain->ps.numel, aug->ps.numel);
    /* same initial parameters: both models are created with the same seed */
    for (int i = 0; i < plain->ps.count; i++)
        assert_memory_equal(plain->ps.tensors[i]->data, aug->ps.tensors[i]->data,
                            sizeof(float) * plain->ps.tensors[i]->numel);
    float p_train[40], a_train[40], a_again[40], a_next[40], p_eval[40], a_eval[40];
    logits_at(plain, images, true, 3, p_train);
    logits_at(aug, images, true, 3, a_train);
    logits_at(aug, images, true, 3, a_again);
    logits_at(aug, images, true, 4, a_next);
    logits_at(plain, images, false, 3, p_eval);
    logits_at(aug, images, false, 3, a_eval);
    assert_false(same(p_train, a_train)); /* augmentation applied in training */
    assert_true(same(a_train, a_again));  /* keyed: the same draw again */
    assert_false(same(a_train, a_next));  /* another step, other crops */
    assert_true(same(p_eval, a_eval));    /* evaluation sees the plain images */
    assert_true(same(p_train, p_eval));   /* no dropout: training = eval without it */
    model_free(plain);
    model_free(aug);
    tu_leaf_free(images);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vit_augment_train_and_eval),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
