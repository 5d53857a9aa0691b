#include "core/check.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

_Noreturn void heed_die(int code, const char *file, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "heed: %s:%d: ", file, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fflush(stderr);
    exit(code);
}

void *heed_malloc_check(size_t bytes, const char *file, int line) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p)
        heed_die(HEED_EXIT_INTERNAL, file, line,
                 "out of memory allocating %zu bytes (lower --batch-size or the model size)",
                 bytes);
    return p;
}

void *heed_calloc_check(size_t count, size_t size, const char *file, int line) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        heed_die(HEED_EXIT_INTERNAL, file, line, "out of memory allocating %zu x %zu bytes", count,
                 size);
    return p;
}

void *heed_aligned_alloc_check(size_t alignment, size_t bytes, const char *file, int line) {
    void *p = NULL;
    int err = posix_memalign(&p, alignment, bytes ? bytes : alignment);
    if (err)
        heed_die(HEED_EXIT_INTERNAL, file, line, "out of memory allocating %zu bytes: %s", bytes,
                 strerror(err));
    return p;
}

void *heed_realloc_check(void *ptr, size_t bytes, const char *file, int line) {
    void *p = realloc(ptr, bytes ? bytes : 1);
    if (!p)
        heed_die(HEED_EXIT_INTERNAL, file, line, "out of memory reallocating to %zu bytes", bytes);
    return p;
}

char *heed_strdup_check(const char *s, const char *file, int line) {
    size_t n = strlen(s) + 1;
    char *p = heed_malloc_check(n, file, line);
    memcpy(p, s, n);
    return p;
}

FILE *heed_fopen_check(const char *path, const char *mode, const char *file, int line) {
    FILE *f = fopen(path, mode);
    if (!f)
        heed_die(HEED_EXIT_BAD_INPUT, file, line, "cannot open '%s' (mode %s): %s", path, mode,
                 strerror(errno));
    return f;
}
