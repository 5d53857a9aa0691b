/*
 * rng.h - a counter-based random number generator.
 *
 * Every random number heed draws is a pure function of (key, counter): no
 * hidden state advances. Initial weights are keyed by (seed, parameter
 * index) and counted by element, dropout masks by (seed, step, op, sample),
 * so results never depend on the rank, the rank count or the order in which
 * threads ran. The mixer is SplitMix64's finaliser applied twice, which
 * passes BigCrush for sequential counters.
 */
#ifndef HEED_CORE_RNG_H
#define HEED_CORE_RNG_H

#include <stdint.h>

/* Combines words into a stream key: rng_key(seed, a, b) for nested streams. */
uint64_t rng_key(uint64_t seed, uint64_t a, uint64_t b);

/* 64 random bits for element `counter` of stream `key`. */
uint64_t rng_bits(uint64_t key, uint64_t counter);

/* Uniform float in [0, 1) with 24 random bits. */
float rng_uniform(uint64_t key, uint64_t counter);

/* Standard normal (Box-Muller on two 32-bit halves of one draw). */
float rng_normal(uint64_t key, uint64_t counter);

#endif
