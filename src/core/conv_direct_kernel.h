/*
 * conv_direct_kernel.h - the register-tile loops of conv_direct.c (output
 * and weight gradient), written once and included once per instruction set.
 * The includer defines: KERNEL and KERNEL_DW (function names), TARGET (gcc
 * target string), VEC (vector type), VL (floats per vector), OB (output
 * channels per tile), NV (vectors of pixels per tile), JT ((channel, tap)
 * pairs per weight-gradient tile), and LOAD, STORE, BCAST, FMA, ZERO, ADD
 * on VEC.
 *
 * ofull (OCg, ld) over the padded-pitch pixel grid q: ofull[o][q] = sum over
 * (c, k) of wp[o][c][k] * xpad[c][q + offs[k]], for q < nq (a multiple of
 * VL * NV). Explicit FMA: the sums do not depend on compiler contraction.
 */

__attribute__((target(TARGET))) static void KERNEL(float *ofull, int64_t ld, const float *xpad,
                                                   int64_t plane, const float *wp, const int *offs,
                                                   int Cg, int KK, int OCg, int64_t nq) {
    for (int ob = 0; ob < OCg; ob += OB) {
        const float *wb = wp + (int64_t)ob * Cg * KK;
        for (int64_t q0 = 0; q0 < nq; q0 += VL * NV) {
            VEC acc[OB][NV];
#pragma GCC unroll 16
            for (int i = 0; i < OB; i++)
#pragma GCC unroll 4
                for (int j = 0; j < NV; j++)
                    acc[i][j] = ZERO();
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
                            acc[i][j] = FMA(wv, xv[j], acc[i][j]);
                    }
                }
            }
#pragma GCC unroll 16
            for (int i = 0; i < OB; i++)
#pragma GCC unroll 4
                for (int j = 0; j < NV; j++)
                    STORE(ofull + (ob + i) * ld + q0 + j * VL, acc[i][j]);
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
