/*
 * small_gemm_kernel.h - the register tiles of small_gemm.c, written once and
 * included once per instruction set. The includer defines: TILE, ROWS and
 * DRIVER (function names), TARGET (gcc target string), VEC, MASK (a tail
 * mask type), VL (floats per vector), NVMAX (vectors per column chunk),
 * MR(nv) (rows per tile for nv vectors, at most 16), and LOAD, MLOAD(p, m),
 * STORE, MSTORE(p, m, v), BCAST, FMA, MUL, ADD, SET1, ZERO, TAILMASK(r) (the
 * first r of VL lanes).
 *
 * Every C element is one sum over k in order, by explicit FMA, then times
 * alpha, then plus C when accumulating: the bits depend on K and the
 * instruction set, not on the tile an element falls in.
 */

/* C rows [0, mr) x nv vectors (the last masked by `last`) of one column
 * chunk. a points at op(A)[0][0] of the tile: element (i, k) is
 * a[i * sam + k * sak]. mr and nv are constants after inlining. */
__attribute__((target(TARGET), always_inline)) static inline void
TILE(int mr, int nv, int K, float alpha, const float *a, int64_t sam, int64_t sak, const float *b,
     int64_t ldb, bool acc, float *c, int64_t ldc, MASK last) {
    VEC s[16][NVMAX];
#pragma GCC unroll 16
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
        for (int j = 0; j < nv; j++)
            s[i][j] = ZERO();
    for (int k = 0; k < K; k++) {
        const float *bk = b + k * ldb, *ak = a + k * sak;
        VEC bv[NVMAX];
#pragma GCC unroll 4
        for (int j = 0; j < nv; j++)
            bv[j] = j == nv - 1 ? MLOAD(bk + j * VL, last) : LOAD(bk + j * VL);
#pragma GCC unroll 16
        for (int i = 0; i < mr; i++) {
            VEC av = BCAST(ak + i * sam);
#pragma GCC unroll 4
            for (int j = 0; j < nv; j++)
                s[i][j] = FMA(av, bv[j], s[i][j]);
        }
    }
    VEC va = SET1(alpha);
#pragma GCC unroll 16
    for (int i = 0; i < mr; i++) {
        float *ci = c + i * ldc;
#pragma GCC unroll 4
        for (int j = 0; j < nv; j++) {
            VEC r = MUL(s[i][j], va);
            if (j == nv - 1) {
                if (acc)
                    r = ADD(r, MLOAD(ci + j * VL, last));
                MSTORE(ci + j * VL, last, r);
            } else {
                if (acc)
                    r = ADD(r, LOAD(ci + j * VL));
                STORE(ci + j * VL, r);
            }
        }
    }
}

/* All M rows of one column chunk of nv vectors: tiles of MR(nv) rows, then
 * at most one tile each of 8, 4, 2 and 1 rows for the rest. */
__attribute__((target(TARGET), always_inline)) static inline void
ROWS(int nv, int M, int K, float alpha, const float *a, int64_t sam, int64_t sak, const float *b,
     int64_t ldb, bool acc, float *c, int64_t ldc, MASK last) {
    const int mr = MR(nv);
    int m = 0;
    for (; m + mr <= M; m += mr)
        TILE(mr, nv, K, alpha, a + m * sam, sam, sak, b, ldb, acc, c + m * ldc, ldc, last);
    if (mr > 8 && m + 8 <= M) {
        TILE(8, nv, K, alpha, a + m * sam, sam, sak, b, ldb, acc, c + m * ldc, ldc, last);
        m += 8;
    }
    if (mr > 4 && m + 4 <= M) {
        TILE(4, nv, K, alpha, a + m * sam, sam, sak, b, ldb, acc, c + m * ldc, ldc, last);
        m += 4;
    }
    if (mr > 2 && m + 2 <= M) {
        TILE(2, nv, K, alpha, a + m * sam, sam, sak, b, ldb, acc, c + m * ldc, ldc, last);
        m += 2;
    }
    if (m < M)
        TILE(1, nv, K, alpha, a + m * sam, sam, sak, b, ldb, acc, c + m * ldc, ldc, last);
}

__attribute__((target(TARGET))) static void DRIVER(int M, int N, int K, float alpha, const float *a,
                                                   int64_t sam, int64_t sak, const float *b,
                                                   int64_t ldb, bool acc, float *c, int64_t ldc) {
    for (int n0 = 0; n0 < N; n0 += NVMAX * VL) {
        int nn = N - n0 < NVMAX * VL ? N - n0 : NVMAX * VL;
        int nv = (nn + VL - 1) / VL;
        MASK last = TAILMASK(nn - (nv - 1) * VL);
        const float *bn = b + n0;
        float *cn = c + n0;
        switch (nv) {
        case 1:
            ROWS(1, M, K, alpha, a, sam, sak, bn, ldb, acc, cn, ldc, last);
            break;
        case 2:
            ROWS(2, M, K, alpha, a, sam, sak, bn, ldb, acc, cn, ldc, last);
            break;
#if NVMAX > 2
        case 3:
            ROWS(3, M, K, alpha, a, sam, sak, bn, ldb, acc, cn, ldc, last);
            break;
        case 4:
            ROWS(4, M, K, alpha, a, sam, sak, bn, ldb, acc, cn, ldc, last);
            break;
#endif
        }
    }
}

#undef TILE
#undef ROWS
#undef DRIVER
#undef TARGET
#undef VEC
#undef MASK
#undef VL
#undef NVMAX
#undef MR
#undef LOAD
#undef MLOAD
#undef STORE
#undef MSTORE
#undef BCAST
#undef FMA
#undef MUL
#undef ADD
#undef SET1
#undef ZERO
#undef TAILMASK
