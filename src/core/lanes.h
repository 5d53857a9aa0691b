/*
 * lanes.h - 8 float partial sums (and maxima) for row reductions: lane j takes elements
 * j, j + 8, j + 16, ... and the lanes are combined in one fixed order, so a
 * sum does not depend on the CPU's vector width (and gcc does not have to
 * reassociate anything to vectorise it).
 *
 * A gcc vector rather than a float[8] that gcc may or may not vectorise: as
 * arrays, rows of some lengths (49 in batch norm) fell to a scalar loop. The
 * arithmetic is the same either way. Values go in and out through memcpy
 * and pointers: a vector argument or return value would change the ABI
 * between the SIMD clones (HEED_SIMD_CLONES) of the callers.
 */
#ifndef HEED_CORE_LANES_H
#define HEED_CORE_LANES_H

#include <math.h>
#include <stdint.h>
#include <string.h>

typedef float lanes8 __attribute__((vector_size(8 * sizeof(float))));

static inline void lanes8_load(lanes8 *v, const float *p) {
    memcpy(v, p, sizeof *v);
}

/* ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)) */
static inline float lanes8_sum(const lanes8 *v) {
    float s[8];
    memcpy(s, v, sizeof s);
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

/* sum of v[0, n): 8 lanes, the tail in lane 0 */
static inline float lanes8_row_sum(const float *v, int64_t n) {
    lanes8 s = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        lanes8 t;
        lanes8_load(&t, v + i);
        s += t;
    }
    for (; i < n; i++)
        s[0] += v[i];
    return lanes8_sum(&s);
}

/* a . b over [0, n): 8 lanes, the tail in lane 0 */
static inline float lanes8_row_dot(const float *a, const float *b, int64_t n) {
    lanes8 s = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        lanes8 x, y;
        lanes8_load(&x, a + i);
        lanes8_load(&y, b + i);
        s += x * y;
    }
    for (; i < n; i++)
        s[0] += a[i] * b[i];
    return lanes8_sum(&s);
}

typedef int32_t lanes8_mask __attribute__((vector_size(8 * sizeof(int32_t))));

/* max of v[0, n), -inf when n is 0 or every entry is -inf (a max is exact:
 * the lanes only keep the loop vectorised) */
static inline float lanes8_row_max(const float *v, int64_t n) {
    lanes8 m = {-INFINITY, -INFINITY, -INFINITY, -INFINITY,
                -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        lanes8 t;
        lanes8_load(&t, v + i);
        lanes8_mask gt = t > m;
        m = (lanes8)(((lanes8_mask)t & gt) | ((lanes8_mask)m & ~gt));
    }
    float s[8];
    memcpy(s, &m, sizeof s);
    for (; i < n; i++)
        s[0] = v[i] > s[0] ? v[i] : s[0];
    float r = s[0];
    for (int j = 1; j < 8; j++)
        r = s[j] > r ? s[j] : r;
    return r;
}

#endif
