/* Adam/AdamW against hand-computed values, range updates (ZeRO shards),
 * clipping and schedules. */
#include "testutil.h"

#include "core/optim.h"

#include <math.h>
#include <string.h>

static void build(params *ps) {
    params_init(ps);
    params_add(ps, "w", PARAM_INIT(INIT_CONSTANT, 1.0f), 2, (int[]){2, 3});
    params_add(ps, "b", PARAM_INIT(INIT_CONSTANT, 0.5f), 1, (int[]){3});
    params_alloc(ps, 1);
}

static void test_adamw_first_step(void **state) {
    params ps;
    build(&ps);
    for (int64_t i = 0; i < ps.numel; i++)
        ps.grad[i] = 0.1f;
    adam_config cfg = adam_config_default();
    cfg.weight_decay = 0.1f;
    adam_state s;
    adam_state_init(&s, 0, ps.numel);
    adam_step(&cfg, &s, &ps, ps.grad, 0.01f, 1.0f);
    /* First step: m_hat = g, v_hat = g^2, so p -= lr * g/(|g| + eps) = lr;
     * AdamW also multiplies matrices by (1 - lr*wd) first. */
    tensor *w = params_find(&ps, "w"), *b = params_find(&ps, "b");
    float want_w = 1.0f * (1.0f - 0.01f * 0.1f) - 0.01f * (0.1f / (0.1f + 1e-8f));
    float want_b = 0.5f - 0.01f * (0.1f / (0.1f + 1e-8f));
    for (int i = 0; i < 6; i++)
        assert_true(fabsf(w->data[i] - want_w) < 1e-7f);
    for (int i = 0; i < 3; i++)
        assert_true(fabsf(b->data[i] - want_b) < 1e-7f);
    adam_state_free(&s);
    params_free(&ps);
}

static void test_adam_shards_equal_whole(void **state) {
    /* Updating [0, n) at once equals updating two shards separately. */
    params a, b;
    build(&a);
    build(&b);
    for (int64_t i = 0; i < a.numel; i++)
        a.grad[i] = b.grad[i] = 0.01f * (float)(i % 7) - 0.03f;
    adam_config cfg = adam_config_default();
    cfg.weight_decay = 0.05f;
    adam_state whole, s1, s2;
    int64_t mid = 5;
    adam_state_init(&whole, 0, a.numel);
    adam_state_init(&s1, 0, mid);
    adam_state_init(&s2, mid, b.numel);
    for (int step = 0; step < 3; step++) {
        adam_step(&cfg, &whole, &a, a.grad, 1e-2f, 0.5f);
        adam_step(&cfg, &s1, &b, b.grad, 1e-2f, 0.5f);
        adam_step(&cfg, &s2, &b, b.grad + mid, 1e-2f, 0.5f);
    }
    assert_memory_equal(a.data, b.data, sizeof(float) * a.numel);
    adam_state_free(&whole);
    adam_state_free(&s1);
    adam_state_free(&s2);
    params_free(&a);
    params_free(&b);
}

static void test_frozen_skipped(void **state) {
    params ps;
    build(&ps);
    ps.frozen[0] = true;
    for (int64_t i = 0; i < ps.numel; i++)
        ps.grad[i] = 1.0f;
    adam_config cfg = adam_config_default();
    adam_state s;
    adam_state_init(&s, 0, ps.numel);
    adam_step(&cfg, &s, &ps, ps.grad, 0.1f, 1.0f);
    assert_true(params_find(&ps, "w")->data[0] == 1.0f);
    assert_true(params_find(&ps, "b")->data[0] != 0.5f);
    adam_state_free(&s);
    params_free(&ps);
}

static void test_clip_scale(void **state) {
    float g[4] = {3, 4, 0, 0};
    double norm = sqrt(sum_squares(g, 4));
    assert_true(fabs(norm - 5.0) < 1e-12);
    assert_true(fabsf(clip_scale(norm, 1.0f) - 0.2f) < 1e-6f);
    assert_true(clip_scale(norm, 10.0f) == 1.0f);
    assert_true(clip_scale(norm, 0.0f) == 1.0f);
}

static void test_schedules(void **state) {
    assert_true(fabsf(lr_at(LR_CONSTANT, 1.0f, 0, 4, 100) - 0.25f) < 1e-7f);
    assert_true(fabsf(lr_at(LR_CONSTANT, 1.0f, 3, 4, 100) - 1.0f) < 1e-7f);
    assert_true(fabsf(lr_at(LR_CONSTANT, 1.0f, 50, 4, 100) - 1.0f) < 1e-7f);
    assert_true(fabsf(lr_at(LR_COSINE, 1.0f, 4, 4, 104) - 1.0f) < 1e-6f);
    assert_true(fabsf(lr_at(LR_COSINE, 1.0f, 54, 4, 104) - 0.5f) < 1e-6f);
    assert_true(fabsf(lr_at(LR_COSINE, 1.0f, 104, 4, 104)) < 1e-6f);
    assert_true(fabsf(lr_at(LR_LINEAR, 2.0f, 54, 4, 104) - 1.0f) < 1e-6f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adamw_first_step), cmocka_unit_test(test_adam_shards_equal_whole),
        cmocka_unit_test(test_frozen_skipped),   cmocka_unit_test(test_clip_scale),
        cmocka_unit_test(test_schedules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
