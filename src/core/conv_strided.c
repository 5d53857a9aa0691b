#include "core/conv_strided.h"

#include "core/conv_direct.h"
#include "core/small_gemm.h"

#include <string.h>

enum { KK_MAX = 64 }; /* conv_direct.c's tap table */

static int floor_div(int a, int b) {
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

/* Tap k of a kernel dimension reads input row S * oh + (k - pad): phase
 * (k - pad) mod S at phase row oh + floor((k - pad) / S). */
static int tap_phase(int k, const conv_strided_geom *g) {
    int r = k - g->pad;
    return r - floor_div(r, g->stride) * g->stride;
}

static int tap_shift(int k, const conv_strided_geom *g) {
    return floor_div(k - g->pad, g->stride);
}

/* The zero border every phase plane carries: the largest tap shift either
 * way, so that the tiles read each tap at a constant offset. */
static int phase_border(const conv_strided_geom *g) {
    int K = g->KH > g->KW ? g->KH : g->KW;
    int lo = -tap_shift(0, g), hi = tap_shift(K - 1, g);
    int b = lo > hi ? lo : hi;
    return b > 0 ? b : 0;
}

/* A grid of H x W pixels with a zero border b on every side: the tiles'
 * layout for pad = b. */
typedef struct grid {
    int H, W, b;
    int64_t pitch, sub; /* floats of one row and of one bordered plane */
} grid;

static grid grid_of(int H, int W, int b) {
    int64_t pitch = (int64_t)W + 2 * b;
    return (grid){H, W, b, pitch, ((int64_t)H + 2 * b) * pitch};
}

/* Whether some tap of the kernel reads phase (ph, pw): a kernel smaller
 * than its stride (1x1 at stride 2) reads only some. */
static bool phase_used(int ph, int pw, const conv_strided_geom *g) {
    bool rows = false, cols = false;
    for (int k = 0; k < g->KH; k++)
        rows = rows || tap_phase(k, g) == ph;
    for (int k = 0; k < g->KW; k++)
        cols = cols || tap_phase(k, g) == pw;
    return rows && cols;
}

/* The forward's planes of one channel, the phases that taps read, in
 * order; slot[ph * S + pw] = the phase's plane, or -1. */
static int phase_slots(int *slot, const conv_strided_geom *g) {
    int S = g->stride, n = 0;
    for (int p = 0; p < S * S; p++)
        slot[p] = phase_used(p / S, p % S, g) ? n++ : -1;
    return n;
}

/* The forward's grid: the output's pixels; one channel holds a plane of
 * them per phase read. */
static grid out_grid(const conv_strided_geom *g) {
    return grid_of(g->OH, g->OW, phase_border(g));
}

/* The input gradient's grid: the pixels of the largest phase (phase 0). */
static grid phase_grid(const conv_strided_geom *g) {
    int S = g->stride;
    return grid_of((g->H + S - 1) / S, (g->W + S - 1) / S, phase_border(g));
}

/* Floats between channels: `planes` bordered planes, then the slack of a
 * tile that overruns the last one. */
static int64_t channel_floats(const grid *gr, int planes) {
    return planes * gr->sub + 2 * gr->b + conv_direct_plane_slack();
}

/* Floats between channels of the forward's planes. */
static int64_t phase_channel_floats(const conv_strided_geom *g) {
    grid og = out_grid(g);
    int slot[KK_MAX];
    return channel_floats(&og, phase_slots(slot, g));
}

/* Rows (or columns) of phase p of an n-pixel dimension at stride S. */
static int phase_extent(int n, int p, int S) {
    return n > p ? (n - p + S - 1) / S : 0;
}

bool conv_strided_usable(const conv_strided_geom *g) {
    int ob = conv_direct_tile_channels();
    return ob > 0 && g->stride >= 2 && g->KH * g->KW <= KK_MAX && g->stride * g->stride <= KK_MAX &&
           g->OCg % ob == 0 && g->Cg % ob == 0 && conv_direct_dw_tile_usable(g->OCg);
}

size_t conv_strided_packed_floats(const conv_strided_geom *g) {
    return (size_t)g->OCg * g->Cg * g->KH * g->KW;
}

size_t conv_strided_scratch_floats(const conv_strided_geom *g) {
    grid pg = phase_grid(g);
    int64_t ohw = (int64_t)g->OH * g->OW, ck = (int64_t)g->Cg * g->KH * g->KW;
    int64_t phases = g->Cg * phase_channel_floats(g);
    int64_t dw = phases + (ohw + ck) * g->OCg;
    int64_t dx = g->OCg * channel_floats(&pg, 1) + (int64_t)g->Cg * pg.H * pg.W;
    return (size_t)(dw > dx ? dw : dx);
}

void conv_strided_pack(float *wp, const float *w, const conv_strided_geom *g) {
    conv_direct_geom dg = {g->Cg, g->OCg, g->H, g->W, g->KH, g->KW, g->pad, 1};
    conv_direct_pack(wp, w, false, &dg);
}

/* xp = the bordered planes of each channel of x (Cg, H, W) on the output
 * grid, one per phase read; offs = each tap's offset in its channel.
 * Returns the floats between channels. */
static int64_t fill_phases(float *xp, int *offs, const float *x, const conv_strided_geom *g) {
    grid og = out_grid(g);
    int S = g->stride, b = og.b, slot[KK_MAX];
    int64_t chan = channel_floats(&og, phase_slots(slot, g)), hw = (int64_t)g->H * g->W;
    /* rows and columns past the border are never read */
    int max_rows = og.H + b, max_cols = og.W + b;
    memset(xp, 0, sizeof(float) * g->Cg * chan);
    for (int c = 0; c < g->Cg; c++)
        for (int ph = 0; ph < S; ph++)
            for (int pw = 0; pw < S; pw++) {
                if (slot[ph * S + pw] < 0)
                    continue;
                float *sub = xp + c * chan + slot[ph * S + pw] * og.sub + b * og.pitch + b;
                int rows = phase_extent(g->H, ph, S), cols = phase_extent(g->W, pw, S);
                rows = rows < max_rows ? rows : max_rows;
                cols = cols < max_cols ? cols : max_cols;
                for (int i = 0; i < rows; i++) {
                    const float *xr = x + c * hw + (int64_t)(S * i + ph) * g->W + pw;
                    float *r = sub + i * og.pitch;
                    for (int j = 0; j < cols; j++)
                        r[j] = xr[S * j];
                }
            }
    for (int kh = 0; kh < g->KH; kh++)
        for (int kw = 0; kw < g->KW; kw++) {
            int phase = slot[tap_phase(kh, g) * S + tap_phase(kw, g)];
            offs[kh * g->KW + kw] =
                (int)(phase * og.sub + (b + tap_shift(kh, g)) * og.pitch + b + tap_shift(kw, g));
        }
    return chan;
}

void conv_strided_run(float *out, bool acc, const float *x, const float *wp, float *scratch,
                      const conv_strided_geom *g) {
    grid og = out_grid(g);
    int offs[KK_MAX];
    int64_t chan = fill_phases(scratch, offs, x, g);
    conv_direct_tile(out, acc, scratch, chan, wp, offs, g->Cg, g->KH * g->KW, g->OCg, g->OH, g->OW,
                     og.b);
}

void conv_strided_dw(float *dw, const float *dout, int64_t dout_stride, const float *x,
                     int64_t x_stride, int B, float *scratch, const conv_strided_geom *g) {
    grid og = out_grid(g);
    int KK = g->KH * g->KW, CK = g->Cg * KK, OCg = g->OCg;
    int64_t ohw = (int64_t)g->OH * g->OW, chan = phase_channel_floats(g);
    int offs[KK_MAX];
    float *xp = scratch, *dt = xp + g->Cg * chan, *dwt = dt + ohw * OCg;
    memset(dwt, 0, sizeof(float) * CK * OCg);
    for (int n = 0; n < B; n++) {
        fill_phases(xp, offs, x + n * x_stride, g);
        small_transpose(dt, dout + n * dout_stride, OCg, (int)ohw, (int)ohw);
        conv_direct_dw_tile(dwt, dt, xp, chan, og.pitch, offs, g->Cg, KK, OCg, g->OH, g->OW);
    }
    for (int o = 0; o < OCg; o++)
        for (int j = 0; j < CK; j++)
            dw[(int64_t)o * CK + j] += dwt[(int64_t)j * OCg + o];
}

/* The taps of phase (ph, pw), in (kh, kw) order: their count, and each
 * one's offset on the input gradient's grid of padded dout planes (phase
 * pixel (i, j) reads dout at (i - shift_h, j - shift_w)). */
static int phase_taps(int *kidx, int *offs, int ph, int pw, const conv_strided_geom *g) {
    grid pg = phase_grid(g);
    int n = 0;
    for (int kh = 0; kh < g->KH; kh++)
        for (int kw = 0; kw < g->KW; kw++) {
            if (tap_phase(kh, g) != ph || tap_phase(kw, g) != pw)
                continue;
            kidx[n] = kh * g->KW + kw;
            offs[n] = (int)((pg.b - tap_shift(kh, g)) * pg.pitch + pg.b - tap_shift(kw, g));
            n++;
        }
    return n;
}

void conv_strided_dx_pack(float *wp, const float *w, const conv_strided_geom *g) {
    int ob = conv_direct_tile_channels(), S = g->stride, KK = g->KH * g->KW;
    int kidx[KK_MAX], offs[KK_MAX];
    for (int ph = 0; ph < S; ph++)
        for (int pw = 0; pw < S; pw++) {
            /* the conv of this phase: dout's OCg channels in, the Cg of dx out */
            int n = phase_taps(kidx, offs, ph, pw, g);
            for (int c = 0; c < g->Cg; c++)
                for (int o = 0; o < g->OCg; o++)
                    for (int t = 0; t < n; t++) {
                        int64_t tile = c / ob, i = c % ob;
                        wp[((tile * g->OCg + o) * n + t) * ob + i] =
                            w[((int64_t)o * g->Cg + c) * KK + kidx[t]];
                    }
            wp += (int64_t)g->OCg * g->Cg * n;
        }
}

void conv_strided_dx(float *dx, const float *dout, const float *wp, float *scratch,
                     const conv_strided_geom *g) {
    grid pg = phase_grid(g);
    int S = g->stride, kidx[KK_MAX], offs[KK_MAX];
    int64_t chan = channel_floats(&pg, 1), ohw = (int64_t)g->OH * g->OW, hw = (int64_t)g->H * g->W,
            phw = (int64_t)pg.H * pg.W;
    float *dpad = scratch, *buf = dpad + g->OCg * chan;
    /* dout's planes on the phase grid; rows and columns past the border
     * are never read */
    int rows = g->OH < pg.H + pg.b ? g->OH : pg.H + pg.b,
        cols = g->OW < pg.W + pg.b ? g->OW : pg.W + pg.b;
    memset(dpad, 0, sizeof(float) * g->OCg * chan);
    for (int o = 0; o < g->OCg; o++)
        for (int i = 0; i < rows; i++)
            memcpy(dpad + o * chan + (pg.b + i) * pg.pitch + pg.b, dout + o * ohw + i * g->OW,
                   sizeof(float) * cols);
    for (int ph = 0; ph < S; ph++)
        for (int pw = 0; pw < S; pw++) {
            int n = phase_taps(kidx, offs, ph, pw, g);
            if (n == 0)
                continue;
            conv_direct_tile(buf, false, dpad, chan, wp, offs, g->OCg, n, g->Cg, pg.H, pg.W, pg.b);
            wp += (int64_t)g->OCg * g->Cg * n;
            int prow = phase_extent(g->H, ph, S), pcol = phase_extent(g->W, pw, S);
            for (int c = 0; c < g->Cg; c++)
                for (int i = 0; i < prow; i++) {
                    const float *r = buf + c * phw + i * pg.W;
                    float *xr = dx + c * hw + (int64_t)(S * i + ph) * g->W + pw;
                    for (int j = 0; j < pcol; j++)
                        xr[S * j] += r[j];
                }
        }
}
