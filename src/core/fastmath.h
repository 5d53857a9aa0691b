/*
 * fastmath.h - branch-free expf and erff that the compiler can vectorise.
 *
 * glibc's expf/erff are scalar calls; in GELU and softmax they cost more than
 * the GEMMs around them. These are polynomial/rational approximations with a
 * relative error below 2e-7 (about 2 ulp) on the ranges used, written so that
 * a loop over them compiles to SIMD. tests/core/test_fastmath.c compares them
 * with libm over a dense grid.
 */
#ifndef HEED_CORE_FASTMATH_H
#define HEED_CORE_FASTMATH_H

#include <stdint.h>
#include <string.h>

/* For the loops over these functions: gcc compiles the function for
 * AVX-512, AVX2 and the baseline and picks one at load time (the default
 * build targets plain x86-64). No FMA contraction (CMakeLists.txt), so every
 * version gives the same bits. */
#define HEED_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

/* e^x; exactly 0 below -87 (so masked -inf scores give 0 probability),
 * inputs above 88 are clamped. */
static inline float fast_expf(float x) {
    float in = x;
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    /* x = n ln2 + r, |r| <= ln2/2 */
    /* round to nearest by the 1.5 * 2^23 trick: vectorises without SSE4.1 */
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693145751953125f;
    r = r - n * 1.428606765330187045e-6f;
    /* e^r by a degree-6 polynomial (Cephes expf coefficients) */
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    /* scale by 2^n through the exponent bits */
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return in < -87.0f ? 0.0f : p * scale;
}

/* erf(x) by a rational approximation on [-4, 4] (erf is +-1 in float
 * beyond), the form Eigen and XNNPACK use. */
static inline float fast_erff(float x) {
    x = x < -4.0f ? -4.0f : (x > 4.0f ? 4.0f : x);
    float x2 = x * x;
    float p = -2.72614225801306e-10f;
    p = p * x2 + 2.77068142495902e-08f;
    p = p * x2 + -2.10102402082508e-06f;
    p = p * x2 + -5.69250639462346e-05f;
    p = p * x2 + -7.34990630326855e-04f;
    p = p * x2 + -2.95459980854025e-03f;
    p = p * x2 + -1.60960333262415e-02f;
    p = p * x;
    float q = -1.45660718464996e-05f;
    q = q * x2 + -2.13374055278905e-04f;
    q = q * x2 + -1.68282697438203e-03f;
    q = q * x2 + -7.37332916720468e-03f;
    q = q * x2 + -1.42647390514189e-02f;
    return p / q;
}

#endif
