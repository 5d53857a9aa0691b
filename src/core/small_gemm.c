#include "core/small_gemm.h"

#include "core/check.h"

#include <cblas.h>
#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* AVX-512: 32 registers; a tile of MR x nv accumulators, nv vectors of B
 * and one broadcast of A. */
#define TILE tile_avx512
#define ROWS rows_avx512
#define DRIVER gemm_avx512
#define TARGET "avx512f"
#define VEC __m512
#define MASK __mmask16
#define VL 16
#define NVMAX 4
#define MR(nv) ((nv) == 4 ? 6 : (nv) == 3 ? 8 : (nv) == 2 ? 12 : 16)
#define LOAD(p) _mm512_loadu_ps(p)
#define MLOAD(p, m) _mm512_maskz_loadu_ps((m), (p))
#define STORE(p, v) _mm512_storeu_ps((p), (v))
#define MSTORE(p, m, v) _mm512_mask_storeu_ps((p), (m), (v))
#define BCAST(p) _mm512_set1_ps(*(p))
#define FMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define MUL(a, b) _mm512_mul_ps((a), (b))
#define ADD(a, b) _mm512_add_ps((a), (b))
#define SET1(x) _mm512_set1_ps(x)
#define ZERO() _mm512_setzero_ps()
#define TAILMASK(r) ((__mmask16)((1u << (r)) - 1u))
#include "core/small_gemm_kernel.h" /* undefines the parameters */

/* lanes [0, r) of 8 set, as AVX2's masked loads and stores want */
__attribute__((target("avx2,fma"))) static inline __m256i tailmask256(int r) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(r), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* AVX2: 16 registers, so chunks of two vectors. */
#define TILE tile_avx2
#define ROWS rows_avx2
#define DRIVER gemm_avx2
#define TARGET "avx2,fma"
#define VEC __m256
#define MASK __m256i
#define VL 8
#define NVMAX 2
#define MR(nv) ((nv) == 2 ? 6 : 8)
#define LOAD(p) _mm256_loadu_ps(p)
#define MLOAD(p, m) _mm256_maskload_ps((p), (m))
#define STORE(p, v) _mm256_storeu_ps((p), (v))
#define MSTORE(p, m, v) _mm256_maskstore_ps((p), (m), (v))
#define BCAST(p) _mm256_broadcast_ss(p)
#define FMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define MUL(a, b) _mm256_mul_ps((a), (b))
#define ADD(a, b) _mm256_add_ps((a), (b))
#define SET1(x) _mm256_set1_ps(x)
#define ZERO() _mm256_setzero_ps()
#define TAILMASK(r) tailmask256(r)
#include "core/small_gemm_kernel.h" /* undefines the parameters */

typedef void (*gemm_fn)(int M, int N, int K, float alpha, const float *a, int64_t sam, int64_t sak,
                        const float *b, int64_t ldb, bool acc, float *c, int64_t ldc);

static small_gemm_level level = SMALL_GEMM_BEST;

void small_gemm_set_level(small_gemm_level l) {
    level = l;
}

/* The best kernel is resolved once; every rank of a run resolves the same on
 * the same CPU type, as OpenBLAS's own kernel choice does. NULL: cblas. */
static gemm_fn kernel_get(void) {
    static int resolved;
    static gemm_fn best;
    static bool have_avx2;
    if (!resolved) {
        const char *off = getenv("HEED_ATTN_BLAS");
        have_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        if (off && strcmp(off, "1") == 0)
            best = NULL;
        else if (__builtin_cpu_supports("avx512f"))
            best = gemm_avx512;
        else if (have_avx2)
            best = gemm_avx2;
        resolved = 1;
    }
    if (level == SMALL_GEMM_BLAS || !best)
        return NULL;
    return level == SMALL_GEMM_AVX2 && have_avx2 ? gemm_avx2 : best;
}

void small_gemm(bool trans_a, int M, int N, int K, float alpha, const float *A, int lda,
                const float *B, int ldb, bool accumulate, float *C, int ldc) {
    HEED_ASSERT(M >= 0 && N >= 0 && K >= 0);
    if (M == 0 || N == 0)
        return;
    gemm_fn fn = kernel_get();
    if (!fn) {
        cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, CblasNoTrans, M, N, K,
                    alpha, A, lda, B, ldb, accumulate ? 1.0f : 0.0f, C, ldc);
        return;
    }
    int64_t sam = trans_a ? 1 : lda, sak = trans_a ? lda : 1;
    fn(M, N, K, alpha, A, sam, sak, B, ldb, accumulate, C, ldc);
}

/* The rectangle [r0, r1) x [c0, c1) of small_transpose_to, element by
 * element. */
static void transpose_scalar(float *dst, int64_t ldd, bool acc, const float *src, int64_t lds,
                             int r0, int r1, int c0, int c1) {
    for (int c = c0; c < c1; c++)
        for (int r = r0; r < r1; r++) {
            float v = src[(int64_t)r * lds + c];
            float *d = dst + (int64_t)c * ldd + r;
            *d = acc ? *d + v : v;
        }
}

/* 8x8 blocks: eight row loads, three rounds of shuffles, eight column
 * stores. */
__attribute__((target("avx2"))) static void transpose_avx2(float *dst, int64_t ldd, bool acc,
                                                           const float *src, int64_t lds, int rows,
                                                           int cols) {
    int r0 = 0;
    for (; r0 + 8 <= rows; r0 += 8) {
        int c0 = 0;
        for (; c0 + 8 <= cols; c0 += 8) {
            __m256 a[8], b[8], o[8];
            for (int i = 0; i < 8; i++)
                a[i] = _mm256_loadu_ps(src + (int64_t)(r0 + i) * lds + c0);
            for (int i = 0; i < 8; i += 2) {
                b[i] = _mm256_unpacklo_ps(a[i], a[i + 1]);
                b[i + 1] = _mm256_unpackhi_ps(a[i], a[i + 1]);
            }
            for (int i = 0; i < 8; i += 4) {
                a[i] = _mm256_shuffle_ps(b[i], b[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
                a[i + 1] = _mm256_shuffle_ps(b[i], b[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
                a[i + 2] = _mm256_shuffle_ps(b[i + 1], b[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
                a[i + 3] = _mm256_shuffle_ps(b[i + 1], b[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
            }
            for (int i = 0; i < 4; i++) {
                o[i] = _mm256_permute2f128_ps(a[i], a[i + 4], 0x20);
                o[i + 4] = _mm256_permute2f128_ps(a[i], a[i + 4], 0x31);
            }
            for (int k = 0; k < 8; k++) {
                float *d = dst + (int64_t)(c0 + k) * ldd + r0;
                if (acc)
                    o[k] = _mm256_add_ps(_mm256_loadu_ps(d), o[k]);
                _mm256_storeu_ps(d, o[k]);
            }
        }
        transpose_scalar(dst, ldd, acc, src, lds, r0, r0 + 8, c0, cols);
    }
    transpose_scalar(dst, ldd, acc, src, lds, r0, rows, 0, cols);
}

void small_transpose_to(float *dst, int64_t ldd, bool acc, const float *src, int64_t lds, int rows,
                        int cols) {
    static int have_avx2 = -1;
    if (have_avx2 < 0)
        have_avx2 = __builtin_cpu_supports("avx2");
    if (have_avx2)
        transpose_avx2(dst, ldd, acc, src, lds, rows, cols);
    else
        transpose_scalar(dst, ldd, acc, src, lds, 0, rows, 0, cols);
}

void small_transpose(float *dst, const float *src, int rows, int cols, int ld) {
    small_transpose_to(dst, rows, false, src, ld, rows, cols);
}
