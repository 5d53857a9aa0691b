/*
 * checkpoint_dir.c - the checkpoints of a run directory: names, listing
 * (newest first) and keep-K retention. Nothing here is collective: rank 0
 * manages the directory, and a checkpoint only appears there by rename.
 */
#include "dist/checkpoint.h"

#include "core/check.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void ckpt_path_for_step(char *out, size_t len, const char *dir, int64_t step) {
    snprintf(out, len, "%s/ckpt-%08lld.h5", dir, (long long)step);
}

/* "ckpt-<digits>.h5" exactly: the step, or -1. */
static int64_t step_of_name(const char *name) {
    if (strncmp(name, "ckpt-", 5) != 0)
        return -1;
    const char *p = name + 5;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(p, &end, 10);
    if (errno || end == p || v < 0 || strcmp(end, ".h5") != 0)
        return -1;
    return (int64_t)v;
}

typedef struct entry {
    int64_t step;
    char *path;
} entry;

static int newest_first(const void *a, const void *b) {
    int64_t x = ((const entry *)a)->step, y = ((const entry *)b)->step;
    return x < y ? 1 : x > y ? -1 : 0;
}

int ckpt_list(const char *dir, char ***paths, int64_t **steps) {
    *paths = NULL;
    *steps = NULL;
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT)
            return 0;
        HEED_DIE(HEED_EXIT_BAD_INPUT, "cannot list checkpoint directory '%s': %s", dir,
                 strerror(errno));
    }
    int n = 0, cap = 0;
    entry *es = NULL;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        int64_t step = step_of_name(de->d_name);
        if (step < 0)
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            es = xrealloc(es, sizeof *es * (size_t)cap);
        }
        size_t len = strlen(dir) + strlen(de->d_name) + 2;
        es[n].path = xmalloc(len);
        snprintf(es[n].path, len, "%s/%s", dir, de->d_name);
        es[n].step = step;
        n++;
    }
    if (closedir(d) != 0)
        HEED_DIE(HEED_EXIT_INTERNAL, "closedir '%s': %s", dir, strerror(errno));
    if (n > 0)
        qsort(es, (size_t)n, sizeof *es, newest_first);
    *paths = xmalloc(sizeof(char *) * (size_t)(n ? n : 1));
    *steps = xmalloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++) {
        (*paths)[i] = es[i].path;
        (*steps)[i] = es[i].step;
    }
    free(es);
    return n;
}

void ckpt_list_free(char **paths, int64_t *steps, int n) {
    for (int i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
    free(steps);
}

static void remove_file(const char *path) {
    if (unlink(path) != 0 && errno != ENOENT)
        HEED_DIE(HEED_EXIT_INTERNAL, "cannot remove old checkpoint '%s': %s", path,
                 strerror(errno));
}

int ckpt_retain(const char *dir, int keep, int64_t keep_every) {
    char **paths;
    int64_t *steps;
    int n = ckpt_list(dir, &paths, &steps), removed = 0;
    for (int i = keep > 0 ? keep : 1; i < n; i++) {
        if (keep_every > 0 && steps[i] % keep_every == 0)
            continue;
        remove_file(paths[i]);
        removed++;
    }
    ckpt_list_free(paths, steps, n);
    /* Stale temporaries of writes that died (a crash mid-write). */
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            size_t len = strlen(de->d_name);
            if (strncmp(de->d_name, "ckpt-", 5) == 0 && len > 8 &&
                strcmp(de->d_name + len - 7, ".h5.tmp") == 0) {
                char p[CKPT_PATH];
                snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
                remove_file(p);
            }
        }
        if (closedir(d) != 0)
            HEED_DIE(HEED_EXIT_INTERNAL, "closedir '%s': %s", dir, strerror(errno));
    }
    return removed;
}
