/* blas_kernel_suggestion: OpenBLAS's kernel name against CPU flag lines
 * (real /proc/cpuinfo flags, shortened), and the live check's contract. */
#include "testutil.h"

#include "app/blas_kernel.h"

#include <string.h>

/* Emerald Rapids under KVM, the 16-core machine of docs/benchmarks.md. */
static const char *const emerald = "fpu sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 avx512f "
                                   "avx512dq avx512cd avx512bw avx512vl avx512_bf16 avx512_fp16 "
                                   "amx_bf16 amx_tile amx_int8";
static const char *const cascade = "fpu sse2 fma avx avx2 avx512f avx512dq avx512bw avx512vl "
                                   "avx512_vnni";
static const char *const cooper = "fpu sse2 fma avx avx2 avx512f avx512_bf16 avx512_vnni";
static const char *const zen3 = "fpu sse2 ssse3 fma sse4_2 avx f16c avx2 bmi2 sha_ni";
static const char *const ivy = "fpu sse2 ssse3 sse4_2 avx f16c";
static const char *const old = "fpu sse sse2 ssse3";

static void expect(const char *core, const char *flags, const char *want) {
    const char *got = blas_kernel_suggestion(core, flags);
    core = core ? core : "(null)";
    flags = flags ? flags : "(null)";
    if (!want && got)
        fail_msg("%s on [%s]: suggested %s, want none", core, flags, got);
    if (want && (!got || strcmp(got, want) != 0))
        fail_msg("%s on [%s]: suggested %s, want %s", core, flags, got ? got : "none", want);
}

static void test_old_kernels_on_new_cpus_are_flagged(void **state) {
    (void)state;
    expect("Prescott", emerald, "SAPPHIRERAPIDS");
    expect("Haswell", emerald, "SAPPHIRERAPIDS");
    expect("Core2", cascade, "SKYLAKEX");
    expect("Haswell", cooper, "COOPERLAKE");
    expect("Prescott", zen3, "HASWELL");
    expect("Sandybridge", zen3, "HASWELL");
    expect("Nehalem", ivy, "SANDYBRIDGE");
}

static void test_matching_kernels_are_left_alone(void **state) {
    (void)state;
    /* Any AVX-512 kernel is close enough on any AVX-512 CPU. */
    expect("SkylakeX", emerald, NULL);
    expect("Cooperlake", emerald, NULL);
    expect("Sapphirerapids", emerald, NULL);
    expect("SKYLAKEX", cascade, NULL);
    expect("Zen", zen3, NULL);
    expect("Haswell", zen3, NULL);
    expect("Sandybridge", ivy, NULL);
    expect("Prescott", old, NULL);
    /* Kernels wider than the flags claim: not ours to judge. */
    expect("SkylakeX", zen3, NULL);
}

static void test_whole_words_only(void **state) {
    (void)state;
    /* "avx512_fp16" and "avx2x" must not read as avx512f / avx2. */
    expect("Prescott", "fpu fma avx512_fp16 avx2x avx", "SANDYBRIDGE");
    expect("Prescott", "avx512f", "SKYLAKEX");
    expect("Prescott", "  avx2 fma\n", "HASWELL");
}

static void test_unknown_input_gives_no_advice(void **state) {
    (void)state;
    expect("Prescott", "", NULL);
    expect("Prescott", NULL, NULL);
    expect(NULL, emerald, NULL);
}

static void test_live_check_message_matches_its_result(void **state) {
    (void)state;
    char msg[320];
    int r = blas_kernel_check(msg, sizeof msg);
    assert_true(r == 0 || r == 1);
    if (r)
        assert_non_null(strstr(msg, "OPENBLAS_CORETYPE="));
    else
        assert_int_equal(msg[0], 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_old_kernels_on_new_cpus_are_flagged),
        cmocka_unit_test(test_matching_kernels_are_left_alone),
        cmocka_unit_test(test_whole_words_only),
        cmocka_unit_test(test_unknown_input_gives_no_advice),
        cmocka_unit_test(test_live_check_message_matches_its_result),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
