/*
 * lanes.h - 8 float partial sums for row reductions: lane j takes elements
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

#endif
