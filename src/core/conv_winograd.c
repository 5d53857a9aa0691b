#include "core/conv_winograd.h"

#include "core/fastmath.h"
#include "core/small_gemm.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The transforms run over 8 channels at a time (C % 8 == 0). */
typedef float wino8 __attribute__((vector_size(8 * sizeof(float))));

/* Transformed patches and products of one block of tiles stay in L2:
 * 16 * tiles * channels floats each. */
enum { BLOCK_FLOATS = 1 << 15 };
/* The 16 matrices of a block (patches, products) start a cache line apart from a multiple of
 * 4 KB: the transforms write all 16 at once, and at power-of-two strides
 * those streams fall into one L1 set. */
enum { SKEW = 16 };

/* Fewer channels than this on either side: the direct kernels are faster. */
enum { AUTO_MIN_CHANNELS = 32 };

static int mode = -1; /* -1: not yet read from the environment */

void conv_winograd_set_mode(conv_winograd_mode m) {
    mode = (int)m;
}

bool conv_winograd_usable(const conv_direct_geom *g) {
    if (mode < 0) {
        const char *e = getenv("HEED_CONV_WINOGRAD");
        mode = e && strcmp(e, "0") == 0 ? CONV_WINOGRAD_OFF : CONV_WINOGRAD_AUTO;
    }
    bool shape =
        g->KH == 3 && g->KW == 3 && g->pad == 1 && g->dil == 1 && g->Cg % 8 == 0 && g->OCg % 8 == 0;
    bool pays = g->Cg >= AUTO_MIN_CHANNELS && g->OCg >= AUTO_MIN_CHANNELS;
    return shape && (mode == CONV_WINOGRAD_ALWAYS || (mode == CONV_WINOGRAD_AUTO && pays));
}

/* The tile grid: th x tw tiles of 2x2 output pixels; the zero-bordered
 * input grid is (2 th + 2) x (2 tw + 2) pixels of Cg floats. */
typedef struct wino_dims {
    int th, tw, hp, wp, nb; /* nb: tile rows per block */
} wino_dims;

static wino_dims wino_dims_of(const conv_direct_geom *g) {
    wino_dims d = {(g->H + 1) / 2, (g->W + 1) / 2, 0, 0, 0};
    d.hp = 2 * d.th + 2;
    d.wp = 2 * d.tw + 2;
    int ch = g->Cg > g->OCg ? g->Cg : g->OCg;
    d.nb = BLOCK_FLOATS / (16 * d.tw * ch);
    d.nb = d.nb < 1 ? 1 : (d.nb > d.th ? d.th : d.nb);
    return d;
}

static size_t plane_floats(const conv_direct_geom *g);

size_t conv_winograd_packed_floats(const conv_direct_geom *g) {
    return (size_t)16 * g->Cg * g->OCg;
}

size_t conv_winograd_scratch_floats(const conv_direct_geom *g) {
    wino_dims d = wino_dims_of(g);
    size_t tiles = (size_t)d.nb * d.tw;
    return (size_t)d.hp * d.wp * g->Cg + 16 * (tiles * (g->Cg + g->OCg) + 2 * SKEW) +
           (size_t)4 * tiles * g->OCg + plane_floats(g);
}

void conv_winograd_pack(float *u, const float *w, bool flip, const conv_direct_geom *g) {
    int C = g->Cg, OC = g->OCg;
    /* 16 output channels at a time into buf, then 16 whole lines of u: its
     * 16 matrices lie a power of two apart, and element-wise writes to all
     * 16 at once fight over one L1 set */
    enum { OB = 16 };
    float buf[16][OB];
    for (int c = 0; c < C; c++)
        for (int o0 = 0; o0 < OC; o0 += OB) {
            int no = OC - o0 < OB ? OC - o0 : OB;
            for (int oi = 0; oi < no; oi++) {
                int o = o0 + oi;
                float k[3][3], t[4][3];
                for (int i = 0; i < 9; i++)
                    k[i / 3][i % 3] = flip ? w[((int64_t)c * OC + o) * 9 + (8 - i)]
                                           : w[((int64_t)o * C + c) * 9 + i];
                /* t = G k, G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1] */
                for (int s = 0; s < 3; s++) {
                    t[0][s] = k[0][s];
                    t[1][s] = 0.5f * (k[0][s] + k[1][s] + k[2][s]);
                    t[2][s] = 0.5f * (k[0][s] - k[1][s] + k[2][s]);
                    t[3][s] = k[2][s];
                }
                /* u = t G^T */
                for (int r = 0; r < 4; r++) {
                    buf[r * 4 + 0][oi] = t[r][0];
                    buf[r * 4 + 1][oi] = 0.5f * (t[r][0] + t[r][1] + t[r][2]);
                    buf[r * 4 + 2][oi] = 0.5f * (t[r][0] - t[r][1] + t[r][2]);
                    buf[r * 4 + 3][oi] = t[r][2];
                }
            }
            for (int xi = 0; xi < 16; xi++)
                memcpy(u + ((int64_t)xi * C + c) * OC + o0, buf[xi], sizeof(float) * no);
        }
}

/* xt (hp, wp, C) = x (C, H, W) channel-last, pixel (ih, iw) of x at grid
 * pixel (ih + border, iw + border), zeros around it. The whole plane is
 * transposed at once into tmp (H W C floats), then placed row by row: a
 * row of 7 or 14 pixels is too short for 8x8 transpose blocks. */
static void wino_fill_grid(float *xt, float *tmp, const float *x, int C, int H, int W, int border,
                           int hp, int wp) {
    int64_t row = (int64_t)wp * C, wc = (int64_t)W * C;
    small_transpose(tmp, x, C, H * W, H * W);
    memset(xt, 0, sizeof(float) * border * row);
    for (int ih = 0; ih < H; ih++) {
        float *r = xt + (ih + border) * row;
        memset(r, 0, sizeof(float) * border * C);
        memcpy(r + border * C, tmp + ih * wc, sizeof(float) * wc);
        memset(r + (int64_t)(W + border) * C, 0, sizeof(float) * (wp - W - border) * C);
    }
    memset(xt + (H + border) * row, 0, sizeof(float) * (hp - H - border) * row);
}

/* Floats of wino_fill_grid's tmp for either side of g. */
static size_t plane_floats(const conv_direct_geom *g) {
    return (size_t)g->H * g->W * (g->Cg > g->OCg ? g->Cg : g->OCg);
}

static inline void w8_load(wino8 *v, const float *p) {
    memcpy(v, p, sizeof *v);
}

static inline void w8_store(float *p, const wino8 *v) {
    memcpy(p, v, sizeof *v);
}

/* v[xi * xs + t * C + c] = (B^T d B)[xi] for the tiles t of tile rows
 * i0..i0+nr-1, d their 4x4 patches of xt;
 * B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]. */
HEED_SIMD_CLONES static void wino_input_transform(float *v, int64_t xs, const float *xt, int i0,
                                                  int nr, int tw, int wp, int C) {
    int64_t row = (int64_t)wp * C;
    for (int i = 0; i < nr; i++)
        for (int j = 0; j < tw; j++) {
            const float *p = xt + 2 * (i0 + i) * row + 2 * j * C;
            float *vt = v + ((int64_t)i * tw + j) * C;
            for (int c = 0; c < C; c += 8) {
                wino8 a[4][4], b[4][4];
                for (int r = 0; r < 4; r++)
                    for (int s = 0; s < 4; s++)
                        w8_load(&a[r][s], p + r * row + s * C + c);
                for (int s = 0; s < 4; s++) {
                    b[0][s] = a[0][s] - a[2][s];
                    b[1][s] = a[1][s] + a[2][s];
                    b[2][s] = a[2][s] - a[1][s];
                    b[3][s] = a[1][s] - a[3][s];
                }
                for (int r = 0; r < 4; r++) {
                    wino8 o[4] = {b[r][0] - b[r][2], b[r][1] + b[r][2], b[r][2] - b[r][1],
                                  b[r][1] - b[r][3]};
                    for (int s = 0; s < 4; s++)
                        w8_store(vt + (r * 4 + s) * xs + c, &o[s]);
                }
            }
        }
}

/* yt (2 nr, 2 tw, OC) = A^T m A of each tile's 16 products
 * m[xi * ms + t * OC + o]; A^T = [1 1 1 0; 0 1 -1 -1]. */
HEED_SIMD_CLONES static void wino_output_transform(float *yt, const float *m, int64_t ms, int nr,
                                                   int tw, int OC) {
    int64_t row = (int64_t)2 * tw * OC;
    for (int i = 0; i < nr; i++)
        for (int j = 0; j < tw; j++) {
            const float *mt = m + ((int64_t)i * tw + j) * OC;
            float *y = yt + 2 * i * row + 2 * j * OC;
            for (int o = 0; o < OC; o += 8) {
                wino8 a[4][4], b[2][4];
                for (int r = 0; r < 4; r++)
                    for (int s = 0; s < 4; s++)
                        w8_load(&a[r][s], mt + (r * 4 + s) * ms + o);
                for (int s = 0; s < 4; s++) {
                    b[0][s] = a[0][s] + a[1][s] + a[2][s];
                    b[1][s] = a[1][s] - a[2][s] - a[3][s];
                }
                for (int r = 0; r < 2; r++) {
                    wino8 y0 = b[r][0] + b[r][1] + b[r][2], y1 = b[r][1] - b[r][2] - b[r][3];
                    w8_store(y + r * row + o, &y0);
                    w8_store(y + r * row + OC + o, &y1);
                }
            }
        }
}

/* out (OC, H, W) rows oh0..oh1-1 = (or with `acc`, +=) yt's channel-last
 * rows, cropped to W columns. Those rows are one run of each output plane,
 * so once yt's rows are packed to W pixels (odd W: the last tile column
 * dropped, in place) it is one transpose of (pixels, OC). */
static void wino_store_rows(float *out, bool acc, float *yt, int oh0, int oh1, int tw,
                            const conv_direct_geom *g) {
    int OC = g->OCg, W = g->W;
    int64_t wc = (int64_t)W * OC;
    if (W != 2 * tw)
        for (int r = 1; r < oh1 - oh0; r++)
            memmove(yt + r * wc, yt + (int64_t)r * 2 * tw * OC, sizeof(float) * wc);
    small_transpose_to(out + (int64_t)oh0 * W, (int64_t)g->H * W, acc, yt, OC, (oh1 - oh0) * W, OC);
}

void conv_winograd_run(float *out, bool acc, const float *x, const float *u, float *scratch,
                       const conv_direct_geom *g) {
    wino_dims d = wino_dims_of(g);
    int C = g->Cg, OC = g->OCg;
    int64_t tiles = (int64_t)d.nb * d.tw, vs = tiles * C + SKEW, ms = tiles * OC + SKEW;
    float *xt = scratch, *v = xt + (size_t)d.hp * d.wp * C, *m = v + 16 * vs, *yt = m + 16 * ms,
          *tmp = yt + 4 * tiles * OC;
    wino_fill_grid(xt, tmp, x, C, g->H, g->W, 1, d.hp, d.wp);
    for (int i0 = 0; i0 < d.th; i0 += d.nb) {
        int nr = d.th - i0 < d.nb ? d.th - i0 : d.nb, nt = nr * d.tw;
        wino_input_transform(v, vs, xt, i0, nr, d.tw, d.wp, C);
        for (int xi = 0; xi < 16; xi++)
            small_gemm(false, nt, OC, C, 1.0f, v + xi * vs, C, u + (int64_t)xi * C * OC, OC, false,
                       m + xi * ms, OC);
        wino_output_transform(yt, m, ms, nr, d.tw, OC);
        int oh1 = 2 * (i0 + nr) < g->H ? 2 * (i0 + nr) : g->H;
        wino_store_rows(out, acc, yt, 2 * i0, oh1, d.tw, g);
    }
}

/* ---- weight gradient ---------------------------------------------------- */

/* Transformed patches and output gradients of one block of tiles, which
 * may span several samples (a 7x7 map has 16 tiles): 16 * tiles * (C + OC)
 * floats, the K of the block's 16 products. */
enum { DW_BLOCK_FLOATS = 1 << 17 };

/* Tiles per block of conv_winograd_dw: at least one tile row. */
static int wino_dw_block_tiles(const conv_direct_geom *g, const wino_dims *d) {
    int cap = DW_BLOCK_FLOATS / (16 * (g->Cg + g->OCg));
    return cap < d->tw ? d->tw : cap;
}

size_t conv_winograd_dw_scratch_floats(const conv_direct_geom *g) {
    wino_dims d = wino_dims_of(g);
    size_t cap = (size_t)wino_dw_block_tiles(g, &d);
    return (size_t)16 * g->Cg * g->OCg + (size_t)d.hp * d.wp * g->Cg +
           (size_t)4 * d.th * d.tw * g->OCg + 16 * (cap * (size_t)(g->Cg + g->OCg) + 2 * SKEW) +
           plane_floats(g);
}

/* m[xi * ms + t * OC + o] = (A dy A^T)[xi] for the tiles t of tile rows
 * i0..i0+nr-1, dy their 2x2 output gradients in yt (2 th, 2 tw, OC): the
 * gradient of the products, given that of the outputs A^T m A. */
HEED_SIMD_CLONES static void wino_grad_transform(float *m, int64_t ms, const float *yt, int i0,
                                                 int nr, int tw, int OC) {
    int64_t row = (int64_t)2 * tw * OC;
    for (int i = 0; i < nr; i++)
        for (int j = 0; j < tw; j++) {
            const float *y = yt + 2 * (i0 + i) * row + 2 * j * OC;
            float *mt = m + ((int64_t)i * tw + j) * OC;
            for (int o = 0; o < OC; o += 8) {
                wino8 a[2][2], b[4][2];
                for (int r = 0; r < 2; r++)
                    for (int s = 0; s < 2; s++)
                        w8_load(&a[r][s], y + r * row + s * OC + o);
                /* A = [1 0; 1 1; 1 -1; 0 -1] on both sides */
                for (int s = 0; s < 2; s++) {
                    b[0][s] = a[0][s];
                    b[1][s] = a[0][s] + a[1][s];
                    b[2][s] = a[0][s] - a[1][s];
                    b[3][s] = -a[1][s];
                }
                for (int r = 0; r < 4; r++) {
                    wino8 q[4] = {b[r][0], b[r][0] + b[r][1], b[r][0] - b[r][1], -b[r][1]};
                    for (int s = 0; s < 4; s++)
                        w8_store(mt + (r * 4 + s) * ms + o, &q[s]);
                }
            }
        }
}

/* dw (OC, C, 3, 3) += G^T du G of each (o, c), du the 16 matrices (C, OC)
 * of transformed-weight gradients. */
static void wino_dw_unpack(float *dw, const float *du, int C, int OC) {
    int64_t xs = (int64_t)C * OC;
    for (int c = 0; c < C; c++)
        for (int o = 0; o < OC; o++) {
            float a[4][4], t[3][4];
            for (int xi = 0; xi < 16; xi++)
                a[xi / 4][xi % 4] = du[xi * xs + (int64_t)c * OC + o];
            /* t = G^T a, G^T = [1 1/2 1/2 0; 0 1/2 -1/2 0; 0 1/2 1/2 1] */
            for (int s = 0; s < 4; s++) {
                t[0][s] = a[0][s] + 0.5f * (a[1][s] + a[2][s]);
                t[1][s] = 0.5f * (a[1][s] - a[2][s]);
                t[2][s] = 0.5f * (a[1][s] + a[2][s]) + a[3][s];
            }
            float *k = dw + ((int64_t)o * C + c) * 9;
            for (int r = 0; r < 3; r++) {
                k[r * 3 + 0] += t[r][0] + 0.5f * (t[r][1] + t[r][2]);
                k[r * 3 + 1] += 0.5f * (t[r][1] - t[r][2]);
                k[r * 3 + 2] += 0.5f * (t[r][1] + t[r][2]) + t[r][3];
            }
        }
}

void conv_winograd_dw(float *dw, const float *dout, int64_t dout_stride, const float *x,
                      int64_t x_stride, int B, float *scratch, const conv_direct_geom *g) {
    wino_dims d = wino_dims_of(g);
    int C = g->Cg, OC = g->OCg, cap = wino_dw_block_tiles(g, &d);
    /* a whole sample per unit when it fits, else blocks of tile rows */
    int unit_rows = d.th * d.tw <= cap ? d.th : cap / d.tw;
    int64_t vs = (int64_t)cap * C + SKEW, ms = (int64_t)cap * OC + SKEW, us = (int64_t)C * OC;
    float *du = scratch, *xt = du + 16 * us, *yt = xt + (size_t)d.hp * d.wp * C,
          *v = yt + (size_t)4 * d.th * d.tw * OC, *m = v + 16 * vs, *tmp = m + 16 * ms;
    memset(du, 0, sizeof(float) * 16 * us);
    int filled = 0; /* tiles of the block so far */
    for (int n = 0; n < B; n++) {
        wino_fill_grid(xt, tmp, x + n * x_stride, C, g->H, g->W, 1, d.hp, d.wp);
        wino_fill_grid(yt, tmp, dout + n * dout_stride, OC, g->H, g->W, 0, 2 * d.th, 2 * d.tw);
        for (int i0 = 0; i0 < d.th; i0 += unit_rows) {
            int nr = d.th - i0 < unit_rows ? d.th - i0 : unit_rows;
            if (filled + nr * d.tw > cap) {
                for (int xi = 0; xi < 16; xi++)
                    small_gemm(true, C, OC, filled, 1.0f, v + xi * vs, C, m + xi * ms, OC, true,
                               du + xi * us, OC);
                filled = 0;
            }
            wino_input_transform(v + (int64_t)filled * C, vs, xt, i0, nr, d.tw, d.wp, C);
            wino_grad_transform(m + (int64_t)filled * OC, ms, yt, i0, nr, d.tw, OC);
            filled += nr * d.tw;
        }
    }
    for (int xi = 0; xi < 16 && filled > 0; xi++)
        small_gemm(true, C, OC, filled, 1.0f, v + xi * vs, C, m + xi * ms, OC, true, du + xi * us,
                   OC);
    wino_dw_unpack(dw, du, C, OC);
}
