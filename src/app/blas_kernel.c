/*
 * blas_kernel.c - compare OpenBLAS's kernel choice with the CPU's vector
 * units (see blas_kernel.h for why).
 */
#define _POSIX_C_SOURCE 200809L /* getline */

#include "app/blas_kernel.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* OpenBLAS's own call; the cblas.h of other BLAS builds lacks it. */
char *openblas_get_corename(void);

/* Vector width tiers of OpenBLAS's x86-64 kernels. */
enum { TIER_OLD = 0, TIER_AVX = 1, TIER_AVX2 = 2, TIER_AVX512 = 3 };

static bool same_word_ci(const char *a, const char *b) {
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return false;
    return *a == *b;
}

static int corename_tier(const char *name) {
    static const char *const avx512[] = {"skylakex", "cooperlake", "sapphirerapids"};
    static const char *const avx2[] = {"haswell", "zen", "excavator"};
    static const char *const avx[] = {"sandybridge", "bulldozer", "piledriver", "steamroller"};
    for (size_t i = 0; i < sizeof avx512 / sizeof avx512[0]; i++)
        if (same_word_ci(name, avx512[i]))
            return TIER_AVX512;
    for (size_t i = 0; i < sizeof avx2 / sizeof avx2[0]; i++)
        if (same_word_ci(name, avx2[i]))
            return TIER_AVX2;
    for (size_t i = 0; i < sizeof avx / sizeof avx[0]; i++)
        if (same_word_ci(name, avx[i]))
            return TIER_AVX;
    return TIER_OLD;
}

/* Whether the space-separated `flags` hold `flag` as a whole word. */
static bool has_flag(const char *flags, const char *flag) {
    size_t n = strlen(flag);
    for (const char *p = flags; (p = strstr(p, flag)) != NULL; p += n) {
        bool starts = p == flags || isspace((unsigned char)p[-1]);
        bool ends = p[n] == 0 || isspace((unsigned char)p[n]);
        if (starts && ends)
            return true;
    }
    return false;
}

const char *blas_kernel_suggestion(const char *corename, const char *cpu_flags) {
    if (!corename || !cpu_flags || !cpu_flags[0])
        return NULL;
    const char *best = NULL;
    int best_tier = TIER_OLD;
    if (has_flag(cpu_flags, "avx512f")) {
        bool bf16 = has_flag(cpu_flags, "avx512_bf16");
        best = bf16 && has_flag(cpu_flags, "amx_tile") ? "SAPPHIRERAPIDS"
               : bf16                                  ? "COOPERLAKE"
                                                       : "SKYLAKEX";
        best_tier = TIER_AVX512;
    } else if (has_flag(cpu_flags, "avx2") && has_flag(cpu_flags, "fma")) {
        best = "HASWELL";
        best_tier = TIER_AVX2;
    } else if (has_flag(cpu_flags, "avx")) {
        best = "SANDYBRIDGE";
        best_tier = TIER_AVX;
    }
    return best && corename_tier(corename) < best_tier ? best : NULL;
}

/* The "flags" line of /proc/cpuinfo (the first CPU's) into `out`; empty
 * where there is none (not Linux, or a CPU without such a line). */
static void read_cpu_flags(char *out, size_t len) {
    out[0] = 0;
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) >= 0) {
        if (strncmp(line, "flags", 5) != 0)
            continue;
        const char *colon = strchr(line, ':');
        if (colon)
            snprintf(out, len, "%s", colon + 1);
        break;
    }
    free(line);
    fclose(f);
}

int blas_kernel_check(char *msg, size_t len) {
    msg[0] = 0;
    char flags[8192];
    read_cpu_flags(flags, sizeof flags);
    const char *name = openblas_get_corename();
    const char *better = blas_kernel_suggestion(name, flags);
    if (!better)
        return 0;
    snprintf(msg, len,
             "OpenBLAS runs its '%s' kernels, but this CPU has wider vector units: "
             "export OPENBLAS_CORETYPE=%s before mpirun/srun (GEMM is several times "
             "faster; docs/clusters.md)",
             name, better);
    return 1;
}
