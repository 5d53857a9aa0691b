/*
 * conv_direct.h - a same-geometry 2-D convolution (stride 1, output size =
 * input size: 3x3 pad 1, 7x7 pad 3, dilated alike) without im2col.
 *
 * The input is copied once into zero-bordered planes of row pitch W + 2 pad;
 * on that grid every kernel tap is one constant offset, so a register tile of
 * output channels x pixels accumulates over (channel, tap) with vector loads
 * straight from the planes and broadcast weights (AVX-512 or AVX2 + FMA,
 * chosen at run time). The im2col + sgemm path of ops_conv.c is the
 * reference twin: tests compare the two.
 */
#ifndef HEED_CORE_CONV_DIRECT_H
#define HEED_CORE_CONV_DIRECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One sample and group of a same-geometry conv: Cg input channels, OCg
 * output channels, (KH-1)*dil == (KW-1)*dil == 2*pad. */
typedef struct conv_direct_geom {
    int Cg, OCg, H, W, KH, KW, pad, dil;
} conv_direct_geom;

/* Whether this CPU has a kernel for g (AVX2 + FMA at least, and OCg a
 * multiple of the kernel's channel tile). HEED_CONV_IM2COL=1 in the
 * environment says no, for A/B runs against the im2col path. */
bool conv_direct_usable(const conv_direct_geom *g);
/* Which kernel runs: none (the im2col twin), the AVX2 one, or the best this
 * CPU has (the default). For tests; a level the CPU lacks means none. */
typedef enum conv_direct_level {
    CONV_DIRECT_OFF,
    CONV_DIRECT_AVX2,
    CONV_DIRECT_BEST
} conv_direct_level;
void conv_direct_set_level(conv_direct_level level);

/* Floats of packed weights and of scratch conv_direct_run needs. */
size_t conv_direct_packed_floats(const conv_direct_geom *g);
size_t conv_direct_scratch_floats(const conv_direct_geom *g);

/* wp = w (OCg, Cg, KH, KW) of one group, in the kernel's tile order. With
 * `flip`, the weights of the conv that gives the input gradient instead:
 * then w is the forward conv's (Cg, OCg, KH, KW) and g describes the
 * transposed conv (Cg and OCg swapped), kernel taps reversed. */
void conv_direct_pack(float *wp, const float *w, bool flip, const conv_direct_geom *g);

/* out (OCg, H, W) = (or with `acc`, +=) conv of x (Cg, H, W) by the packed
 * weights wp. */
void conv_direct_run(float *out, bool acc, const float *x, const float *wp, float *scratch,
                     const conv_direct_geom *g);

/* Whether conv_direct_dw has a kernel for g (conv_direct_usable, and OCg a
 * multiple of 8). */
bool conv_direct_dw_usable(const conv_direct_geom *g);

/* Floats of scratch conv_direct_dw needs. */
size_t conv_direct_dw_scratch_floats(const conv_direct_geom *g);

/* dw (OCg, Cg, KH, KW) += the weight gradient of B samples and one group:
 * dout (OCg, H, W) of sample n at dout + n * dout_stride against x (Cg, H,
 * W) at x + n * x_stride. */
void conv_direct_dw(float *dw, const float *dout, int64_t dout_stride, const float *x,
                    int64_t x_stride, int B, float *scratch, const conv_direct_geom *g);

/* The register tiles themselves, for convs that lay out their own planes
 * (conv_strided.c). conv_direct_tile_channels is the output-channel tile of
 * the kernel that runs (0: none, the im2col twin), conv_direct_plane_slack
 * the floats a plane needs after its last pixel for a tile's overrun.
 *
 * conv_direct_tile: out (OCg, H, W) = (with `acc`, +=) the sum over (c, k)
 * of wp[o][c][k] * xpad[c * plane + q + offs[k]] for q = oh * (W + 2 pad) +
 * ow, wp packed as conv_direct_pack does. conv_direct_dw_tile: dwt (Cg*KK,
 * OCg) += the sum over (oh, ow) of dt[oh * W + ow][o] * xpad[c * plane + oh *
 * pitch + ow + offs[k]]; conv_direct_dw_tile_usable says whether it has a
 * kernel for OCg. */
int conv_direct_tile_channels(void);
int conv_direct_plane_slack(void);
void conv_direct_tile(float *out, bool acc, const float *xpad, int64_t plane, const float *wp,
                      const int *offs, int Cg, int KK, int OCg, int H, int W, int pad);
bool conv_direct_dw_tile_usable(int OCg);
void conv_direct_dw_tile(float *dwt, const float *dt, const float *xpad, int64_t plane,
                         int64_t pitch, const int *offs, int Cg, int KK, int OCg, int H, int W);

#endif
