/*
 * conv_winograd.h - a 3x3, stride-1, pad-1 convolution by Winograd's minimal
 * filtering F(2x2, 3x3): each 2x2 block of output pixels is A^T [(G g G^T)
 * .* (B^T d B)] A of its 4x4 input patch d, so the products per output
 * pixel fall from 9 per input channel to 4, at the price of additions that
 * transform the patches in and the results out.
 *
 * Per sample, the input is copied once to a zero-bordered channel-last
 * grid; the patch transforms and output transforms run over channel
 * vectors; the 16 elementwise products over channels are 16 small matrix
 * products (tiles x C) @ (C x OC) through small_gemm. The direct kernels
 * of conv_direct.c, and the im2col + sgemm path of ops_conv.c, are the
 * reference twins: tests compare all three. Results differ from the direct
 * sum by rounding only (the transforms add and subtract, and halve the
 * weights, exactly scaled by powers of two).
 */
#ifndef HEED_CORE_CONV_WINOGRAD_H
#define HEED_CORE_CONV_WINOGRAD_H

#include "core/conv_direct.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* When conv_winograd_usable says yes. AUTO (the default) takes the shapes
 * it can run where it is faster than the direct kernels: at 16 channels
 * the transforms cost more than the products they save (bench_conv).
 * HEED_CONV_WINOGRAD=0 in the environment means OFF, for A/B runs against
 * the direct kernels; tests set ALWAYS to reach small shapes. */
typedef enum conv_winograd_mode {
    CONV_WINOGRAD_OFF,
    CONV_WINOGRAD_AUTO,
    CONV_WINOGRAD_ALWAYS,
} conv_winograd_mode;
void conv_winograd_set_mode(conv_winograd_mode mode);

/* Whether g (one group of a same-geometry conv) runs here: a 3x3 kernel,
 * pad 1, no dilation, Cg and OCg multiples of 8, as the mode allows. */
bool conv_winograd_usable(const conv_direct_geom *g);

/* Floats of transformed weights and of scratch conv_winograd_run needs. */
size_t conv_winograd_packed_floats(const conv_direct_geom *g);
size_t conv_winograd_scratch_floats(const conv_direct_geom *g);

/* u = the transformed weights G g G^T of w (OCg, Cg, 3, 3), laid out as 16
 * matrices (Cg, OCg). With `flip`, as conv_direct_pack: w is the forward
 * conv's (Cg, OCg, 3, 3), taps reversed, and g describes the transposed
 * conv that gives its input gradient. */
void conv_winograd_pack(float *u, const float *w, bool flip, const conv_direct_geom *g);

/* out (OCg, H, W) = (or with `acc`, +=) conv of x (Cg, H, W) by the
 * transformed weights u. */
void conv_winograd_run(float *out, bool acc, const float *x, const float *u, float *scratch,
                       const conv_direct_geom *g);

/* Floats of scratch conv_winograd_dw needs. */
size_t conv_winograd_dw_scratch_floats(const conv_direct_geom *g);

/* dw (OCg, Cg, 3, 3) += the weight gradient of B samples and one group, as
 * conv_direct_dw: dout (OCg, H, W) of sample n at dout + n * dout_stride
 * against x (Cg, H, W) at x + n * x_stride. The same transforms run
 * backwards: the 16 products' gradients are (C x tiles) @ (tiles x OC)
 * over blocks of tiles that span samples, summed over the batch before one
 * transform back to 3x3 taps. */
void conv_winograd_dw(float *dw, const float *dout, int64_t dout_stride, const float *x,
                      int64_t x_stride, int B, float *scratch, const conv_direct_geom *g);

#endif
