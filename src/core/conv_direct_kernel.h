/*
 * conv_direct_kernel.h - the register-tile loops of conv_direct.c (output
 * and weight gradient), written once and included once per instruction set.
 * The includer defines: KERNEL and KERNEL_DW (function names), TARGET (gcc
 * target string), VEC (vector type), VL (floats per vector), OB (output
 * channels per tile), NV (vectors of pixels per tile), JT ((channel, tap)
 * pairs per weight-gradient tile), LOAD, STORE, BCAST, FMA, ZERO, ADD on
 * VEC, and MASK (a lane mask type), RANGE_MASK(lo, hi) (lanes lo..hi-1),
 * MLOAD and MSTORE (masked load and store: other lanes are not touched).
 *
 * The output tile runs over the padded-pitch pixel grid q = oh * pitch + ow:
 * sum over (c, k) of wp[o][c][k] * xpad[c][q + offs[k]]. Explicit FMA: the
 * sums do not depend on compiler contraction.
 */

/* out (OCg, H, W) = (with `acc`, +=) the conv over the grid q < nq (whole
 * tiles of VL * NV pixels). Each vector of the tile is stored straight into
 * out with one masked store per output row it touches: the grid's
 * wrap-around columns (ow >= W) and the rows past H are never written. */
__attribute__((target(TARGET))) static void KERNEL(float *out, bool acc, const float *xpad,
                                                   int64_t plane, const float *wp, const int *offs,
                                                   int Cg, int KK, int OCg, int64_t nq, int H,
                                                   int W, int pad) {
    int64_t hw = (int64_t)H * W, pitch = W + 2 * pad;
    for (int ob = 0; ob < OCg; ob += OB) {
        const float *wb = wp + (int64_t)ob * Cg * KK;
        for (int64_t q0 = 0; q0 < nq; q0 += VL * NV) {
            VEC acc_v[OB][NV];
#pragma GCC unroll 16
            for (int i = 0; i < OB; i++)
#pragma GCC unroll 4
                for (int j = 0; j < NV; j++)
                    acc_v[i][j] = ZERO();
            const float *w_ck = wb;
            for (int c = 0; c < Cg; c++) {
                const float *xc = xpad + c * plane + q0;
                for (int k = 0; k < KK; k++, w_ck += OB) {
                    const float *xk = xc + offs[k];
                    VEC xv[NV];
#pragma GCC unroll 4
                    for (int j = 0; j < NV; j++)
                        xv[j] = LOAD(xk + j * VL);
#pragma GCC unroll 16
                    for (int i = 0; i < OB; i++) {
                        VEC wv = BCAST(w_ck + i);
#pragma GCC unroll 4
                        for (int j = 0; j < NV; j++)
                            acc_v[i][j] = FMA(wv, xv[j], acc_v[i][j]);
                    }
                }
            }
#pragma GCC unroll 4
            for (int j = 0; j < NV; j++) {
                int64_t q = q0 + j * VL, r1 = (q + VL - 1) / pitch;
                r1 = r1 < H - 1 ? r1 : H - 1;
                for (int64_t r = q / pitch; r <= r1; r++) {
                    /* lanes [lo, hi) are row r's pixels; they go to out at
                     * r * W + (q + lane - r * pitch) */
                    int64_t lo = r * pitch - q, hi = lo + W;
                    lo = lo < 0 ? 0 : lo;
                    hi = hi > VL ? VL : hi;
                    if (lo >= hi) /* only wrap-around columns of row r */
                        continue;
                    MASK m = RANGE_MASK((int)lo, (int)hi);
                    int64_t at = q - r * 2 * pad;
#pragma GCC unroll 16
                    for (int i = 0; i < OB; i++) {
                        float *dst = out + (ob + i) * hw + at;
                        VEC v = acc ? ADD(MLOAD(dst, m), acc_v[i][j]) : acc_v[i][j];
                        MSTORE(dst, m, v);
                    }
                }
            }
        }
    }
}

/* dwt (Cg*KK, OCg) += sum over the H x W pixels p = (oh, ow) of
 * dt[p][o] * xpad[c][oh * pitch + ow + offs[k]]: the weight gradient of one
 * sample, transposed, with dout transposed to pixel-major dt (H*W, OCg).
 * Vectors run over VL output channels and the input is broadcast, as in the
 * forward tile, so a tile's sums stay whole vectors (no sum across lanes)
 * and the wrap-around columns of the grid are never visited. Tiles of VL
 * output channels x JT (channel, tap) pairs; a last, partial tile computes
 * its missing pairs on pair j0 and drops them. */
__attribute__((target(TARGET))) static void KERNEL_DW(float *dwt, const float *dt,
                                                      const float *xpad, int64_t plane,
                                                      int64_t pitch, const int *offs, int Cg,
                                                      int KK, int OCg, int H, int W) {
    int CK = Cg * KK;
    for (int j0 = 0; j0 < CK; j0 += JT) {
        int nj = CK - j0 < JT ? CK - j0 : JT;
        const float *xp[JT];
#pragma GCC unroll 16
        for (int jj = 0; jj < JT; jj++) {
            int j = j0 + (jj < nj ? jj : 0);
            xp[jj] = xpad + (j / KK) * plane + offs[j % KK];
        }
        for (int o0 = 0; o0 < OCg; o0 += VL) {
            VEC acc[JT];
#pragma GCC unroll 16
            for (int jj = 0; jj < JT; jj++)
                acc[jj] = ZERO();
            for (int oh = 0; oh < H; oh++) {
                const float *drow = dt + (int64_t)oh * W * OCg + o0;
                int64_t q = oh * pitch;
                for (int ow = 0; ow < W; ow++, q++) {
                    VEC dv = LOAD(drow + (int64_t)ow * OCg);
#pragma GCC unroll 16
                    for (int jj = 0; jj < JT; jj++)
                        acc[jj] = FMA(BCAST(xp[jj] + q), dv, acc[jj]);
                }
            }
            for (int jj = 0; jj < nj; jj++) {
                float *d = dwt + (int64_t)(j0 + jj) * OCg + o0;
                STORE(d, ADD(LOAD(d), acc[jj]));
            }
        }
    }
}

/* The parameters, for the next instruction set's include. */
#undef KERNEL
#undef KERNEL_DW
#undef JT
#undef ADD
#undef MSTORE
#undef MLOAD
#undef RANGE_MASK
#undef MASK
#undef TARGET
#undef VEC
#undef VL
#undef OB
#undef NV
#undef LOAD
#undef STORE
#undef BCAST
#undef FMA
#undef ZERO
