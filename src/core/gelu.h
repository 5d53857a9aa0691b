/*
 * gelu.h - GELU on plain arrays, for the ops that fuse it with the layer
 * before (op_linear_gelu). The same loops as op_gelu, so the fused and the
 * plain op give the same bits.
 */
#ifndef HEED_CORE_GELU_H
#define HEED_CORE_GELU_H

#include "core/ops.h"

#include <stdint.h>

/* out (n) = GELU(x); out may be x. */
void gelu_forward(float *out, const float *x, int64_t n, gelu_kind kind);
/* out (n) = GELU(x), and x (n) := GELU'(x): what the backward multiplies by,
 * kept in the input's place. */
void gelu_forward_slope(float *out, float *x, int64_t n, gelu_kind kind);

#endif
