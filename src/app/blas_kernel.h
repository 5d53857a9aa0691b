/*
 * blas_kernel.h - is OpenBLAS running the GEMM kernels this CPU can run?
 *
 * OpenBLAS picks its kernels at load time from the CPU's family and model.
 * A CPU newer than the OpenBLAS build (Debian 12 ships 0.3.21; Intel's
 * Emerald Rapids, model 207, is unknown to it) or one that a hypervisor
 * presents under a generic name gets the oldest kernels: measured on a
 * 16-core Emerald Rapids VM, sgemm ran at 26 GFLOP/s per core instead of
 * 155 with OPENBLAS_CORETYPE=SAPPHIRERAPIDS. The variable must be set
 * before the library loads, so heed can only tell the user.
 */
#ifndef HEED_APP_BLAS_KERNEL_H
#define HEED_APP_BLAS_KERNEL_H

#include <stddef.h>

/* The OPENBLAS_CORETYPE value to suggest when the kernels named `corename`
 * (as openblas_get_corename() returns it) use narrower vector units than the
 * CPU whose /proc/cpuinfo "flags" line is `cpu_flags`; NULL when they match
 * or the CPU's flags are unknown. Pure, for tests. */
const char *blas_kernel_suggestion(const char *corename, const char *cpu_flags);

/* Same for the running process: OpenBLAS's choice against this CPU's flags.
 * When a better kernel exists, writes a one-line advice (no newline) into
 * `msg` and returns 1; otherwise returns 0 and leaves `msg` empty. */
int blas_kernel_check(char *msg, size_t len);

#endif
