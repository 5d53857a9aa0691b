/*
 * grad_pool.h - where each activation gradient lives during a backward pass.
 *
 * A gradient is needed only from the first backward that writes it (its
 * last consumer on the tape) to the backward of the op that made it. Buffers
 * whose spans do not meet can share memory, so the backward writes into
 * memory that the last few entries just read (still in cache) instead of a
 * fresh buffer per activation, and the gradients of a step need a fraction
 * of the memory. graph_backward plans the offsets every step (the tape can
 * change between steps) and points the tensors at them.
 */
#ifndef HEED_CORE_GRAD_POOL_H
#define HEED_CORE_GRAD_POOL_H

#include "core/arena.h"

#include <stddef.h>

/* One buffer to place: `bytes` long, live while the backward runs the tape
 * entries hi, hi - 1, ..., lo (hi >= lo). */
typedef struct grad_span {
    size_t bytes;
    int lo, hi;
    size_t offset; /* out: bytes from the pool start, a multiple of 64 */
} grad_span;

/* Fills spans[i].offset so that two spans live at one entry never overlap,
 * first-fit in the order the backward needs them. Scratch comes from
 * `scratch`. Returns the pool size in bytes. */
size_t grad_pool_plan(grad_span *spans, int n, arena *scratch);

#endif
