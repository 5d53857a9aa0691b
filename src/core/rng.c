#include "core/rng.h"

#include <math.h>

static uint64_t rng_mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t rng_key(uint64_t seed, uint64_t a, uint64_t b) {
    uint64_t k = rng_mix(seed + 0x9e3779b97f4a7c15ULL);
    k = rng_mix(k ^ (a + 0x632be59bd9b4e019ULL));
    return rng_mix(k ^ (b + 0x85157af5ULL));
}

uint64_t rng_bits(uint64_t key, uint64_t counter) {
    return rng_mix(rng_mix(key ^ (counter * 0x9e3779b97f4a7c15ULL)) + counter);
}

float rng_uniform(uint64_t key, uint64_t counter) {
    return (float)(rng_bits(key, counter) >> 40) * (1.0f / 16777216.0f);
}

float rng_normal(uint64_t key, uint64_t counter) {
    uint64_t r = rng_bits(key, counter);
    /* u1 in (0, 1] so the log is finite; u2 in [0, 1). */
    double u1 = ((double)(r >> 32) + 1.0) / 4294967296.0;
    double u2 = (double)(r & 0xffffffffULL) / 4294967296.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}
