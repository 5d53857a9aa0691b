/* The loader on one rank: the prefetch thread yields exactly what a
 * synchronous loader does whatever the timing; evaluation passes and
 * rewinds; AUTO picks the mode by the budget; in memory no allocation
 * happens after the first batches; bad options are bad input. */
#include "testutil.h"

#include <mpi.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "dataset_fixture.h"
#include "dist/bad_input.h"
#include "dist/loader.h"

/* Every allocation in the process is counted (glibc's entry points stay
 * reachable as __libc_*). Not under the sanitizers, which own malloc. */
static atomic_long g_allocs;
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define COUNT_ALLOCS 1
void *__libc_malloc(size_t n);
void *__libc_calloc(size_t n, size_t s);
void *__libc_realloc(void *p, size_t n);
void __libc_free(void *p);
void *malloc(size_t n) {
    atomic_fetch_add(&g_allocs, 1);
    return __libc_malloc(n);
}
void *calloc(size_t n, size_t s) {
    atomic_fetch_add(&g_allocs, 1);
    return __libc_calloc(n, s);
}
void *realloc(void *p, size_t n) {
    atomic_fetch_add(&g_allocs, 1);
    return __libc_realloc(p, n);
}
void free(void *p) {
    if (p)
        atomic_fetch_add(&g_allocs, 1);
    __libc_free(p);
}
#endif

static char g_dir[512];
static dataset *g_img, *g_txt;

static loader *loader_ok(dataset *ds, const loader_options *o) {
    loader *l = NULL;
    char err[HEED_BAD_INPUT_MSG_MAX];
    if (loader_init(&l, ds, MPI_COMM_WORLD, o, err, sizeof err) != 0)
        fail_msg("loader_init: %s", err);
    return l;
}

static uint64_t batch_hash(const batch *b) {
    uint64_t h = 1469598103934665603ULL;
    const unsigned char *parts[4] = {(const void *)b->ids, (const void *)b->labels,
                                     (const void *)b->images, (const void *)b->tokens};
    size_t sizes[4] = {sizeof(int64_t) * b->n, sizeof(int32_t) * b->n,
                       b->images ? sizeof(float) * b->n * b->channels * b->height * b->width : 0,
                       b->tokens ? sizeof(int32_t) * b->n * b->len : 0};
    for (int k = 0; k < 4; k++)
        for (size_t i = 0; i < sizes[k]; i++)
            h = (h ^ parts[k][i]) * 1099511628211ULL;
    h ^= (uint64_t)b->next_position * 31 + (uint64_t)b->next_epoch;
    return h;
}

static void sleep_us(long us) {
    struct timespec t = {0, us * 1000};
    nanosleep(&t, NULL);
}

static void test_thread_matches_synchronous(void **state) {
    dataset *sets[2] = {g_img, g_txt};
    for (int d = 0; d < 2; d++)
        for (int mode = 0; mode < 2; mode++) {
            loader_options o = {
                .split = DATASET_SPLIT_TRAIN,
                .mode = mode ? LOADER_MODE_MEMORY : LOADER_MODE_STREAM,
                .sampler = {.seed = 3, .batch_size = 7, .shuffle = true, .bucket_window = d}};
            loader_options s = o;
            s.synchronous = true;
            loader *a = loader_ok(sets[d], &o), *b = loader_ok(sets[d], &s);
            for (int k = 0; k < 150; k++) {
                batch *x = loader_next(a);
                if (k % 7 == 0)
                    sleep_us(k % 3 * 200); /* let the thread run ahead, or not */
                batch *y = loader_next(b);
                assert_int_equal(x->n, y->n);
                assert_true(batch_hash(x) == batch_hash(y));
            }
            loader_free(a); /* with batches in flight */
            loader_free(b);
        }
}

static void test_eval_passes(void **state) {
    for (int sync = 0; sync < 2; sync++)
        for (int eb = 1; eb <= 20; eb += 6) {
            loader_options o = {
                .split = DATASET_SPLIT_TEST, .eval = true, .eval_batch = eb, .synchronous = sync};
            loader *l = loader_ok(g_txt, &o);
            for (int pass = 0; pass < 3; pass++) {
                int64_t next = 0;
                batch *b;
                while ((b = loader_next(l)) != NULL) {
                    assert_true(b->n >= 1 && b->n <= eb);
                    for (int i = 0; i < b->n; i++)
                        assert_int_equal(b->ids[i], next++);
                }
                assert_int_equal(next, g_txt->splits[DATASET_SPLIT_TEST].n);
                assert_null(loader_next(l));
                loader_rewind(l);
            }
            loader_free(l);
        }
}

static void test_auto_mode(void **state) {
    loader_options o = {.split = DATASET_SPLIT_VAL, .sampler = {.batch_size = 4}};
    loader *l = loader_ok(g_img, &o);
    assert_true(loader_in_memory(l));
    loader_free(l);
    o.memory_budget = dataset_split_bytes(g_img, DATASET_SPLIT_VAL) - 1;
    l = loader_ok(g_img, &o);
    assert_false(loader_in_memory(l));
    loader_free(l);
}

static void test_no_alloc_in_memory(void **state) {
#ifndef COUNT_ALLOCS
    skip();
#endif
    for (int sync = 0; sync < 2; sync++) {
        loader_options o = {.split = DATASET_SPLIT_TRAIN,
                            .mode = LOADER_MODE_MEMORY,
                            .synchronous = sync,
                            .sampler = {.seed = 1, .batch_size = 9, .shuffle = true}};
        loader *l = loader_ok(g_txt, &o);
        for (int k = 0; k < 3; k++)
            loader_next(l);
        long before = atomic_load(&g_allocs);
        for (int k = 0; k < 60; k++) /* several epochs of 50 rows */
            loader_next(l);
        long after = atomic_load(&g_allocs);
        if (after != before)
            fail_msg("%ld allocator calls in 60 batches (synchronous %d)", after - before, sync);
        loader_free(l);
    }
    /* The counter works: setting a loader up allocates. */
    loader_options o = {
        .split = DATASET_SPLIT_TRAIN, .mode = LOADER_MODE_MEMORY, .sampler = {.batch_size = 9}};
    long before = atomic_load(&g_allocs);
    loader_free(loader_ok(g_txt, &o));
    assert_true(atomic_load(&g_allocs) > before + 10);
}

static void test_bad_options(void **state) {
    loader *l = (loader *)1;
    char err[HEED_BAD_INPUT_MSG_MAX];
    loader_options o = {.split = DATASET_SPLIT_VAL, .eval = true, .eval_batch = 0};
    assert_int_equal(loader_init(&l, g_img, MPI_COMM_WORLD, &o, err, sizeof err),
                     HEED_EXIT_BAD_INPUT);
    assert_null(l);
    assert_non_null(strstr(err, "evaluation batch size 0"));
    o = (loader_options){.split = DATASET_SPLIT_VAL, .depth = 1, .sampler = {.batch_size = 2}};
    assert_int_equal(loader_init(&l, g_img, MPI_COMM_WORLD, &o, err, sizeof err),
                     HEED_EXIT_BAD_INPUT);
    o = (loader_options){.split = DATASET_SPLIT_VAL,
                         .sampler = {.batch_size = 100, .drop_last = true}};
    assert_int_equal(loader_init(&l, g_img, MPI_COMM_WORLD, &o, err, sizeof err),
                     HEED_EXIT_BAD_INPUT);
    assert_non_null(strstr(err, "/val: batch size 100 is larger than the split's 9 samples"));
}

static int setup(void **state) {
    fx_tmpdir(g_dir, sizeof g_dir);
    char p[700], err[HEED_BAD_INPUT_MSG_MAX];
    fx_spec img = fx_image_spec(), txt = fx_text_spec();
    img.chunked = true;
    fx_path(p, sizeof p, g_dir, "img.h5");
    fx_write(p, &img);
    if (dataset_open(&g_img, p, MPI_COMM_WORLD, NULL, err, sizeof err))
        return -1;
    fx_path(p, sizeof p, g_dir, "txt.h5");
    fx_write(p, &txt);
    if (dataset_open(&g_txt, p, MPI_COMM_WORLD, NULL, err, sizeof err))
        return -1;
    return 0;
}

static int teardown(void **state) {
    dataset_close(g_img);
    dataset_close(g_txt);
    fx_rmtree(g_dir);
    return 0;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thread_matches_synchronous),
        cmocka_unit_test(test_eval_passes),
        cmocka_unit_test(test_auto_mode),
        cmocka_unit_test(test_no_alloc_in_memory),
        cmocka_unit_test(test_bad_options),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    MPI_Finalize();
    return rc;
}
