#include "core/conv_direct.h"

#include "core/small_gemm.h"

#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The largest pixel tile (VL * NV) of any kernel below: the planes carry
 * this much zeroed slack so that a tile may run past the last pixel. */
enum { TILE_Q_MAX = 32, KK_MAX = 64 };

/* lanes lo..hi-1 (0 <= lo, hi <= lanes) */
static inline __mmask16 range_mask512(int lo, int hi) {
    return (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
}

__attribute__((target("avx2,fma"))) static inline __m256i range_mask256(int lo, int hi) {
    __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_and_si256(_mm256_cmpgt_epi32(lane, _mm256_set1_epi32(lo - 1)),
                            _mm256_cmpgt_epi32(_mm256_set1_epi32(hi), lane));
}

#define KERNEL conv_tile_avx512
#define KERNEL_DW conv_dw_tile_avx512
#define JT 9
#define ADD(a, b) _mm512_add_ps((a), (b))
#define MASK __mmask16
#define RANGE_MASK(lo, hi) range_mask512((lo), (hi))
#define MLOAD(p, m) _mm512_maskz_loadu_ps((m), (p))
#define MSTORE(p, m, v) _mm512_mask_storeu_ps((p), (m), (v))
#define TARGET "avx512f"
#define VEC __m512
#define VL 16
#define OB 8
#define NV 2
#define LOAD(p) _mm512_loadu_ps(p)
#define STORE(p, v) _mm512_storeu_ps((p), (v))
#define BCAST(p) _mm512_set1_ps(*(p))
#define FMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define ZERO() _mm512_setzero_ps()
#include "core/conv_direct_kernel.h" /* undefines the parameters */

#define KERNEL conv_tile_avx2
#define KERNEL_DW conv_dw_tile_avx2
#define JT 9
#define ADD(a, b) _mm256_add_ps((a), (b))
#define MASK __m256i
#define RANGE_MASK(lo, hi) range_mask256((lo), (hi))
#define MLOAD(p, m) _mm256_maskload_ps((p), (m))
#define MSTORE(p, m, v) _mm256_maskstore_ps((p), (m), (v))
#define TARGET "avx2,fma"
#define VEC __m256
#define VL 8
#define OB 4
#define NV 3
#define LOAD(p) _mm256_loadu_ps(p)
#define STORE(p, v) _mm256_storeu_ps((p), (v))
#define BCAST(p) _mm256_broadcast_ss(p)
#define FMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define ZERO() _mm256_setzero_ps()
#include "core/conv_direct_kernel.h" /* undefines the parameters */

typedef void (*tile_fn)(float *out, bool acc, const float *xpad, int64_t plane, const float *wp,
                        const int *offs, int Cg, int KK, int OCg, int64_t nq, int H, int W,
                        int pad);

typedef void (*dw_tile_fn)(float *dwt, const float *dt, const float *xpad, int64_t plane,
                           int64_t pitch, const int *offs, int Cg, int KK, int OCg, int H, int W);

typedef struct isa {
    tile_fn fn; /* NULL: no kernel on this CPU */
    dw_tile_fn dw_fn;
    int ob, tile_q, vl; /* vl: output channels per weight-gradient vector */
} isa;

static conv_direct_level level = CONV_DIRECT_BEST;

void conv_direct_set_level(conv_direct_level l) {
    level = l;
}

static const isa isa_avx512 = {conv_tile_avx512, conv_dw_tile_avx512, 8, 32, 16},
                 isa_avx2 = {conv_tile_avx2, conv_dw_tile_avx2, 4, 24, 8},
                 isa_none = {NULL, NULL, 0, 0, 0};

/* The best kernel is resolved once; every rank of a run resolves the same on
 * the same CPU type, as OpenBLAS's own kernel choice does. */
static isa isa_get(void) {
    static int resolved;
    static isa best;
    if (!resolved) {
        const char *off = getenv("HEED_CONV_IM2COL");
        if (off && strcmp(off, "1") == 0)
            best = isa_none;
        else if (__builtin_cpu_supports("avx512f"))
            best = isa_avx512;
        else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
            best = isa_avx2;
        else
            best = isa_none;
        resolved = 1;
    }
    if (level == CONV_DIRECT_OFF || !best.fn)
        return isa_none;
    return level == CONV_DIRECT_AVX2 ? isa_avx2 : best;
}

static int64_t pitch(const conv_direct_geom *g) {
    return (int64_t)g->W + 2 * g->pad;
}

/* One zero-bordered input plane, plus slack for a tile's overrun. */
static int64_t plane_floats(const conv_direct_geom *g) {
    int64_t hp = (int64_t)g->H + 2 * g->pad;
    return hp * pitch(g) + 2 * g->pad + TILE_Q_MAX;
}

bool conv_direct_usable(const conv_direct_geom *g) {
    isa k = isa_get();
    int KK = g->KH * g->KW;
    return k.fn && g->OCg % k.ob == 0 && KK <= KK_MAX && (g->KH - 1) * g->dil == 2 * g->pad &&
           (g->KW - 1) * g->dil == 2 * g->pad;
}

size_t conv_direct_packed_floats(const conv_direct_geom *g) {
    return (size_t)g->OCg * g->Cg * g->KH * g->KW;
}

size_t conv_direct_scratch_floats(const conv_direct_geom *g) {
    return (size_t)(g->Cg * plane_floats(g));
}

void conv_direct_pack(float *wp, const float *w, bool flip, const conv_direct_geom *g) {
    int ob = isa_get().ob, KK = g->KH * g->KW;
    for (int o = 0; o < g->OCg; o++)
        for (int c = 0; c < g->Cg; c++)
            for (int k = 0; k < KK; k++) {
                /* flip: w is (Cg, OCg, KK) of the forward conv, taps reversed */
                float v = flip ? w[((int64_t)c * g->OCg + o) * KK + (KK - 1 - k)]
                               : w[((int64_t)o * g->Cg + c) * KK + k];
                int64_t tile = o / ob, i = o % ob;
                wp[((tile * g->Cg + c) * KK + k) * ob + i] = v;
            }
}

/* xpad = the Cg planes of x (Cg, H, W), zero-bordered, with their slack;
 * offs = the grid offset of each kernel tap. */
static void pad_planes(float *xpad, int *offs, const float *x, const conv_direct_geom *g) {
    int P = g->pad;
    int64_t Wp = pitch(g), plane = plane_floats(g), hw = (int64_t)g->H * g->W;
    for (int c = 0; c < g->Cg; c++) {
        /* rows are contiguous: each row's right border and the next row's
         * left border are one run of 2P zeros */
        float *pc = xpad + c * plane, *end = pc + plane;
        memset(pc, 0, sizeof(float) * (P * Wp + P));
        pc += P * Wp + P;
        for (int ih = 0; ih < g->H; ih++, pc += Wp) {
            memcpy(pc, x + c * hw + (int64_t)ih * g->W, sizeof(float) * g->W);
            memset(pc + g->W, 0, sizeof(float) * 2 * P);
        }
        memset(pc, 0, sizeof(float) * (end - pc));
    }
    for (int kh = 0; kh < g->KH; kh++)
        for (int kw = 0; kw < g->KW; kw++)
            offs[kh * g->KW + kw] = (int)((int64_t)kh * g->dil * Wp + kw * g->dil);
}

void conv_direct_run(float *out, bool acc, const float *x, const float *wp, float *scratch,
                     const conv_direct_geom *g) {
    int offs[KK_MAX];
    pad_planes(scratch, offs, x, g);
    conv_direct_tile(out, acc, scratch, plane_floats(g), wp, offs, g->Cg, g->KH * g->KW, g->OCg,
                     g->H, g->W, g->pad);
}

/* The weight-gradient kernel for OCg output channels: the widest whose
 * vector of output channels divides OCg (the AVX2 one runs on AVX-512 CPUs
 * too). */
static isa dw_isa(int OCg) {
    isa k = isa_get();
    if (k.fn && OCg % k.vl != 0)
        k = isa_avx2;
    return k.fn && OCg % k.vl == 0 ? k : isa_none;
}

bool conv_direct_dw_usable(const conv_direct_geom *g) {
    return conv_direct_usable(g) && dw_isa(g->OCg).fn;
}

int conv_direct_tile_channels(void) {
    return isa_get().ob;
}

int conv_direct_plane_slack(void) {
    return TILE_Q_MAX;
}

void conv_direct_tile(float *out, bool acc, const float *xpad, int64_t plane, const float *wp,
                      const int *offs, int Cg, int KK, int OCg, int H, int W, int pad) {
    isa k = isa_get();
    /* the padded-pitch output grid, rounded up to whole tiles */
    int64_t nq = (int64_t)H * (W + 2 * pad);
    k.fn(out, acc, xpad, plane, wp, offs, Cg, KK, OCg, (nq + k.tile_q - 1) / k.tile_q * k.tile_q, H,
         W, pad);
}

bool conv_direct_dw_tile_usable(int OCg) {
    return dw_isa(OCg).fn != NULL;
}

void conv_direct_dw_tile(float *dwt, const float *dt, const float *xpad, int64_t plane,
                         int64_t pitch, const int *offs, int Cg, int KK, int OCg, int H, int W) {
    dw_isa(OCg).dw_fn(dwt, dt, xpad, plane, pitch, offs, Cg, KK, OCg, H, W);
}

size_t conv_direct_dw_scratch_floats(const conv_direct_geom *g) {
    int64_t hw = (int64_t)g->H * g->W, ck = (int64_t)g->Cg * g->KH * g->KW;
    return (size_t)(g->Cg * plane_floats(g) + (hw + ck) * g->OCg);
}

void conv_direct_dw(float *dw, const float *dout, int64_t dout_stride, const float *x,
                    int64_t x_stride, int B, float *scratch, const conv_direct_geom *g) {
    isa k = dw_isa(g->OCg);
    int KK = g->KH * g->KW, CK = g->Cg * KK, OCg = g->OCg;
    int64_t hw = (int64_t)g->H * g->W;
    int offs[KK_MAX];
    float *xpad = scratch, *dt = xpad + g->Cg * plane_floats(g), *dwt = dt + hw * OCg;
    memset(dwt, 0, sizeof(float) * CK * OCg);
    for (int n = 0; n < B; n++) {
        pad_planes(xpad, offs, x + n * x_stride, g);
        small_transpose(dt, dout + n * dout_stride, OCg, (int)hw, (int)hw);
        k.dw_fn(dwt, dt, xpad, plane_floats(g), pitch(g), offs, g->Cg, KK, OCg, g->H, g->W);
    }
    for (int o = 0; o < OCg; o++)
        for (int j = 0; j < CK; j++)
            dw[(int64_t)o * CK + j] += dwt[(int64_t)j * OCg + o];
}
