/*
 * conv_strided.h - a strided 2-D convolution (stride S >= 2, any zero
 * padding, no dilation) on the register tiles of conv_direct.c, without
 * im2col.
 *
 * The input is split into its S*S phases, x_(ph,pw)[i][j] = x[S i + ph][S j
 * + pw], each a zero-bordered plane on the output's pixel grid. Kernel tap
 * (kh, kw) then reads one phase at one constant offset, so the forward and
 * the weight gradient are the same-geometry tiles over the output grid with
 * a tap table, and the input gradient is, phase by phase, a stride-1 conv of
 * the output gradient with that phase's taps, scattered back into x's
 * pixels of that phase. The im2col + sgemm path of ops_conv.c is the
 * reference twin: tests compare the two.
 */
#ifndef HEED_CORE_CONV_STRIDED_H
#define HEED_CORE_CONV_STRIDED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One sample and group: Cg input channels of H x W, OCg output channels of
 * OH x OW, a KH x KW kernel at stride S with padding pad. */
typedef struct conv_strided_geom {
    int Cg, OCg, H, W, OH, OW, KH, KW, stride, pad;
} conv_strided_geom;

/* Whether the tiles serve g: a kernel on this CPU (conv_direct.h, which
 * HEED_CONV_IM2COL=1 turns off), stride >= 2, and channel counts that fill
 * its tiles (OCg for the forward and weight gradient, Cg for the input
 * gradient). */
bool conv_strided_usable(const conv_strided_geom *g);

/* Floats of packed forward weights (conv_direct_pack's layout) and of the
 * input gradient's packed weights. */
size_t conv_strided_packed_floats(const conv_strided_geom *g);
/* Floats of scratch that each of run, dw and dx needs (the largest). */
size_t conv_strided_scratch_floats(const conv_strided_geom *g);

/* wp = w (OCg, Cg, KH, KW) of one group, packed for conv_strided_run. */
void conv_strided_pack(float *wp, const float *w, const conv_strided_geom *g);
/* out (OCg, OH, OW) = (with `acc`, +=) the conv of x (Cg, H, W). */
void conv_strided_run(float *out, bool acc, const float *x, const float *wp, float *scratch,
                      const conv_strided_geom *g);

/* dw (OCg, Cg, KH, KW) += the weight gradient of B samples of one group:
 * dout (OCg, OH, OW) of sample n at dout + n * dout_stride against x (Cg, H,
 * W) at x + n * x_stride. */
void conv_strided_dw(float *dw, const float *dout, int64_t dout_stride, const float *x,
                     int64_t x_stride, int B, float *scratch, const conv_strided_geom *g);

/* wp = w (OCg, Cg, KH, KW) of one group, packed phase by phase for
 * conv_strided_dx. */
void conv_strided_dx_pack(float *wp, const float *w, const conv_strided_geom *g);
/* dx (Cg, H, W) += the input gradient of dout (OCg, OH, OW). */
void conv_strided_dx(float *dx, const float *dout, const float *wp, float *scratch,
                     const conv_strided_geom *g);

#endif
