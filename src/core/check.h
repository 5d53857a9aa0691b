/*
 * check.h - checked calls into libc.
 *
 * Every call that can fail goes through one of these. A failure prints the
 * call site, what failed and a hint, then exits with HEED_EXIT_INTERNAL (or
 * HEED_EXIT_BAD_INPUT for files the user named). Under mpirun a rank that
 * exits non-zero takes the whole job down, so no rank is left waiting in a
 * collective. MPI and HDF5 calls have their own macros in src/dist/.
 */
#ifndef HEED_CORE_CHECK_H
#define HEED_CORE_CHECK_H

#include <stddef.h>
#include <stdio.h>

/* Exit codes of every heed program; docs/architecture.md lists them. */
enum heed_exit {
    HEED_EXIT_OK = 0,
    HEED_EXIT_INTERNAL = 1,  /* a bug or a resource failure (out of memory) */
    HEED_EXIT_BAD_INPUT = 2, /* bad option, config, dataset or checkpoint */
    HEED_EXIT_PREEMPTED = 3, /* checkpointed on SIGTERM/SIGUSR1; requeue me */
    HEED_EXIT_HANG = 4,      /* a collective timed out or a rank died */
    HEED_EXIT_NONFINITE = 5, /* NaN/Inf in the loss or gradients */
};

/* Prints "heed: file:line: message" to stderr and exits with `code`. */
_Noreturn void heed_die(int code, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

void *heed_malloc_check(size_t bytes, const char *file, int line);
void *heed_calloc_check(size_t count, size_t size, const char *file, int line);
void *heed_aligned_alloc_check(size_t alignment, size_t bytes, const char *file, int line);
void *heed_realloc_check(void *ptr, size_t bytes, const char *file, int line);
char *heed_strdup_check(const char *s, const char *file, int line);
FILE *heed_fopen_check(const char *path, const char *mode, const char *file, int line);

#define HEED_DIE(code, ...) heed_die((code), __FILE__, __LINE__, __VA_ARGS__)
#define xmalloc(bytes) heed_malloc_check((bytes), __FILE__, __LINE__)
#define xcalloc(count, size) heed_calloc_check((count), (size), __FILE__, __LINE__)
#define xaligned_alloc(align, bytes) heed_aligned_alloc_check((align), (bytes), __FILE__, __LINE__)
#define xrealloc(ptr, bytes) heed_realloc_check((ptr), (bytes), __FILE__, __LINE__)
#define xstrdup(s) heed_strdup_check((s), __FILE__, __LINE__)
#define xfopen(path, mode) heed_fopen_check((path), (mode), __FILE__, __LINE__)

/* An invariant of heed itself (not of user input); kept under NDEBUG. */
#define HEED_ASSERT(cond)                                                                          \
    do {                                                                                           \
        if (!(cond))                                                                               \
            heed_die(HEED_EXIT_INTERNAL, __FILE__, __LINE__, "internal error: %s", #cond);         \
    } while (0)

#endif
