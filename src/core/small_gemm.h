/*
 * small_gemm.h - the small matrix products of per-head attention (64 x 64 x
 * 32 and the like), in register tiles of AVX-512 or AVX2 + FMA chosen at run
 * time.
 *
 * OpenBLAS packs both operands and pre-scales C on every call, which for
 * products this small costs as much as the arithmetic: it runs them at half
 * its large-matrix rate. Here B (K, N) is read in place, row by row, and
 * stays in L1; a tile of rows of C x up to four vectors of columns
 * accumulates over k with broadcast elements of A. cblas_sgemm on the same
 * operands is the reference twin (small_gemm_set_level), which tests compare.
 */
#ifndef HEED_CORE_SMALL_GEMM_H
#define HEED_CORE_SMALL_GEMM_H

#include <stdbool.h>
#include <stdint.h>

/* C (M, N) = alpha * op(A) @ B, or with `accumulate` C += alpha * op(A) @ B.
 * op(A) is A (M, K) with rows lda apart or, with trans_a, the transpose of
 * A (K, M) with rows lda apart. B is (K, N), rows ldb apart; C rows ldc
 * apart. C must not overlap A or B. */
void small_gemm(bool trans_a, int M, int N, int K, float alpha, const float *A, int lda,
                const float *B, int ldb, bool accumulate, float *C, int ldc);

/* dst (cols, rows), contiguous = the transpose of src (rows, cols) whose rows
 * are ld apart: what turns the K of q @ k^T into a B that small_gemm reads. */
void small_transpose(float *dst, const float *src, int rows, int cols, int ld);

/* dst[c * ldd + r] = (or with `acc`, +=) src[r * lds + c] for r < rows,
 * c < cols: small_transpose with both strides free, in 8x8 AVX2 blocks
 * where the CPU has them (a copy, so bitwise the same either way). */
void small_transpose_to(float *dst, int64_t ldd, bool acc, const float *src, int64_t lds, int rows,
                        int cols);

/* Which code runs small_gemm: cblas_sgemm (the twin), the AVX2 kernel, or
 * the best this CPU has (the default). For tests and A/B runs; a level the
 * CPU lacks means cblas_sgemm, as does HEED_ATTN_BLAS=1 in the
 * environment. */
typedef enum small_gemm_level {
    SMALL_GEMM_BLAS,
    SMALL_GEMM_AVX2,
    SMALL_GEMM_BEST
} small_gemm_level;
void small_gemm_set_level(small_gemm_level level);

#endif
