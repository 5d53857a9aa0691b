/* small_gemm's AVX-512 and AVX2 kernels against their twin, cblas_sgemm on
 * the same operands: every tile shape and tail, both layouts of A, both
 * modes of C, strided operands, and nothing written outside C. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "core/small_gemm.h"

static float *random_floats(int64_t n, uint64_t seed) {
    float *x = malloc(sizeof(float) * (size_t)n);
    assert_non_null(x);
    for (int64_t i = 0; i < n; i++)
        x[i] = rng_uniform(seed, (uint64_t)i) * 2.0f - 1.0f;
    return x;
}

/* One product at `level` against the twin. A, B, C carry 3 columns of
 * slack in each row (lda, ldb, ldc), filled with a sentinel in C that must
 * survive. */
static void check_case(small_gemm_level lvl, bool trans_a, int M, int N, int K, float alpha,
                       bool acc, uint64_t seed) {
    int ar = trans_a ? K : M, ac = trans_a ? M : K;
    int lda = ac + 3, ldb = N + 3, ldc = N + 3;
    float *A = random_floats((int64_t)ar * lda + 1, seed);
    float *B = random_floats((int64_t)K * ldb + 1, seed + 1);
    float *c0 = random_floats((int64_t)M * ldc + 1, seed + 2);
    float *want = malloc(sizeof(float) * ((size_t)M * ldc + 1));
    float *got = malloc(sizeof(float) * ((size_t)M * ldc + 1));
    assert_non_null(want);
    assert_non_null(got);
    for (int64_t i = 0; i < (int64_t)M * ldc; i++)
        if (i % ldc >= N)
            c0[i] = 1234.5f; /* the slack */
    memcpy(want, c0, sizeof(float) * (size_t)M * ldc);
    memcpy(got, c0, sizeof(float) * (size_t)M * ldc);
    small_gemm_set_level(SMALL_GEMM_BLAS);
    small_gemm(trans_a, M, N, K, alpha, A, lda, B, ldb, acc, want, ldc);
    small_gemm_set_level(lvl);
    small_gemm(trans_a, M, N, K, alpha, A, lda, B, ldb, acc, got, ldc);
    small_gemm_set_level(SMALL_GEMM_BEST);
    for (int m = 0; m < M; m++)
        for (int n = 0; n < ldc; n++) {
            int64_t i = (int64_t)m * ldc + n;
            if (n >= N) {
                if (got[i] != 1234.5f)
                    fail_msg("level %d trans %d %dx%dx%d: wrote C[%d][%d] past N", lvl, trans_a, M,
                             N, K, m, n);
                continue;
            }
            /* float sums of K products of values in [-1, 1], summed in
             * another order */
            float tol = 1e-6f * (float)(K + 1) * fabsf(alpha) * 4.0f + 1e-6f;
            if (fabsf(got[i] - want[i]) > tol)
                fail_msg("level %d trans %d acc %d %dx%dx%d: C[%d][%d] = %g, want %g", lvl, trans_a,
                         acc, M, N, K, m, n, got[i], want[i]);
        }
    free(A);
    free(B);
    free(c0);
    free(want);
    free(got);
}

static void test_small_gemm_twin(void **state) {
    (void)state;
    /* rows: 1, tails of every tile height (6, 8, 12, 16), a whole number of
     * tiles; columns: one lane, vector tails, 1-4 vectors, several chunks */
    const int Ms[] = {1, 3, 5, 7, 13, 17, 31, 50, 64};
    const int Ns[] = {1, 7, 16, 17, 32, 33, 50, 64, 65, 130};
    const int Ks[] = {0, 1, 16, 32, 50};
    uint64_t seed = 1;
    for (int lv = 0; lv < 2; lv++) {
        small_gemm_level lvl = lv ? SMALL_GEMM_BEST : SMALL_GEMM_AVX2;
        for (size_t mi = 0; mi < sizeof Ms / sizeof *Ms; mi++)
            for (size_t ni = 0; ni < sizeof Ns / sizeof *Ns; ni++)
                for (size_t ki = 0; ki < sizeof Ks / sizeof *Ks; ki++) {
                    int M = Ms[mi], N = Ns[ni], K = Ks[ki];
                    check_case(lvl, false, M, N, K, 1.0f, false, seed++);
                    check_case(lvl, true, M, N, K, 0.25f, true, seed++);
                    bool t = (seed & 1) != 0, acc = (seed & 2) != 0;
                    check_case(lvl, t, M, N, K, -0.5f, acc, seed++);
                }
    }
}

static void test_small_gemm_values(void **state) {
    (void)state;
    /* [[1, 2], [3, 4]] @ [[5, 6], [7, 8]] = [[19, 22], [43, 50]], exact in
     * every path; transposed A: [[1, 3], [2, 4]] @ B = [[26, 30], [38, 44]] */
    const float A[4] = {1, 2, 3, 4}, B[4] = {5, 6, 7, 8};
    const float nn[4] = {19, 22, 43, 50}, tn[4] = {26, 30, 38, 44};
    for (int lv = 0; lv < 3; lv++) {
        small_gemm_set_level((small_gemm_level)lv);
        float C[4];
        small_gemm(false, 2, 2, 2, 1.0f, A, 2, B, 2, false, C, 2);
        tu_assert_close("nn", C, nn, 4, 0, 0);
        small_gemm(true, 2, 2, 2, 1.0f, A, 2, B, 2, false, C, 2);
        tu_assert_close("tn", C, tn, 4, 0, 0);
        small_gemm(true, 2, 2, 2, -1.0f, A, 2, B, 2, true, C, 2);
        const float zero[4] = {0};
        tu_assert_close("tn accumulate", C, zero, 4, 0, 0);
    }
    small_gemm_set_level(SMALL_GEMM_BEST);
}

static void test_small_transpose(void **state) {
    (void)state;
    const int shapes[][2] = {{1, 1}, {3, 5}, {8, 32}, {50, 16}, {64, 32}, {17, 9}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int rows = shapes[s][0], cols = shapes[s][1], ld = cols + 2;
        float *src = random_floats((int64_t)rows * ld, 7 + s);
        float *dst = malloc(sizeof(float) * (size_t)rows * cols);
        assert_non_null(dst);
        small_transpose(dst, src, rows, cols, ld);
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
                assert_true(dst[(int64_t)c * rows + r] == src[(int64_t)r * ld + c]);
        free(src);
        free(dst);
    }
}

/* Both strides free and the accumulating form, over 8x8 blocks and both
 * tails: every element is the scalar sum, bit for bit. */
static void test_small_transpose_to(void **state) {
    (void)state;
    const int shapes[][2] = {{1, 1}, {8, 8}, {7, 9}, {17, 33}, {24, 16}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int rows = shapes[s][0], cols = shapes[s][1], lds = cols + 3, ldd = rows + 5;
        float *src = random_floats((int64_t)rows * lds, 11 + s);
        float *dst = random_floats((int64_t)cols * ldd, 23 + s);
        float *was = malloc(sizeof(float) * (size_t)cols * ldd);
        assert_non_null(was);
        memcpy(was, dst, sizeof(float) * (size_t)cols * ldd);
        for (int acc = 0; acc < 2; acc++) {
            small_transpose_to(dst, ldd, acc, src, lds, rows, cols);
            for (int c = 0; c < cols; c++)
                for (int r = 0; r < ldd; r++) {
                    int64_t i = (int64_t)c * ldd + r;
                    float v = src[(int64_t)r * lds + c];
                    /* outside [0, rows) of each column nothing is written */
                    float want = r >= rows ? was[i] : acc ? v + v : v;
                    assert_true(dst[i] == want);
                }
        }
        free(src);
        free(dst);
        free(was);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_gemm_twin),
        cmocka_unit_test(test_small_gemm_values),
        cmocka_unit_test(test_small_transpose),
        cmocka_unit_test(test_small_transpose_to),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
