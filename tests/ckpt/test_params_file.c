/* The params-only file (params_file.h) and the checkpoint directory
 * (ckpt_list, ckpt_retain): serial, no MPI. */
#include "dist/checkpoint.h"
#include "dist/params_file.h"

#include "../dist/dataset_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

static void make_params(params *ps, int rows, uint64_t seed) {
    params_init(ps);
    params_push_scope(ps, "blocks.%d", 0);
    params_add(ps, "attn.qkv.weight", PARAM_INIT(INIT_NORMAL, 1.0f), 2, (int[]){rows, 4});
    params_add(ps, "attn.qkv.bias", PARAM_INIT(INIT_NORMAL, 1.0f), 1, (int[]){rows});
    params_pop_scope(ps);
    params_add(ps, "head.weight", PARAM_INIT(INIT_NORMAL, 1.0f), 2, (int[]){3, 4});
    params_alloc(ps, seed);
}

static void test_round_trip(void **state) {
    (void)state;
    char dir[256], path[512], err[1024];
    fx_tmpdir(dir, sizeof dir);
    fx_path(path, sizeof path, dir, "model.h5");
    params a, b;
    make_params(&a, 6, 1);
    make_params(&b, 6, 2);
    assert_true(params_file_write(path, "transformer", &a, err, sizeof err));
    assert_memory_not_equal(a.data, b.data, sizeof(float) * a.numel);
    params_file_report rep;
    assert_true(params_file_read(path, &b, true, &rep, err, sizeof err));
    assert_int_equal(rep.loaded, 3);
    assert_int_equal(rep.missing, 0);
    assert_memory_equal(a.data, b.data, sizeof(float) * a.numel);

    /* A model with an extra tensor: loads the rest, reports the missing. */
    params c;
    params_init(&c);
    params_add(&c, "head.weight", PARAM_INIT(INIT_ZEROS, 0), 2, (int[]){3, 4});
    params_add(&c, "new.classifier", PARAM_INIT(INIT_ZEROS, 0), 1, (int[]){2});
    params_alloc(&c, 0);
    assert_true(params_file_read(path, &c, false, &rep, err, sizeof err));
    assert_int_equal(rep.loaded, 1);
    assert_int_equal(rep.missing, 1);
    assert_int_equal(rep.unused, 2);
    assert_string_equal(rep.first_missing, "new.classifier");
    assert_false(params_file_read(path, &c, true, &rep, err, sizeof err));
    assert_non_null(strstr(err, "new.classifier"));

    /* Another shape is refused, naming the tensor and both shapes. */
    params d;
    make_params(&d, 5, 1);
    assert_false(params_file_read(path, &d, false, NULL, err, sizeof err));
    assert_non_null(
        strstr(err, "blocks.0.attn.qkv.weight has shape [6,4], the model expects [5,4]"));

    /* A corrupt value fails its checksum. */
    fx_set_float(path, "/params/head.weight", 5, 123.0f);
    assert_false(params_file_read(path, &b, true, NULL, err, sizeof err));
    assert_non_null(strstr(err, "checksum mismatch in /params/head.weight"));
    assert_false(params_file_read("/nonexistent.h5", &b, true, NULL, err, sizeof err));
    assert_non_null(strstr(err, "cannot open"));
    params_free(&a);
    params_free(&b);
    params_free(&c);
    params_free(&d);
    fx_rmtree(dir);
}

static void touch(const char *dir, const char *name) {
    char p[512];
    fx_path(p, sizeof p, dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fclose(f);
}

static void test_list_and_retain(void **state) {
    (void)state;
    char dir[256];
    fx_tmpdir(dir, sizeof dir);
    const char *names[] = {"ckpt-00000002.h5", "ckpt-00000004.h5", "ckpt-00000006.h5",
                           "ckpt-00000008.h5", "ckpt-00000010.h5", "ckpt-00000012.h5.tmp",
                           "ckpt-x.h5",        "notes.txt"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        touch(dir, names[i]);
    char **paths;
    int64_t *steps;
    int n = ckpt_list(dir, &paths, &steps);
    assert_int_equal(n, 5);
    assert_int_equal(steps[0], 10);
    assert_int_equal(steps[4], 2);
    assert_non_null(strstr(paths[0], "/ckpt-00000010.h5"));
    ckpt_list_free(paths, steps, n);
    /* Keep the newest 2 and every multiple of 4: 10, 8, 4 stay. */
    assert_int_equal(ckpt_retain(dir, 2, 4), 2);
    n = ckpt_list(dir, &paths, &steps);
    assert_int_equal(n, 3);
    assert_int_equal(steps[0], 10);
    assert_int_equal(steps[1], 8);
    assert_int_equal(steps[2], 4);
    ckpt_list_free(paths, steps, n);
    char p[512];
    fx_path(p, sizeof p, dir, "ckpt-00000012.h5.tmp");
    assert_int_not_equal(access(p, F_OK), 0); /* stale temporary removed */
    fx_path(p, sizeof p, dir, "notes.txt");
    assert_int_equal(access(p, F_OK), 0); /* other files untouched */
    assert_int_equal(ckpt_list("/nonexistent/dir", &paths, &steps), 0);
    ckpt_list_free(paths, steps, 0);
    fx_rmtree(dir);
}

static void test_checksum(void **state) {
    (void)state;
    float x[100];
    for (int i = 0; i < 100; i++)
        x[i] = (float)i * 0.25f;
    uint64_t whole = ckpt_checksum(x, 0, 100);
    /* The value docs/checkpoint-format.md's numpy definition gives: files
     * written by earlier versions keep verifying. */
    assert_true(whole == 0x4faea62702a0c343ULL);
    /* Parts add up to the whole, at any split. */
    assert_true(ckpt_checksum(x, 0, 37) + ckpt_checksum(x + 37, 37, 63) == whole);
    /* Position matters: swapping two values changes it. */
    float t = x[3];
    x[3] = x[4];
    x[4] = t;
    assert_true(ckpt_checksum(x, 0, 100) != whole);
}

/* The vector path (AVX-512 where the CPU has it) equals the plain loop at
 * every length and offset, tails included. */
static void test_checksum_paths_agree(void **state) {
    (void)state;
    enum { N = 1000 };
    float x[N];
    uint32_t r = 12345;
    for (int i = 0; i < N; i++) {
        r = r * 1664525u + 1013904223u;
        memcpy(&x[i], &r, sizeof r); /* any bit pattern, NaNs included */
    }
    for (int n = 0; n <= 40; n++)
        for (int first = 0; first < 3; first++) {
            int64_t pos = first == 2 ? (INT64_C(1) << 33) + 5 : first;
            assert_true(ckpt_checksum(x + first, pos, n) ==
                        ckpt_checksum_reference(x + first, pos, n));
        }
    assert_true(ckpt_checksum(x, 7, N) == ckpt_checksum_reference(x, 7, N));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_list_and_retain),
        cmocka_unit_test(test_checksum),
        cmocka_unit_test(test_checksum_paths_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
