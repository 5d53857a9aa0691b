/*
 * cmd_explain.c - `heed explain --ckpt PATH --data FILE.h5 [--split test]
 * --samples I..J --out DIR`: the attention maps of a checkpoint's model on
 * chosen samples, as HDF5 and pictures (docs/explain.md). Rank 0 does the
 * work; under mpirun the other ranks load the checkpoint with it (the load
 * is collective) and then wait for its verdict, so all exit with one code.
 */
#include "app/ckpt_model.h"
#include "app/commands.h"
#include "app/explain.h"

#include "core/check.h"
#include "dist/check_dist.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char usage_text[] =
    "usage: heed explain --ckpt PATH --data FILE.h5 [--split train|val|test] --samples I..J\n"
    "                    --out DIR [--threads N]\n"
    "  --samples I..J  samples I to J of the split, both included (or one index I)\n";

/* "I..J" or "I" into [*first, *last]; false when it is neither. */
static bool parse_range(const char *s, int64_t *first, int64_t *last) {
    char *end;
    errno = 0;
    long long a = strtoll(s, &end, 10);
    if (end == s || errno)
        return false;
    if (*end == '\0') {
        *first = *last = a;
        return a >= 0;
    }
    if (strncmp(end, "..", 2) != 0)
        return false;
    const char *rest = end + 2;
    long long b = strtoll(rest, &end, 10);
    if (end == rest || *end != '\0' || errno)
        return false;
    *first = a;
    *last = b;
    return a >= 0 && b >= a;
}

static bool make_dir(const char *path, char *err, size_t errlen) {
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        snprintf(err, errlen, "--out: the directory name is too long");
        return false;
    }
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                break;
            *p = '/';
        }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "--out %.900s: cannot create the directory: %s", path,
                 strerror(errno));
        return false;
    }
    return true;
}

static int explain_fail(comm *c, const char *msg) {
    if (c->rank == 0)
        fprintf(stderr, "heed explain: %s\n", msg);
    comm_free(c);
    HEED_MPI_CHECK(MPI_Finalize());
    return HEED_EXIT_BAD_INPUT;
}

int cmd_explain(int argc, char **argv) {
    const char *ckpt = NULL, *data = NULL, *split = "test", *samples = NULL, *out = NULL;
    int threads = 0;
    for (int i = 0; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help")) {
            fputs(usage_text, stdout);
            return HEED_EXIT_OK;
        }
        if (!v) {
            fprintf(stderr, "heed explain: option '%s' needs a value\n%s", a, usage_text);
            return HEED_EXIT_BAD_INPUT;
        }
        if (!strcmp(a, "--ckpt"))
            ckpt = v;
        else if (!strcmp(a, "--data"))
            data = v;
        else if (!strcmp(a, "--split"))
            split = v;
        else if (!strcmp(a, "--samples"))
            samples = v;
        else if (!strcmp(a, "--out"))
            out = v;
        else if (!strcmp(a, "--threads"))
            threads = atoi(v);
        else {
            fprintf(stderr, "heed explain: unknown option '%s'\n%s", a, usage_text);
            return HEED_EXIT_BAD_INPUT;
        }
    }
    if (!ckpt || !data || !samples || !out) {
        fprintf(stderr, "heed explain: --ckpt, --data, --samples and --out are required\n%s",
                usage_text);
        return HEED_EXIT_BAD_INPUT;
    }
    explain_request rq = {.split = split, .out_dir = out, .data_path = data, .ckpt_path = ckpt};
    if (!parse_range(samples, &rq.first, &rq.last)) {
        fprintf(stderr,
                "heed explain: --samples '%s': expected I..J with 0 <= I <= J (or one index I)\n",
                samples);
        return HEED_EXIT_BAD_INPUT;
    }
    int provided;
    HEED_MPI_CHECK(MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided));
    comm c;
    comm_init(&c, MPI_COMM_WORLD);
    char err[2048] = "";
    if (strcmp(split, "train") && strcmp(split, "val") && strcmp(split, "test"))
        return explain_fail(&c, "--split must be train, val or test");
    ckpt_model cm;
    if (!ckpt_model_open(&cm, &c, ckpt, data, threads, err, sizeof err))
        return explain_fail(&c, err);
    rq.seed = cm.rc.seed;
    int rc = 0;
    if (c.rank == 0) {
        rc = make_dir(out, err, sizeof err) ? explain_run(cm.model, cm.feed, &rq, err, sizeof err)
                                            : HEED_EXIT_BAD_INPUT;
        if (rc == 0)
            printf("heed explain: %lld samples of the %s split of %s, model %s (step %lld), "
                   "written to %s (attention.h5, index.html, sample_*.png)\n",
                   (long long)(rq.last - rq.first + 1), split, data, cm.model->kind->name,
                   (long long)cm.meta.step, out);
    }
    HEED_MPI_CHECK(MPI_Bcast(&rc, 1, MPI_INT, 0, c.mpi));
    ckpt_model_close(&cm);
    if (rc != 0)
        return explain_fail(&c, err);
    comm_free(&c);
    HEED_MPI_CHECK(MPI_Finalize());
    return HEED_EXIT_OK;
}
