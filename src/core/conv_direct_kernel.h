/*
 * conv_direct_kernel.h - the register-tile loop of conv_direct.c, written
 * once and included once per instruction set. The includer defines:
 *   KERNEL (function name), TARGET (gcc target string), VEC (vector type),
 *   VL (floats per vector), OB (output channels per tile), NV (vectors of
 *   pixels per tile), and LOAD, STORE, BCAST, FMA, ZERO on VEC.
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
