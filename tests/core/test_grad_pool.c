/* grad_pool_plan: spans live at one tape entry never share bytes, spans
 * that never meet do share them, offsets are 64-byte aligned, and the pool
 * is no larger than the largest set of spans live at once could need when
 * they nest (a stack-like backward). Checked on fixed cases and on random
 * spans against a brute-force overlap check. */
#include "testutil.h"

#include "core/grad_pool.h"
#include "core/rng.h"

static size_t padded(size_t b) {
    size_t p = (b + 63) & ~(size_t)63;
    return p ? p : 64;
}

static void assert_no_live_overlap(const grad_span *s, int n, size_t pool) {
    for (int i = 0; i < n; i++) {
        assert_int_equal(s[i].offset % 64, 0);
        assert_true(s[i].offset + padded(s[i].bytes) <= pool);
        for (int j = i + 1; j < n; j++) {
            bool live_together = s[i].lo <= s[j].hi && s[j].lo <= s[i].hi;
            bool share = s[i].offset < s[j].offset + padded(s[j].bytes) &&
                         s[j].offset < s[i].offset + padded(s[i].bytes);
            if (live_together && share)
                fail_msg("spans %d [%d, %d] and %d [%d, %d] share bytes", i, s[i].lo, s[i].hi, j,
                         s[j].lo, s[j].hi);
        }
    }
}

static void test_disjoint_spans_share(void **state) {
    arena *a = arena_create(1 << 12);
    /* A chain: each gradient is written at entry k and read at entry k - 1. */
    grad_span s[6];
    for (int i = 0; i < 6; i++)
        s[i] = (grad_span){1000, 9 - 2 * i, 10 - 2 * i, 0};
    size_t pool = grad_pool_plan(s, 6, a);
    assert_no_live_overlap(s, 6, pool);
    assert_int_equal(pool, padded(1000)); /* one buffer serves them all */
    arena_free(a);
}

static void test_nested_spans_stack(void **state) {
    arena *a = arena_create(1 << 12);
    /* A residual stream: one long span around short ones. */
    grad_span s[4] = {{4096, 0, 20, 0}, {256, 15, 18, 0}, {256, 10, 14, 0}, {100, 12, 13, 0}};
    size_t pool = grad_pool_plan(s, 4, a);
    assert_no_live_overlap(s, 4, pool);
    assert_int_equal(pool, 4096 + 256 + 128);
    arena_free(a);
}

static void test_random_spans(void **state) {
    arena *a = arena_create(1 << 16);
    uint64_t key = rng_key(5, 0, 0), k = 0;
    for (int round = 0; round < 200; round++) {
        grad_span s[40];
        int n = 1 + (int)((uint32_t)rng_bits(key, k++) % 40);
        size_t total = 0;
        for (int i = 0; i < n; i++) {
            int lo = (int)((uint32_t)rng_bits(key, k++) % 50),
                len = (int)((uint32_t)rng_bits(key, k++) % 12);
            s[i] = (grad_span){(uint32_t)rng_bits(key, k++) % 5000, lo, lo + len, 0};
            total += padded(s[i].bytes);
        }
        size_t pool = grad_pool_plan(s, n, a);
        assert_no_live_overlap(s, n, pool);
        assert_true(pool <= total);
        arena_reset(a);
    }
    arena_free(a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_disjoint_spans_share),
        cmocka_unit_test(test_nested_spans_stack),
        cmocka_unit_test(test_random_spans),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
