/* Loaders across real ranks on fixture files written by rank 0: every
 * global batch equals the one-rank order; every sample once per epoch; the
 * rows read match the fixture's formulas; contiguous vs chunked + gzip and
 * streaming vs in memory vs synchronous give identical batches; resuming a
 * loader from a batch's cursor continues exactly; evaluation sees each
 * sample of a split exactly once. */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset_fixture.h"
#include "dist/bad_input.h"
#include "dist/loader.h"

#include "mpi_check.h"

static int g_rank, g_size;

static dataset *open_ok(const char *path) {
    dataset *ds = NULL;
    char err[HEED_BAD_INPUT_MSG_MAX];
    int rc = dataset_open(&ds, path, MPI_COMM_WORLD, NULL, err, sizeof err);
    CHECK(rc == 0, "%s", err);
    return ds;
}

static loader *loader_ok(dataset *ds, const loader_options *o) {
    loader *l = NULL;
    char err[HEED_BAD_INPUT_MSG_MAX];
    int rc = loader_init(&l, ds, MPI_COMM_WORLD, o, err, sizeof err);
    CHECK(rc == 0, "%s", err);
    return l;
}

/* A copy of this rank's batches of a run, to compare runs. */
typedef struct record {
    int steps;
    int *n, *len;
    int64_t *ids, *next_pos, *next_epoch;
    float *images;
    int32_t *tokens, *labels;
    int per_image, max_len, cap;
} record;

static void record_init(record *r, const dataset *ds, int steps, int cap) {
    memset(r, 0, sizeof *r);
    r->steps = steps;
    r->cap = cap;
    r->per_image = ds->has_images ? ds->channels * ds->height * ds->width : 0;
    r->max_len = ds->max_len;
    r->n = calloc((size_t)steps, sizeof(int));
    r->len = calloc((size_t)steps, sizeof(int));
    r->next_pos = calloc((size_t)steps, sizeof(int64_t));
    r->next_epoch = calloc((size_t)steps, sizeof(int64_t));
    r->ids = calloc((size_t)(steps * cap), sizeof(int64_t));
    r->labels = calloc((size_t)(steps * cap), sizeof(int32_t));
    r->images = calloc((size_t)(steps * cap * r->per_image + 1), sizeof(float));
    r->tokens = calloc((size_t)(steps * cap * r->max_len + 1), sizeof(int32_t));
}

static void record_free(record *r) {
    free(r->n);
    free(r->len);
    free(r->next_pos);
    free(r->next_epoch);
    free(r->ids);
    free(r->labels);
    free(r->images);
    free(r->tokens);
}

static void record_batch(record *r, int k, const batch *b) {
    CHECK(b->n <= r->cap, "batch of %d > %d", b->n, r->cap);
    r->n[k] = b->n;
    r->len[k] = b->len;
    r->next_pos[k] = b->next_position;
    r->next_epoch[k] = b->next_epoch;
    memcpy(r->ids + k * r->cap, b->ids, sizeof(int64_t) * (size_t)b->n);
    memcpy(r->labels + k * r->cap, b->labels, sizeof(int32_t) * (size_t)b->n);
    if (b->images)
        memcpy(r->images + (size_t)k * r->cap * r->per_image, b->images,
               sizeof(float) * (size_t)b->n * r->per_image);
    if (b->tokens)
        memcpy(r->tokens + (size_t)k * r->cap * r->max_len, b->tokens,
               sizeof(int32_t) * (size_t)b->n * (size_t)b->len);
}

static void record_equal(const record *a, const record *b, int from_a, int steps,
                         const char *what) {
    for (int k = 0; k < steps; k++) {
        int ka = from_a + k;
        CHECK(a->n[ka] == b->n[k] && a->len[ka] == b->len[k], "%s: step %d size", what, k);
        CHECK(a->next_pos[ka] == b->next_pos[k] && a->next_epoch[ka] == b->next_epoch[k],
              "%s: step %d cursor", what, k);
        size_t n = (size_t)b->n[k];
        CHECK(!memcmp(a->ids + ka * a->cap, b->ids + k * b->cap, sizeof(int64_t) * n),
              "%s: step %d ids", what, k);
        CHECK(!memcmp(a->labels + ka * a->cap, b->labels + k * b->cap, sizeof(int32_t) * n),
              "%s: step %d labels", what, k);
        CHECK(!memcmp(a->images + (size_t)ka * a->cap * a->per_image,
                      b->images + (size_t)k * b->cap * b->per_image,
                      sizeof(float) * n * (size_t)a->per_image),
              "%s: step %d images", what, k);
        CHECK(!memcmp(a->tokens + (size_t)ka * a->cap * a->max_len,
                      b->tokens + (size_t)k * b->cap * b->max_len,
                      sizeof(int32_t) * n * (size_t)b->len[k]),
              "%s: step %d tokens", what, k);
    }
}

static void run(dataset *ds, const loader_options *o, record *r, int steps) {
    loader *l = loader_ok(ds, o);
    for (int k = 0; k < steps; k++) {
        batch *b = loader_next(l);
        CHECK(b != NULL, "training loaders never end");
        record_batch(r, k, b);
    }
    loader_free(l);
}

/* The gathered global batches equal a one-rank sampler's; rows match the
 * fixture; each sample once per epoch. */
static void check_global(const dataset *ds, const loader_options *o, const record *r,
                         const fx_spec *sp) {
    sampler ref;
    char err[256];
    CHECK(sampler_init(&ref, ds->splits[o->split].n, &o->sampler, 0, 1, err, sizeof err) == 0, "%s",
          err);
    int s = (int)o->split;
    int64_t n = ds->splits[s].n, *want = malloc(sizeof(int64_t) * (size_t)o->sampler.batch_size);
    int64_t *global = malloc(sizeof(int64_t) * (size_t)o->sampler.batch_size);
    int *counts = malloc(sizeof(int) * (size_t)g_size), *displs = malloc(sizeof(int) * g_size);
    int *seen = calloc((size_t)n, sizeof(int));
    sampler_cursor c = o->start;
    int64_t epoch = c.epoch, first_pos = c.position;
    for (int k = 0; k < r->steps; k++) {
        const int64_t *ids = r->ids + k * r->cap;
        for (int i = 0; i < r->n[k]; i++) {
            CHECK(r->labels[k * r->cap + i] == fx_label(s, ids[i], sp->num_classes), "label");
            if (r->per_image && !sp->float_images) {
                int j = r->per_image - 1, ch = j / (sp->h * sp->w);
                float want_px = ((float)fx_pixel(s, ids[i], j) / 255.0f - fx_mean(ch)) / fx_std(ch);
                CHECK(fabsf(r->images[((size_t)k * r->cap + i) * r->per_image + j] - want_px) <
                          1e-6f,
                      "pixel");
            }
            if (r->max_len) {
                int len = fx_length(s, ids[i], sp->max_len);
                CHECK(len <= r->len[k], "trimmed too far");
                const int32_t *row = r->tokens + (size_t)k * r->cap * r->max_len + i * r->len[k];
                for (int j = 0; j < r->len[k]; j++)
                    CHECK(row[j] == (j < len ? fx_token(s, ids[i], j, sp->vocab) : 0), "token");
            }
        }
        int mine = r->n[k];
        MPI_Allgather(&mine, 1, MPI_INT, counts, 1, MPI_INT, MPI_COMM_WORLD);
        int total = 0, longest = 0;
        for (int q = 0; q < g_size; q++) {
            displs[q] = total;
            total += counts[q];
        }
        MPI_Allgatherv(ids, mine, MPI_INT64_T, global, counts, displs, MPI_INT64_T, MPI_COMM_WORLD);
        int64_t gn;
        int wn = sampler_next(&ref, &c, want, &gn);
        CHECK(wn == total && !memcmp(want, global, sizeof(int64_t) * (size_t)total),
              "step %d: global batch differs from the one-rank order", k);
        CHECK(c.epoch == r->next_epoch[k] && c.position == r->next_pos[k], "cursor");
        for (int i = 0; i < total; i++)
            seen[global[i]]++;
        /* trimmed to the longest row of the rank's own rows */
        if (r->max_len) {
            for (int i = 0; i < r->n[k]; i++) {
                int len = fx_length(s, ids[i], sp->max_len);
                longest = len > longest ? len : longest;
            }
            CHECK(r->n[k] == 0 || r->len[k] == longest, "len %d, longest %d", r->len[k], longest);
        }
        if (c.epoch != epoch) {
            int64_t once = 0;
            for (int64_t i = 0; i < n; i++) {
                CHECK(seen[i] <= 1, "sample twice in an epoch");
                once += seen[i];
            }
            /* a run resumed mid-epoch covers the rest of that epoch */
            CHECK(once == ref.epoch_len - first_pos, "epoch covered %lld of %lld", (long long)once,
                  (long long)(ref.epoch_len - first_pos));
            first_pos = 0;
            memset(seen, 0, sizeof(int) * (size_t)n);
            epoch = c.epoch;
        }
    }
    free(seen);
    free(counts);
    free(displs);
    free(want);
    free(global);
    sampler_free(&ref);
}

static void test_training(const char *dir, const fx_spec *base, const char *stem, loader_options o,
                          int steps) {
    char path[2][600];
    dataset *ds[2];
    for (int ch = 0; ch < 2; ch++) {
        char name[64];
        snprintf(name, sizeof name, "%s_%d.h5", stem, ch);
        fx_path(path[ch], sizeof path[ch], dir, name);
        ds[ch] = open_ok(path[ch]);
    }
    if (o.sampler.bucket_window) /* for the one-rank reference */
        o.sampler.lengths = ds[0]->splits[o.split].lengths;
    int cap = (int)((o.sampler.batch_size + g_size - 1) / g_size);
    record ref, got;
    record_init(&ref, ds[0], steps, cap);
    record_init(&got, ds[0], steps, cap);
    o.mode = LOADER_MODE_STREAM;
    o.no_map = true; /* through HDF5 */
    run(ds[0], &o, &ref, steps);
    check_global(ds[0], &o, &ref, base);
    /* every other way of reading gives the same bytes */
    for (int ch = 0; ch < 2; ch++)
        for (int mode = 0; mode < 4; mode++) {
            loader_options v = o;
            v.mode = mode == 0 ? LOADER_MODE_STREAM : LOADER_MODE_MEMORY;
            v.synchronous = mode == 2;
            v.depth = mode == 1 ? 2 : 4;
            v.no_map = mode != 3;
            run(ds[ch], &v, &got, steps);
            record_equal(&ref, &got, 0, steps, stem);
        }
    /* resume from the cursor of batch k: the rest is the same */
    for (int k = 2; k < steps - 1; k += 5) {
        loader_options v = o;
        v.start = (sampler_cursor){ref.next_epoch[k], ref.next_pos[k]};
        run(ds[1], &v, &got, steps - k - 1);
        got.steps = steps;
        record_equal(&ref, &got, k + 1, steps - k - 1, "resume");
    }
    record_free(&ref);
    record_free(&got);
    dataset_close(ds[0]);
    dataset_close(ds[1]);
}

static void test_eval(const char *dir) {
    char path[600];
    fx_path(path, sizeof path, dir, "image_1.h5");
    dataset *ds = open_ok(path);
    int64_t n = ds->splits[DATASET_SPLIT_VAL].n;
    for (int mode = 0; mode < 2; mode++) {
        loader_options o = {.split = DATASET_SPLIT_VAL,
                            .mode = mode ? LOADER_MODE_MEMORY : LOADER_MODE_STREAM,
                            .eval = true,
                            .eval_batch = 2};
        loader *l = loader_ok(ds, &o);
        for (int pass = 0; pass < 2; pass++) {
            int64_t mine[16], count = 0;
            batch *b;
            while ((b = loader_next(l)) != NULL) {
                for (int i = 0; i < b->n; i++) {
                    CHECK(b->labels[i] == fx_label(1, b->ids[i], 10), "eval label");
                    mine[count++] = b->ids[i];
                }
            }
            CHECK(loader_next(l) == NULL, "eval stays at its end");
            int c = (int)count, *counts = malloc(sizeof(int) * g_size),
                *displs = malloc(sizeof(int) * g_size);
            MPI_Allgather(&c, 1, MPI_INT, counts, 1, MPI_INT, MPI_COMM_WORLD);
            int total = 0;
            for (int q = 0; q < g_size; q++) {
                displs[q] = total;
                total += counts[q];
            }
            int64_t all[64];
            MPI_Allgatherv(mine, c, MPI_INT64_T, all, counts, displs, MPI_INT64_T, MPI_COMM_WORLD);
            CHECK(total == n, "eval saw %d of %lld", total, (long long)n);
            for (int i = 0; i < total; i++)
                CHECK(all[i] == i, "eval order: contiguous ranges in rank order");
            free(counts);
            free(displs);
            loader_rewind(l);
        }
        loader_free(l);
    }
    dataset_close(ds);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    char dir[512] = "";
    fx_spec img = fx_image_spec(), txt = fx_text_spec();
    img.n[0] = 43;
    txt.n[0] = 97;
    if (g_rank == 0) {
        fx_tmpdir(dir, sizeof dir);
        for (int ch = 0; ch < 2; ch++) {
            char p[600], name[32];
            img.chunked = txt.chunked = ch;
            snprintf(name, sizeof name, "image_%d.h5", ch);
            fx_path(p, sizeof p, dir, name);
            fx_write(p, &img);
            snprintf(name, sizeof name, "text_%d.h5", ch);
            fx_path(p, sizeof p, dir, name);
            fx_write(p, &txt);
        }
    }
    MPI_Bcast(dir, sizeof dir, MPI_CHAR, 0, MPI_COMM_WORLD);

    loader_options o = {.split = DATASET_SPLIT_TRAIN,
                        .sampler = {.seed = 77, .batch_size = 8, .shuffle = true}};
    test_training(dir, &img, "image", o, 13); /* 43 / 8: 6 steps an epoch */
    o.sampler.drop_last = true;
    o.start = (sampler_cursor){3, 16};
    test_training(dir, &img, "image", o, 11);
    loader_options t = {
        .split = DATASET_SPLIT_TRAIN,
        .sampler = {.seed = 5, .batch_size = 12, .shuffle = true, .bucket_window = 3}};
    test_training(dir, &txt, "text", t, 20); /* bucketed: 97 / 12 */
    test_eval(dir);

    MPI_Barrier(MPI_COMM_WORLD);
    if (g_rank == 0) {
        fx_rmtree(dir);
        printf("mpi_dataset: %d ranks OK\n", g_size);
    }
    MPI_Finalize();
    return 0;
}
