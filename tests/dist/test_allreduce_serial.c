/*
 * test_allreduce_serial.c - what of the ring can be checked in one process
 * (singleton MPI): the split rule, including lengths past 2^31 elements that
 * no test can afford to allocate; the workspace sizing; and p = 1, where
 * every operation leaves the buffer as it was (sum of one rank, average
 * times 1/1). tests/dist/mpi_allreduce.c covers 1..4 ranks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dist/allreduce.h"
#include "dist/check_dist.h"
#include "dist/comm.h"

/* Chunks tile [0, n) in rank order; the first n % p hold one more. */
static void check_split(int64_t n, int p) {
    int64_t prev_hi = 0;
    for (int r = 0; r < p; r++) {
        int64_t lo, hi;
        ring_chunk_range(n, p, r, &lo, &hi);
        assert_true(lo == prev_hi);
        assert_true(hi - lo == n / p + (r < n % p ? 1 : 0));
        prev_hi = hi;
    }
    assert_true(prev_hi == n);
}

static void test_chunk_range(void **state) {
    (void)state;
    const int ps[] = {1, 2, 3, 4, 7, 8, 64, 1000};
    const int64_t ns[] = {0, 1, 2, 3, 5, 7, 13, 999, 1000, 1001, 65537};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++)
        for (size_t j = 0; j < sizeof ns / sizeof ns[0]; j++)
            check_split(ns[j], ps[i]);
    /* n < p: the first n ranks get one element, the rest nothing. */
    int64_t lo, hi;
    ring_chunk_range(3, 5, 2, &lo, &hi);
    assert_true(lo == 2 && hi == 3);
    ring_chunk_range(3, 5, 4, &lo, &hi);
    assert_true(lo == 3 && hi == 3);
}

/* Lengths whose byte counts, and element counts, do not fit in an int. */
static void test_chunk_range_large(void **state) {
    (void)state;
    const int64_t big[] = {((int64_t)1 << 31) + 7, ((int64_t)3 << 31) + 1, ((int64_t)1 << 40) + 3};
    const int ps[] = {1, 2, 3, 5, 1024};
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++)
        for (size_t j = 0; j < sizeof ps / sizeof ps[0]; j++)
            check_split(big[i], ps[j]);
    int64_t lo, hi;
    ring_chunk_range(((int64_t)3 << 31) + 1, 3, 2, &lo, &hi);
    assert_true(lo == ((int64_t)2 << 31) + 1 && hi == ((int64_t)3 << 31) + 1);
}

static void test_workspace_size(void **state) {
    comm *c = *state;
    ring r;
    ring_init(&r, c, 1 << 20, 0); /* p = 1: the chunk is the whole buffer */
    assert_int_equal(r.segment_bytes, RING_SEGMENT_FLOATS_DEFAULT * sizeof(float));
    ring_free(&r);
    ring_init(&r, c, 5000, 0); /* capped by the largest chunk */
    assert_int_equal(r.segment_bytes, 20000);
    ring_free(&r);
    ring_init(&r, c, 100, 0); /* but not below 4 KiB by default */
    assert_int_equal(r.segment_bytes, 4096);
    ring_free(&r);
    ring_init(&r, c, 0, 0);
    assert_int_equal(r.segment_bytes, 4096);
    ring_free(&r);
    ring_init(&r, c, 1 << 20, 3); /* asked for: a whole number of int64s */
    assert_int_equal(r.segment_bytes, 8);
    ring_free(&r);
    ring_init(&r, c, 100, 1); /* never less than one int64 */
    assert_int_equal(r.segment_bytes, 8);
    ring_free(&r);
    ring_free(&r); /* a freed ring frees nothing */
}

static void test_one_rank_is_identity(void **state) {
    comm *c = *state;
    assert_int_equal(c->size, 1);
    assert_int_equal(c->num_nodes, 1);
    assert_int_equal(c->local_size, 1);
    ring r;
    ring_init(&r, c, 1000, 16);
    float x[1000], want[1000];
    int64_t xi[1000], wanti[1000];
    for (int i = 0; i < 1000; i++) {
        want[i] = x[i] = (float)i * 0.37f - 100.0f;
        wanti[i] = xi[i] = (int64_t)i * 1000000007 - ((int64_t)1 << 50);
    }
    ring_allreduce(&r, x, 1000, RING_OP_SUM);
    ring_allreduce(&r, x, 1000, RING_OP_AVG);
    ring_reduce_scatter(&r, x, 1000);
    ring_allgather(&r, x, 1000);
    assert_memory_equal(x, want, sizeof x);
    ring_allreduce_i64(&r, xi, 1000);
    ring_reduce_scatter_i64(&r, xi, 1000);
    ring_allgather_i64(&r, xi, 1000);
    assert_memory_equal(xi, wanti, sizeof xi);
    /* n = 0 touches nothing, so NULL is a valid buffer. */
    ring_allreduce(&r, NULL, 0, RING_OP_SUM);
    ring_allreduce_i64(&r, NULL, 0);
    ring_free(&r);
}

static int setup(void **state) {
    static comm c; /* test fixture storage, not library state */
    comm_init(&c, MPI_COMM_WORLD);
    *state = &c;
    return 0;
}

static int teardown(void **state) {
    comm_free(*state);
    return 0;
}

int main(int argc, char **argv) {
    HEED_MPI_CHECK(MPI_Init(&argc, &argv));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunk_range),
        cmocka_unit_test(test_chunk_range_large),
        cmocka_unit_test(test_workspace_size),
        cmocka_unit_test(test_one_rank_is_identity),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    HEED_MPI_CHECK(MPI_Finalize());
    return failed ? 1 : 0;
}
