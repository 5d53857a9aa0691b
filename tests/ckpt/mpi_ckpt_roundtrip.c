/* Checkpoint round trips under mpirun -n p (1-4).
 *
 *  - exact resume: N steps, checkpoint, M more steps equals a fresh model
 *    that loads the checkpoint and runs the same M steps, bitwise (losses
 *    and parameters), with ZeRO-1 moments written as shards;
 *  - another rank count: in exact mode, a 1-rank replica (MPI_COMM_SELF)
 *    loading the p-rank checkpoint continues bitwise like the p ranks, and
 *    p ranks loading a 1-rank checkpoint continue like the 1-rank run;
 *  - the metadata round trip;
 *  - refusals with clear errors on every rank: another architecture, a
 *    flipped byte in the moments, a truncated file, not a checkpoint. */
#include "app/trainer.h"
#include "dist/checkpoint.h"

#include "core/check.h"
#include "core/rng.h"
#include "../dist/mpi_check.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { N = 96, L = 10, V = 30, K = 3, GLOBAL_B = 12, MB = 2, STEPS_A = 3, STEPS_B = 3 };

static int32_t tokens[N * L], labels[N];
static int64_t ids[N];

static void make_data(void) {
    uint64_t key = rng_key(4, 4, 4);
    for (int n = 0; n < N; n++) {
        int len = 4 + (int)(rng_bits(key, n) % (L - 4)), sum = 0;
        for (int t = 0; t < L; t++) {
            int tok = t < len ? 1 + (int)(rng_bits(key, 1000 + n * L + t) % (V - 1)) : 0;
            tokens[n * L + t] = tok;
            sum += tok;
        }
        labels[n] = sum % K;
        ids[n] = n;
    }
}

static model *make_model(int dim) {
    data_shape shape = {.num_classes = K, .vocab_size = V, .max_len = L, .pad_id = 0};
    model_config cfg = model_config_default();
    cfg.dim = dim;
    cfg.heads = 2;
    cfg.depth = 2;
    cfg.ffn = 32;
    cfg.dropout = 0.2f;
    cfg.seed = 5;
    char err[256];
    model *m = model_create("transformer", &cfg, &shape, err, sizeof err);
    CHECK(m, "%s", err);
    return m;
}

/* This rank's share of global batch `step`: whole micro-batches (exact). */
static sample_block block_of(const comm *c, int64_t step) {
    int64_t mlo, mhi;
    ring_chunk_range(GLOBAL_B / MB, c->size, c->rank, &mlo, &mhi);
    int first = (int)((step * GLOBAL_B) % N) + (int)(mlo * MB);
    sample_block b = {.n = (int)((mhi - mlo) * MB),
                      .ids = ids + first,
                      .tokens = tokens + first * L,
                      .L = L,
                      .labels = labels + first};
    return b;
}

static double steps(trainer *t, const comm *c, int64_t from, int64_t to, double *losses) {
    double last = 0;
    for (int64_t s = from; s < to; s++) {
        sample_block b = block_of(c, s);
        step_result r = trainer_step(t, &b, GLOBAL_B, s, 1e-2f, 0.5f);
        CHECK(r.finite, "step %lld not finite", (long long)s);
        if (losses)
            losses[s - from] = r.loss;
        last = r.loss;
    }
    return last;
}

static ckpt_meta meta_at(int64_t step, const trainer *t) {
    ckpt_meta m;
    memset(&m, 0, sizeof m);
    snprintf(m.model, sizeof m.model, "transformer");
    snprintf(m.arch, sizeof m.arch, "dim=16 depth=2 heads=2");
    snprintf(m.schedule, sizeof m.schedule, "constant");
    m.step = step;
    m.epoch = step / 8;
    m.step_in_epoch = step % 8;
    m.global_batch = GLOBAL_B;
    m.train_size = N;
    m.steps_per_epoch = 8;
    m.seed = 11;
    m.adam_t = t->sync.adam.t;
    m.base_lr = m.lr = 1e-2f;
    m.total_steps = STEPS_A + STEPS_B;
    m.config = "model = transformer\ndim = 16\n";
    return m;
}

static void shared_dir(const comm *c, char *dir, size_t len) {
    if (c->rank == 0) {
        const char *base = getenv("TMPDIR");
        snprintf(dir, len, "%s/heed_ckpt_XXXXXX", base && base[0] ? base : "/tmp");
        CHECK(mkdtemp(dir), "mkdtemp");
    }
    MPI_Bcast(dir, (int)len, MPI_CHAR, 0, c->mpi);
}

/* Rank 0 xors one byte of dataset `obj`'s data in place. */
static void flip_byte(const char *path, const char *obj) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CHECK(f >= 0, "open %s", path);
    hid_t d = H5Dopen2(f, obj, H5P_DEFAULT);
    CHECK(d >= 0, "open %s", obj);
    haddr_t off = H5Dget_offset(d);
    CHECK(off != HADDR_UNDEF, "offset of %s", obj);
    H5Dclose(d);
    H5Fclose(f);
    FILE *fp = fopen(path, "r+b");
    CHECK(fp, "fopen %s", path);
    CHECK(fseek(fp, (long)off + 40, SEEK_SET) == 0, "seek");
    int ch = fgetc(fp);
    CHECK(ch != EOF, "read");
    CHECK(fseek(fp, (long)off + 40, SEEK_SET) == 0, "seek");
    CHECK(fputc(ch ^ 0x10, fp) != EOF, "write");
    CHECK(fclose(fp) == 0, "close");
}

static void copy_file(const char *from, const char *to) {
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    CHECK(a && b, "copy %s", from);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0)
        CHECK(fwrite(buf, 1, n, b) == n, "copy write");
    fclose(a);
    CHECK(fclose(b) == 0, "copy close");
}

static void expect_refused(const comm *c, const char *path, model *m, trainer *t,
                           const char *what) {
    char err[1024] = "";
    ckpt_meta meta;
    bool ok = ckpt_read_meta(c, path, &meta, err, sizeof err) &&
              ckpt_read_state(c, path, &m->ps, &t->sync.adam, err, sizeof err);
    CHECK(!ok, "%s was accepted", path);
    CHECK(strstr(err, what), "error for %s says '%s', expected '%s'", path, err, what);
    if (c->rank == 0)
        printf("refused as expected: %s\n", err);
    if (meta.config)
        ckpt_meta_free(&meta);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    comm world, self;
    comm_init(&world, MPI_COMM_WORLD);
    comm_init(&self, MPI_COMM_SELF);
    make_data();
    char dir[256], path[512], path1[512];
    shared_dir(&world, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/ckpt-p.h5", dir);
    snprintf(path1, sizeof path1, "%s/ckpt-1.h5", dir);
    adam_config ac = adam_config_default();

    /* p ranks, ZeRO-1, exact sums: A steps, checkpoint, B steps. */
    model *ma = make_model(16);
    trainer ta;
    trainer_init(&ta, ma, &world, &ac, true, true, MB, 0.0f, 11);
    steps(&ta, &world, 0, STEPS_A, NULL);
    ckpt_meta wm = meta_at(STEPS_A, &ta);
    ckpt_write_file(&world, path, &wm, &ma->ps, &ta.sync.adam);
    CHECK(access(path, F_OK) == 0, "%s not written", path);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK(access(tmp, F_OK) != 0, "%s left behind", tmp);
    float *saved = xmalloc(sizeof(float) * ma->ps.numel);
    memcpy(saved, ma->ps.data, sizeof(float) * ma->ps.numel);
    double la[STEPS_B], lb[STEPS_B];
    steps(&ta, &world, STEPS_A, STEPS_A + STEPS_B, la);

    /* Resume on the same ranks. */
    model *mb = make_model(16);
    trainer tb;
    trainer_init(&tb, mb, &world, &ac, true, true, MB, 0.0f, 11);
    char err[1024];
    ckpt_meta rm;
    CHECK(ckpt_read_meta(&world, path, &rm, err, sizeof err), "%s", err);
    CHECK(rm.step == STEPS_A && rm.world_size == world.size && rm.seed == 11 &&
              rm.global_batch == GLOBAL_B && rm.adam_t == STEPS_A &&
              !strcmp(rm.model, "transformer") && !strcmp(rm.arch, wm.arch) &&
              !strcmp(rm.config, wm.config) && rm.base_lr == 1e-2f,
          "metadata round trip");
    CHECK(ckpt_read_state(&world, path, &mb->ps, &tb.sync.adam, err, sizeof err), "%s", err);
    CHECK(memcmp(saved, mb->ps.data, sizeof(float) * mb->ps.numel) == 0, "parameters differ");
    CHECK(tb.sync.adam.t == STEPS_A, "adam t %lld", (long long)tb.sync.adam.t);
    steps(&tb, &world, STEPS_A, STEPS_A + STEPS_B, lb);
    for (int i = 0; i < STEPS_B; i++)
        CHECK(la[i] == lb[i], "resumed loss %d: %.9g vs %.9g", i, lb[i], la[i]);
    CHECK(memcmp(ma->ps.data, mb->ps.data, sizeof(float) * ma->ps.numel) == 0,
          "resumed parameters differ from the uninterrupted run");
    ckpt_meta_free(&rm);

    /* p -> 1: a single-rank replica loads the p-rank checkpoint. */
    model *ms = make_model(16);
    trainer ts;
    trainer_init(&ts, ms, &self, &ac, false, true, MB, 0.0f, 11);
    CHECK(ckpt_read_state(&self, path, &ms->ps, &ts.sync.adam, err, sizeof err), "%s", err);
    double ls[STEPS_B];
    steps(&ts, &self, STEPS_A, STEPS_A + STEPS_B, ls);
    for (int i = 0; i < STEPS_B; i++)
        CHECK(la[i] == ls[i], "1-rank resumed loss %d: %.9g vs %.9g", i, ls[i], la[i]);
    CHECK(memcmp(ma->ps.data, ms->ps.data, sizeof(float) * ma->ps.numel) == 0,
          "%d -> 1 ranks: parameters differ", world.size);

    /* 1 -> p: rank 0 writes a 1-rank checkpoint of a fresh 1-rank run. */
    model *m1 = make_model(16);
    trainer t1;
    trainer_init(&t1, m1, &self, &ac, false, true, MB, 0.0f, 11);
    steps(&t1, &self, 0, STEPS_A, NULL);
    if (world.rank == 0) {
        ckpt_meta m1m = meta_at(STEPS_A, &t1);
        ckpt_write_file(&self, path1, &m1m, &m1->ps, &t1.sync.adam);
    }
    MPI_Barrier(world.mpi);
    steps(&t1, &self, STEPS_A, STEPS_A + STEPS_B, NULL);
    model *mc = make_model(16);
    trainer tc;
    trainer_init(&tc, mc, &world, &ac, true, true, MB, 0.0f, 11);
    CHECK(ckpt_read_state(&world, path1, &mc->ps, &tc.sync.adam, err, sizeof err), "%s", err);
    steps(&tc, &world, STEPS_A, STEPS_A + STEPS_B, NULL);
    CHECK(memcmp(m1->ps.data, mc->ps.data, sizeof(float) * m1->ps.numel) == 0,
          "1 -> %d ranks: parameters differ", world.size);

    /* Refusals. */
    model *other = make_model(8);
    trainer to;
    trainer_init(&to, other, &world, &ac, true, false, 0, 0.0f, 11);
    expect_refused(&world, path, other, &to, "has shape");
    char bad[600];
    snprintf(bad, sizeof bad, "%s/corrupt.h5", dir);
    if (world.rank == 0) {
        copy_file(path, bad);
        flip_byte(bad, "/optim/adam_v");
    }
    MPI_Barrier(world.mpi);
    expect_refused(&world, bad, mb, &tb, "checksum mismatch in /optim/adam_v");
    if (world.rank == 0) {
        copy_file(path, bad);
        char obj[PARAMS_NAME_MAX + 16];
        snprintf(obj, sizeof obj, "/params/%s", mb->ps.tensors[mb->ps.count / 2]->name);
        flip_byte(bad, obj);
    }
    MPI_Barrier(world.mpi);
    expect_refused(&world, bad, mb, &tb, "checksum mismatch in /params/");
    if (world.rank == 0) {
        copy_file(path, bad);
        FILE *fp = fopen(path, "rb");
        CHECK(fp && fseek(fp, 0, SEEK_END) == 0, "size");
        long size = ftell(fp);
        fclose(fp);
        CHECK(truncate(bad, size / 2) == 0, "truncate");
    }
    MPI_Barrier(world.mpi);
    expect_refused(&world, bad, mb, &tb, "cannot open");
    if (world.rank == 0) {
        FILE *fp = fopen(bad, "wb");
        CHECK(fp && fputs("not hdf5", fp) >= 0 && fclose(fp) == 0, "write");
    }
    MPI_Barrier(world.mpi);
    expect_refused(&world, bad, mb, &tb, "cannot open");
    expect_refused(&world, "/nonexistent/ckpt.h5", mb, &tb, "cannot open");

    trainer_free(&to);
    model_free(other);
    trainer_free(&tc);
    model_free(mc);
    trainer_free(&t1);
    model_free(m1);
    trainer_free(&ts);
    model_free(ms);
    trainer_free(&tb);
    model_free(mb);
    trainer_free(&ta);
    model_free(ma);
    free(saved);
    MPI_Barrier(world.mpi);
    if (world.rank == 0) {
        remove(path);
        remove(path1);
        remove(bad);
        rmdir(dir);
        printf("OK: checkpoint round trips at %d ranks\n", world.size);
    }
    comm_free(&self);
    comm_free(&world);
    MPI_Finalize();
    return 0;
}
