/* The parameter buffer: layout, names, seeded initialisers, hashing; the
 * arena; the counter-based RNG. */
#include "testutil.h"

#include "core/arena.h"
#include "core/params.h"
#include "core/rng.h"

#include <math.h>
#include <string.h>

static void build(params *ps, uint64_t seed) {
    params_init(ps);
    params_push_scope(ps, "enc");
    params_push_scope(ps, "blocks.%d", 0);
    params_add(ps, "w", PARAM_INIT(INIT_NORMAL, 0.02f), 2, (int[]){64, 32});
    params_pop_scope(ps);
    params_add(ps, "b", PARAM_INIT(INIT_ZEROS, 0), 1, (int[]){5});
    params_pop_scope(ps);
    params_add(ps, "x", PARAM_INIT(INIT_XAVIER_UNIFORM, 1.0f), 2, (int[]){100, 50});
    params_add(ps, "t", PARAM_INIT(INIT_TRUNC_NORMAL, 1.0f), 1, (int[]){1000});
    params_add(ps, "k", PARAM_INIT(INIT_KAIMING_NORMAL, 0), 4, (int[]){8, 4, 3, 3});
    params_alloc(ps, seed);
}

static void test_layout_and_names(void **state) {
    params ps;
    build(&ps, 1);
    tensor *w = params_find(&ps, "enc.blocks.0.w");
    assert_non_null(w);
    assert_non_null(params_find(&ps, "enc.b"));
    assert_null(params_find(&ps, "w"));
    for (int i = 0; i < ps.count; i++) {
        tensor *t = ps.tensors[i];
        assert_int_equal(t->param, i);
        assert_ptr_equal(t->data, ps.data + ps.offset[i]);
        assert_ptr_equal(t->grad, ps.grad + ps.offset[i]);
        assert_int_equal(ps.offset[i] % 16, 0);
        if (i + 1 < ps.count)
            assert_true(ps.offset[i] + t->numel <= ps.offset[i + 1]);
    }
    assert_true(w->data - ps.data == 0);
    assert_true(ps.decay[0] && !ps.decay[1]);
    params_free(&ps);
}

static void test_init_statistics(void **state) {
    params ps;
    build(&ps, 7);
    tensor *w = params_find(&ps, "enc.blocks.0.w");
    double mean = 0, var = 0;
    for (int64_t i = 0; i < w->numel; i++)
        mean += w->data[i];
    mean /= w->numel;
    for (int64_t i = 0; i < w->numel; i++)
        var += (w->data[i] - mean) * (w->data[i] - mean);
    var /= w->numel;
    assert_true(fabs(mean) < 0.002);
    assert_true(fabs(sqrt(var) - 0.02) < 0.002);
    tensor *x = params_find(&ps, "x");
    float bound = sqrtf(6.0f / 150.0f);
    for (int64_t i = 0; i < x->numel; i++)
        assert_true(fabsf(x->data[i]) <= bound);
    tensor *t = params_find(&ps, "t");
    for (int64_t i = 0; i < t->numel; i++)
        assert_true(fabsf(t->data[i]) <= 2.0f);
    tensor *b = params_find(&ps, "enc.b");
    for (int64_t i = 0; i < b->numel; i++)
        assert_true(b->data[i] == 0.0f);
    params_free(&ps);
}

static void test_init_depends_on_seed_only(void **state) {
    params a, b, c;
    build(&a, 3);
    build(&b, 3);
    build(&c, 4);
    assert_memory_equal(a.data, b.data, sizeof(float) * a.numel);
    assert_true(params_hash(&a) == params_hash(&b));
    assert_true(params_hash(&a) != params_hash(&c));
    params_free(&a);
    params_free(&b);
    params_free(&c);
}

static void test_arena_reuse(void **state) {
    arena *a = arena_create(4096);
    for (int step = 0; step < 4; step++) {
        arena_reset(a);
        for (int i = 0; i < 100; i++) {
            float *p = arena_alloc(a, 1000);
            assert_int_equal((uintptr_t)p % 64, 0);
            p[0] = 1.0f;
        }
    }
    /* Spilled in step 0, merged at the next reset, then stable. */
    long blocks = arena_block_count(a);
    arena_reset(a);
    for (int i = 0; i < 100; i++)
        arena_alloc(a, 1000);
    assert_int_equal(arena_block_count(a), blocks);
    assert_true(arena_high_water(a) >= 100 * 1000);
    arena_free(a);
}

static void test_rng_uniform_range_and_mean(void **state) {
    uint64_t key = rng_key(42, 1, 2);
    double sum = 0;
    for (int i = 0; i < 100000; i++) {
        float u = rng_uniform(key, i);
        assert_true(u >= 0.0f && u < 1.0f);
        sum += u;
    }
    assert_true(fabs(sum / 100000 - 0.5) < 0.01);
    assert_true(rng_bits(key, 5) == rng_bits(key, 5));
    assert_true(rng_bits(key, 5) != rng_bits(key, 6));
    assert_true(rng_key(1, 2, 3) != rng_key(1, 3, 2));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_and_names),           cmocka_unit_test(test_init_statistics),
        cmocka_unit_test(test_init_depends_on_seed_only),  cmocka_unit_test(test_arena_reuse),
        cmocka_unit_test(test_rng_uniform_range_and_mean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
