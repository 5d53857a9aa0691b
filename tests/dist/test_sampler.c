/* The sampler without MPI: permutations, the split rule, independence of
 * the rank count (ranks simulated by one sampler per rank), drop_last,
 * cursors, length bucketing and bad options. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "dist/sampler.h"

static void init_ok(sampler *s, int64_t n, const sampler_options *o, int rank, int size) {
    char err[256] = "";
    if (sampler_init(s, n, o, rank, size, err, sizeof err) != 0)
        fail_msg("sampler_init: %s", err);
}

static void assert_permutation(const int64_t *a, int64_t n) {
    char *seen = calloc((size_t)n, 1);
    for (int64_t i = 0; i < n; i++) {
        assert_true(a[i] >= 0 && a[i] < n);
        assert_false(seen[a[i]]);
        seen[a[i]] = 1;
    }
    free(seen);
}

static void test_split_range(void **state) {
    for (int64_t n = 0; n < 40; n++)
        for (int p = 1; p <= 7; p++) {
            int64_t prev = 0;
            for (int r = 0; r < p; r++) {
                int64_t b, e;
                sampler_split_range(n, p, r, &b, &e);
                assert_int_equal(b, prev);
                assert_int_equal(e - b, n / p + (r < n % p ? 1 : 0));
                prev = e;
            }
            assert_int_equal(prev, n);
        }
}

static void test_epoch_is_permutation(void **state) {
    const int64_t n = 1001;
    sampler_options o = {.seed = 42, .batch_size = 32, .shuffle = true};
    sampler s, t;
    init_ok(&s, n, &o, 0, 1);
    o.seed = 43;
    init_ok(&t, n, &o, 0, 1);
    int64_t *a = malloc(sizeof(int64_t) * n), *b = malloc(sizeof(int64_t) * n);
    for (int e = 0; e < 3; e++) {
        for (int64_t i = 0; i < n; i++)
            a[i] = sampler_index(&s, e, i);
        assert_permutation(a, n);
        int64_t same = 0, fixed = 0;
        for (int64_t i = 0; i < n; i++) {
            b[i] = sampler_index(&s, e + 1, i);
            same += a[i] == b[i];
            fixed += a[i] == i;
        }
        /* Another epoch is another permutation; a shuffle fixes ~1 point. */
        assert_true(same < 10);
        assert_true(fixed < 10);
        /* Another seed, too. */
        int64_t other = 0;
        for (int64_t i = 0; i < n; i++)
            other += sampler_index(&t, e, i) == a[i];
        assert_true(other < 10);
        /* Random access into an older epoch recomputes it exactly. */
        assert_int_equal(sampler_index(&s, e, 500), a[500]);
    }
    free(a);
    free(b);
    sampler_free(&s);
    sampler_free(&t);
}

static void test_no_shuffle_is_identity(void **state) {
    sampler_options o = {.seed = 1, .batch_size = 4};
    sampler s;
    init_ok(&s, 10, &o, 0, 1);
    for (int64_t i = 0; i < 10; i++)
        assert_int_equal(sampler_index(&s, 3, i), i);
    sampler_free(&s);
}

/* Position 0 of many epochs should hit each of 8 samples about equally. */
static void test_shuffle_uniform(void **state) {
    sampler_options o = {.seed = 7, .batch_size = 1, .shuffle = true};
    sampler s;
    init_ok(&s, 8, &o, 0, 1);
    int hist[8] = {0};
    for (int e = 0; e < 8000; e++)
        hist[sampler_index(&s, e, 0)]++;
    double chi2 = 0;
    for (int i = 0; i < 8; i++)
        chi2 += (hist[i] - 1000.0) * (hist[i] - 1000.0) / 1000.0;
    assert_true(chi2 < 30.0); /* 7 dof: p < 1e-4 */
    sampler_free(&s);
}

/* Runs `steps` global batches from `c` on p simulated ranks and returns the
 * concatenation in rank order, i.e. the global order. */
static int64_t run_ranks(const sampler_options *o, int64_t n, int p, sampler_cursor c, int steps,
                         int64_t *out, int64_t *sizes) {
    sampler *s = calloc((size_t)p, sizeof(sampler));
    for (int r = 0; r < p; r++)
        init_ok(&s[r], n, o, r, p);
    int64_t *ids = malloc(sizeof(int64_t) * (size_t)sampler_max_local(&s[0]));
    int64_t at = 0;
    for (int k = 0; k < steps; k++) {
        sampler_cursor next = c;
        int64_t total = 0;
        for (int r = 0; r < p; r++) {
            sampler_cursor cr = c;
            int64_t gn;
            int got = sampler_next(&s[r], &cr, ids, &gn);
            int64_t b, e;
            sampler_split_range(gn, p, r, &b, &e);
            assert_int_equal(got, e - b);
            assert_true(got <= sampler_max_local(&s[r]));
            memcpy(out + at, ids, sizeof(int64_t) * (size_t)got);
            at += got;
            total += got;
            if (r > 0)
                assert_true(cr.epoch == next.epoch && cr.position == next.position);
            next = cr;
        }
        sizes[k] = total;
        c = next;
    }
    free(ids);
    for (int r = 0; r < p; r++)
        sampler_free(&s[r]);
    free(s);
    return at;
}

static void test_order_independent_of_ranks(void **state) {
    const int64_t n = 103;
    for (int drop = 0; drop < 2; drop++) {
        sampler_options o = {.seed = 9, .batch_size = 10, .shuffle = true, .drop_last = drop};
        int steps = 25; /* 2.5 epochs */
        int64_t ref[400], got[400], rsz[25], gsz[25];
        int64_t nref = run_ranks(&o, n, 1, (sampler_cursor){0, 0}, steps, ref, rsz);
        for (int p = 2; p <= 13; p++) {
            int64_t ngot = run_ranks(&o, n, p, (sampler_cursor){0, 0}, steps, got, gsz);
            assert_int_equal(ngot, nref);
            assert_memory_equal(got, ref, sizeof(int64_t) * (size_t)nref);
            assert_memory_equal(gsz, rsz, sizeof rsz);
        }
        /* Epoch 0 is 11 steps (the last of 3) or 10 with drop_last; its
         * samples are distinct, all 103 of them without drop_last. */
        assert_int_equal(rsz[drop ? 9 : 10], drop ? 10 : 3);
        if (!drop)
            assert_permutation(ref, n);
        char seen[103] = {0};
        for (int i = 0; i < (drop ? 100 : 103); i++)
            assert_false(seen[ref[i]]++);
    }
}

static void test_drop_last_counts(void **state) {
    sampler_options o = {.seed = 3, .batch_size = 10, .shuffle = true, .drop_last = true};
    sampler s;
    init_ok(&s, 103, &o, 0, 1);
    assert_int_equal(s.epoch_len, 100);
    assert_int_equal(sampler_steps_per_epoch(&s), 10);
    sampler_cursor c = {0, 0};
    int64_t ids[10], gn, seen[103] = {0};
    for (int k = 0; k < 10; k++) {
        assert_int_equal(sampler_next(&s, &c, ids, &gn), 10);
        for (int i = 0; i < 10; i++)
            seen[ids[i]]++;
    }
    assert_int_equal(c.epoch, 1);
    assert_int_equal(c.position, 0);
    int64_t once = 0;
    for (int i = 0; i < 103; i++) {
        assert_true(seen[i] <= 1);
        once += seen[i];
    }
    assert_int_equal(once, 100);
    sampler_free(&s);
    o.drop_last = false;
    init_ok(&s, 103, &o, 0, 1);
    assert_int_equal(sampler_steps_per_epoch(&s), 11);
    sampler_free(&s);
}

static void test_small_last_batch_leaves_ranks_empty(void **state) {
    /* n = 13, B = 10, p = 4: the last global batch has 3 rows, rank 3 none. */
    sampler_options o = {.seed = 1, .batch_size = 10, .shuffle = true};
    sampler s;
    init_ok(&s, 13, &o, 3, 4);
    int64_t ids[3], gn;
    sampler_cursor c = {0, 0};
    assert_int_equal(sampler_next(&s, &c, ids, &gn), 2);
    assert_int_equal(gn, 10);
    assert_int_equal(sampler_next(&s, &c, ids, &gn), 0);
    assert_int_equal(gn, 3);
    assert_true(c.epoch == 1 && c.position == 0);
    sampler_free(&s);
}

static void test_cursor_resume(void **state) {
    sampler_options o = {.seed = 5, .batch_size = 7, .shuffle = true};
    int64_t ref[2000], got[2000], sz[300];
    int64_t nref = run_ranks(&o, 50, 3, (sampler_cursor){0, 0}, 40, ref, sz);
    assert_true(nref > 0);
    /* Stop after k steps anywhere (mid-epoch, at an epoch end), resume. */
    for (int k = 1; k < 40; k += 3) {
        sampler s;
        init_ok(&s, 50, &o, 0, 1);
        sampler_cursor c = {0, 0};
        int64_t ids[7], gn, at = 0;
        for (int i = 0; i < k; i++)
            at += sampler_next(&s, &c, ids, &gn);
        sampler_free(&s);
        int64_t n2 = run_ranks(&o, 50, 2, c, 40 - k, got, sz);
        assert_int_equal(at + n2, nref);
        assert_memory_equal(got, ref + at, sizeof(int64_t) * (size_t)n2);
    }
}

static void test_bucketing(void **state) {
    const int64_t n = 1000;
    int32_t *len = malloc(sizeof(int32_t) * n);
    for (int64_t i = 0; i < n; i++)
        len[i] = 1 + (int32_t)((i * 37) % 64);
    sampler_options o = {
        .seed = 11, .batch_size = 16, .shuffle = true, .bucket_window = 10, .lengths = len};
    sampler_options plain = o;
    plain.bucket_window = 0;
    sampler s, q, t;
    init_ok(&s, n, &o, 0, 1);
    init_ok(&t, n, &o, 0, 1);
    init_ok(&q, n, &plain, 0, 1);
    int64_t *a = malloc(sizeof(int64_t) * n);
    for (int e = 0; e < 2; e++) {
        int64_t pad_b = 0, pad_p = 0;
        for (int64_t i = 0; i < n; i++) {
            a[i] = sampler_index(&s, e, i);
            assert_int_equal(sampler_index(&t, e, i), a[i]); /* pure function */
        }
        assert_permutation(a, n);
        /* The 8-sample tail (1000 % 16) is the plain shuffle's tail. */
        for (int64_t i = 992; i < n; i++)
            assert_int_equal(a[i], sampler_index(&q, e, i));
        for (int64_t b0 = 0; b0 < 992; b0 += 16) {
            int32_t mb = 0, mp = 0;
            for (int64_t i = b0; i < b0 + 16; i++) {
                mb = len[a[i]] > mb ? len[a[i]] : mb;
                int32_t lp = len[sampler_index(&q, e, i)];
                mp = lp > mp ? lp : mp;
            }
            for (int64_t i = b0; i < b0 + 16; i++) {
                pad_b += mb - len[a[i]];
                pad_p += mp - len[sampler_index(&q, e, i)];
            }
            /* within a batch, sorted by (length, id) */
            for (int64_t i = b0 + 1; i < b0 + 16; i++)
                assert_true(len[a[i - 1]] < len[a[i]] ||
                            (len[a[i - 1]] == len[a[i]] && a[i - 1] < a[i]));
        }
        assert_true(pad_b * 4 < pad_p); /* far less padding */
    }
    /* batches are shuffled: the first batch is not the shortest */
    int64_t a0 = sampler_index(&s, 0, 0), a1 = sampler_index(&s, 1, 0);
    assert_true(len[a0] > 1 || len[a1] > 1);
    free(a);
    free(len);
    sampler_free(&s);
    sampler_free(&t);
    sampler_free(&q);
}

static void test_bad_options(void **state) {
    sampler s;
    char err[256];
    sampler_options o = {.seed = 1, .batch_size = 0};
    assert_int_equal(sampler_init(&s, 10, &o, 0, 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "batch size 0"));
    o.batch_size = 11;
    o.drop_last = true;
    assert_int_equal(sampler_init(&s, 10, &o, 0, 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "drop_last"));
    o.drop_last = false;
    o.bucket_window = 4;
    assert_int_equal(sampler_init(&s, 10, &o, 0, 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "bucketing"));
    o.bucket_window = 0;
    assert_int_equal(sampler_init(&s, 0, &o, 0, 1, err, sizeof err), -1);
    assert_int_equal(sampler_init(&s, 10, &o, 0, 1, err, sizeof err), 0);
    sampler_free(&s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_range),
        cmocka_unit_test(test_epoch_is_permutation),
        cmocka_unit_test(test_no_shuffle_is_identity),
        cmocka_unit_test(test_shuffle_uniform),
        cmocka_unit_test(test_order_independent_of_ranks),
        cmocka_unit_test(test_drop_last_counts),
        cmocka_unit_test(test_small_last_batch_leaves_ranks_empty),
        cmocka_unit_test(test_cursor_resume),
        cmocka_unit_test(test_bucketing),
        cmocka_unit_test(test_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
