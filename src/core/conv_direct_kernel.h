/*
 * conv_direct_kernel.h - the register-tile loops of conv_direct.c (output
 * and weight gradient), written once and included once per instruction set.
 * The includer defines: KERNEL and KERNEL_DW (function names), TARGET (gcc
 * target string), VEC (vector type), VL (floats per vector), OB (output
 * channels per tile), NV (vectors of pixels per tile), JT ((channel, tap)
 * pairs per weight-gradient tile), and LOAD, STORE, BCAST, FMA, ZERO, HSUM
 * (sum of the lanes) on VEC.
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

/* dw (OCg, Cg*KK) += sum over q < nq of dpad[o][q] * xpad[c][q + offs[k]]:
 * the weight gradient, with dout on the same padded-pitch grid (zero in the
 * wrap-around columns and past the last pixel). Tiles of 4 output channels
 * x JT (channel, tap) pairs accumulate along q in vectors, summed across
 * lanes once per tile. */
__attribute__((target(TARGET))) static void KERNEL_DW(float *dw, const float *dpad, int64_t ld,
                                                      const float *xpad, int64_t plane,
                                                      const int *offs, int Cg, int KK, int OCg,
                                                      int64_t nq) {
    int CK = Cg * KK;
    for (int o0 = 0; o0 < OCg; o0 += 4) {
        const float *d0 = dpad + o0 * ld, *d1 = d0 + ld, *d2 = d1 + ld, *d3 = d2 + ld;
        int j0 = 0;
        for (; j0 + JT <= CK; j0 += JT) {
            const float *xp[JT];
            VEC acc[4][JT];
#pragma GCC unroll 8
            for (int jj = 0; jj < JT; jj++) {
                int j = j0 + jj;
                xp[jj] = xpad + (j / KK) * plane + offs[j % KK];
                acc[0][jj] = acc[1][jj] = acc[2][jj] = acc[3][jj] = ZERO();
            }
            for (int64_t q = 0; q < nq; q += VL) {
                VEC a = LOAD(d0 + q), b = LOAD(d1 + q), c = LOAD(d2 + q), d = LOAD(d3 + q);
#pragma GCC unroll 8
                for (int jj = 0; jj < JT; jj++) {
                    VEC xv = LOAD(xp[jj] + q);
                    acc[0][jj] = FMA(a, xv, acc[0][jj]);
                    acc[1][jj] = FMA(b, xv, acc[1][jj]);
                    acc[2][jj] = FMA(c, xv, acc[2][jj]);
                    acc[3][jj] = FMA(d, xv, acc[3][jj]);
                }
            }
#pragma GCC unroll 8
            for (int jj = 0; jj < JT; jj++)
                for (int i = 0; i < 4; i++)
                    dw[(o0 + i) * CK + j0 + jj] += HSUM(acc[i][jj]);
        }
        for (; j0 < CK; j0++) { /* the last CK % JT pairs, one at a time */
            const float *xp = xpad + (j0 / KK) * plane + offs[j0 % KK];
            VEC acc[4] = {ZERO(), ZERO(), ZERO(), ZERO()};
            for (int64_t q = 0; q < nq; q += VL) {
                VEC xv = LOAD(xp + q);
                acc[0] = FMA(LOAD(d0 + q), xv, acc[0]);
                acc[1] = FMA(LOAD(d1 + q), xv, acc[1]);
                acc[2] = FMA(LOAD(d2 + q), xv, acc[2]);
                acc[3] = FMA(LOAD(d3 + q), xv, acc[3]);
            }
            for (int i = 0; i < 4; i++)
                dw[(o0 + i) * CK + j0] += HSUM(acc[i]);
        }
    }
}

/* The parameters, for the next instruction set's include. */
#undef KERNEL
#undef KERNEL_DW
#undef JT
#undef HSUM
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
