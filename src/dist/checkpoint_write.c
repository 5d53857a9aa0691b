/*
 * checkpoint_write.c - the collective, crash-safe checkpoint writer.
 *
 *   path.tmp  <- H5Fcreate (MPI-IO, every rank)
 *             <- /params/<name>: rows [lo, hi) of each tensor from rank r
 *             <- /optim/adam_m, adam_v: each rank its moment range
 *             <- checksums, root attributes, `complete` last
 *   H5Fflush + H5Fclose (collective), then rank 0: fsync(path.tmp),
 *   rename(path.tmp, path), fsync(dir)
 *
 * The layout follows HDF5's ph5_hyperslab_by_row example (one hyperslab
 * per rank, collective calls, handles closed in reverse order) with an
 * uneven split (ring_chunk_range) and every return value checked; the commit
 * follows redis's rdbSave. Until the rename, readers see the old checkpoint;
 * after it, the new one is complete on disk.
 */
#include "dist/allreduce.h"
#include "dist/check_dist.h"
#include "dist/checkpoint.h"
#include "dist/checkpoint_h5.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* HEED_CKPT_CRASH=STAGE[:STEP]: every rank dies by SIGKILL after STAGE, as
 * if the job had been killed -9 at that moment. Collective (a barrier first,
 * so every rank has finished the stage). */
static void crash_point(const comm *c, const char *stage, int64_t step) {
    const char *env = getenv("HEED_CKPT_CRASH");
    if (!env || !env[0])
        return;
    size_t n = strcspn(env, ":");
    if (strlen(stage) != n || strncmp(env, stage, n) != 0)
        return;
    if (env[n] == ':' && strtoll(env + n + 1, NULL, 10) != step)
        return;
    HEED_MPI_CHECK(MPI_Barrier(c->mpi));
    if (c->rank == 0) {
        fprintf(stderr, "heed: HEED_CKPT_CRASH: killing the job after stage '%s' of step %lld\n",
                stage, (long long)step);
        fflush(stderr);
    }
    raise(SIGKILL);
}

/* Collective: writes rows [lo, hi) of a float dataset of shape dims[0..nd)
 * from buf (the rows, contiguous); an empty range still joins the call. */
static void write_rows(hid_t d, hid_t dxpl, int nd, const hsize_t *dims, hsize_t lo, hsize_t hi,
                       const float *buf, const char *what) {
    hid_t fs = H5Dget_space(d);
    HEED_H5_CHECK(fs, what);
    hsize_t start[4] = {lo, 0, 0, 0}, count[4] = {hi - lo, 1, 1, 1};
    hsize_t row = 1;
    for (int k = 1; k < nd; k++) {
        count[k] = dims[k];
        row *= dims[k];
    }
    hsize_t n = (hi - lo) * row;
    hsize_t mdim = n > 0 ? n : 1;
    hid_t ms = H5Screate_simple(1, &mdim, NULL);
    HEED_H5_CHECK(ms, what);
    if (n > 0) {
        HEED_H5_CHECK(H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL), what);
    } else {
        HEED_H5_CHECK(H5Sselect_none(fs), what);
        HEED_H5_CHECK(H5Sselect_none(ms), what);
    }
    HEED_H5_CHECK(H5Dwrite(d, H5T_NATIVE_FLOAT, ms, fs, dxpl, buf), what);
    HEED_H5_CHECK(H5Sclose(ms), what);
    HEED_H5_CHECK(H5Sclose(fs), what);
}

static hid_t create_f32(hid_t loc, const char *name, int nd, const hsize_t *dims,
                        const char *what) {
    hid_t s = H5Screate_simple(nd, dims, NULL);
    HEED_H5_CHECK(s, what);
    /* Parallel HDF5 allocates datasets at creation and by default fills
     * them with zeros first: every byte would be written twice. */
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    HEED_H5_CHECK(dcpl, what);
    HEED_H5_CHECK(H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER), what);
    hid_t d = H5Dcreate2(loc, name, H5T_IEEE_F32LE, s, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    HEED_H5_CHECK(d, what);
    HEED_H5_CHECK(H5Pclose(dcpl), what);
    HEED_H5_CHECK(H5Sclose(s), what);
    return d;
}

/* The moment range this rank writes: its own shard when the ranks' ranges
 * partition [0, n) (ZeRO-1), chunk r of [0, n) when every rank holds all of
 * it (replicated Adam). Collective. */
static void moment_range(const comm *c, const adam_state *adam, int64_t n, int64_t *lo,
                         int64_t *hi) {
    int p = c->size;
    int64_t mine[2] = {adam->lo, adam->hi};
    int64_t *all = xmalloc(sizeof(int64_t) * 2 * (size_t)p);
    HEED_MPI_CHECK(MPI_Allgather(mine, 2, MPI_INT64_T, all, 2, MPI_INT64_T, c->mpi));
    bool replicated = true;
    int64_t covered = 0;
    for (int r = 0; r < p; r++) {
        replicated &= all[2 * r] == 0 && all[2 * r + 1] == n;
        HEED_ASSERT(0 <= all[2 * r] && all[2 * r] <= all[2 * r + 1] && all[2 * r + 1] <= n);
        covered += all[2 * r + 1] - all[2 * r];
    }
    if (replicated) {
        ring_chunk_range(n, p, c->rank, lo, hi);
    } else {
        /* Shards must tile [0, n): disjoint and complete. */
        HEED_ASSERT(covered == n);
        for (int a = 0; a < p; a++)
            for (int b = a + 1; b < p; b++)
                HEED_ASSERT(all[2 * a + 1] <= all[2 * b] || all[2 * b + 1] <= all[2 * a] ||
                            all[2 * a] == all[2 * a + 1] || all[2 * b] == all[2 * b + 1]);
        *lo = adam->lo;
        *hi = adam->hi;
    }
    free(all);
}

static void write_meta(hid_t f, const comm *c, const ckpt_meta *m, const params *ps,
                       const char *what) {
    ckpt_attr_write_str(f, "format", "heed-checkpoint", what);
    ckpt_attr_write_i64(f, "format_version", CKPT_FORMAT_VERSION, what);
    ckpt_attr_write_str(f, "heed_version", HEED_VERSION, what);
    ckpt_attr_write_str(f, "model", m->model, what);
    ckpt_attr_write_str(f, "arch", m->arch, what);
    ckpt_attr_write_str(f, "config", m->config ? m->config : "", what);
    ckpt_attr_write_i64(f, "world_size", c->size, what);
    ckpt_attr_write_i64(f, "step", m->step, what);
    ckpt_attr_write_i64(f, "epoch", m->epoch, what);
    ckpt_attr_write_i64(f, "step_in_epoch", m->step_in_epoch, what);
    ckpt_attr_write_i64(f, "global_batch", m->global_batch, what);
    ckpt_attr_write_i64(f, "train_size", m->train_size, what);
    ckpt_attr_write_i64(f, "steps_per_epoch", m->steps_per_epoch, what);
    ckpt_attr_write_u64(f, "seed", m->seed, what);
    ckpt_attr_write_i64(f, "adam_t", m->adam_t, what);
    ckpt_attr_write_str(f, "schedule", m->schedule, what);
    ckpt_attr_write_f32(f, "base_lr", m->base_lr, what);
    ckpt_attr_write_f32(f, "lr", m->lr, what);
    ckpt_attr_write_i64(f, "warmup", m->warmup, what);
    ckpt_attr_write_i64(f, "total_steps", m->total_steps, what);
    ckpt_attr_write_i64(f, "numel", ps->numel, what);
    ckpt_attr_write_i64(f, "param_count", ps->count, what);
}

/* Rank 0 only: fsync(tmp), rename(tmp, path), fsync(dirname(path)). */
static void commit_file(const char *tmp, const char *path) {
    int fd = open(tmp, O_RDONLY);
    if (fd < 0)
        HEED_DIE(HEED_EXIT_INTERNAL, "checkpoint: open '%s' for fsync: %s", tmp, strerror(errno));
    if (fsync(fd) != 0)
        HEED_DIE(HEED_EXIT_INTERNAL, "checkpoint: fsync '%s': %s", tmp, strerror(errno));
    if (close(fd) != 0)
        HEED_DIE(HEED_EXIT_INTERNAL, "checkpoint: close '%s': %s", tmp, strerror(errno));
    if (rename(tmp, path) != 0)
        HEED_DIE(HEED_EXIT_INTERNAL, "checkpoint: rename '%s' to '%s': %s", tmp, path,
                 strerror(errno));
    char dir[CKPT_PATH];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *(slash == dir ? slash + 1 : slash) = 0;
    else
        snprintf(dir, sizeof dir, ".");
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    if (dfd < 0)
        HEED_DIE(HEED_EXIT_INTERNAL, "checkpoint: open directory '%s': %s", dir, strerror(errno));
    if (fsync(dfd) != 0)
        HEED_DIE(HEED_EXIT_INTERNAL, "checkpoint: fsync directory '%s': %s", dir, strerror(errno));
    if (close(dfd) != 0)
        HEED_DIE(HEED_EXIT_INTERNAL, "checkpoint: close directory '%s': %s", dir, strerror(errno));
}

void ckpt_write_file(const comm *c, const char *path, const ckpt_meta *meta, const params *ps,
                     const adam_state *adam) {
    char tmp[CKPT_PATH + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (c->rank == 0 && unlink(tmp) != 0 && errno != ENOENT)
        HEED_DIE(HEED_EXIT_INTERNAL, "checkpoint: cannot remove stale '%s': %s", tmp,
                 strerror(errno));
    HEED_MPI_CHECK(MPI_Barrier(c->mpi));

    hid_t fapl = ckpt_fapl_mpio(c, true);
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (f < 0)
        HEED_DIE(HEED_EXIT_INTERNAL,
                 "checkpoint: cannot create '%s' (directory missing or not "
                 "writable?)",
                 tmp);
    HEED_H5_CHECK(H5Pclose(fapl), tmp);
    hid_t dxpl = ckpt_dxpl();
    /* Parameter rows go out with independent transfers by default: each
     * rank's rows are one contiguous range it writes itself, and a
     * collective transfer per tensor costs a synchronisation per tensor
     * (hundreds per checkpoint; 2x slower on the 2-core test machine).
     * The moments, two large arrays, use collective transfers.
     * HEED_CKPT_IO=collective makes the parameter writes collective too. */
    const char *io = getenv("HEED_CKPT_IO");
    hid_t param_dxpl = io && !strcmp(io, "collective") ? dxpl : H5P_DEFAULT;
    crash_point(c, "created", meta->step);

    /* Parameters: rank r writes rows chunk r of every tensor. */
    int count = ps->count;
    uint64_t *sums = xcalloc((size_t)count + 2, sizeof *sums);
    hid_t *dsets = xmalloc(sizeof(hid_t) * ((size_t)count + 2));
    hid_t g = H5Gcreate2(f, "params", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    HEED_H5_CHECK(g, tmp);
    for (int i = 0; i < count; i++) {
        const tensor *t = ps->tensors[i];
        hsize_t dims[4];
        for (int k = 0; k < t->ndim; k++)
            dims[k] = (hsize_t)t->shape[k];
        dsets[i] = create_f32(g, t->name, t->ndim, dims, t->name);
        int64_t lo, hi, row = t->numel / (t->shape[0] > 0 ? t->shape[0] : 1);
        ring_chunk_range(t->shape[0], c->size, c->rank, &lo, &hi);
        const float *src = ps->data + ps->offset[i] + lo * row;
        write_rows(dsets[i], param_dxpl, t->ndim, dims, (hsize_t)lo, (hsize_t)hi, src, t->name);
        sums[i] = ckpt_checksum(src, lo * row, (hi - lo) * row);
    }
    crash_point(c, "params", meta->step);

    /* Moments: flat [numel], each rank its range. */
    int64_t n = ps->numel, mlo, mhi;
    moment_range(c, adam, n, &mlo, &mhi);
    hid_t go = H5Gcreate2(f, "optim", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    HEED_H5_CHECK(go, tmp);
    hsize_t flat = (hsize_t)n;
    const float *mom[2] = {adam->m + (mlo - adam->lo), adam->v + (mlo - adam->lo)};
    const char *mom_name[2] = {"adam_m", "adam_v"};
    for (int k = 0; k < 2; k++) {
        dsets[count + k] = create_f32(go, mom_name[k], 1, &flat, mom_name[k]);
        write_rows(dsets[count + k], dxpl, 1, &flat, (hsize_t)mlo, (hsize_t)mhi, mom[k],
                   mom_name[k]);
        sums[count + k] = ckpt_checksum(mom[k], mlo, mhi - mlo);
    }
    crash_point(c, "moments", meta->step);

    /* Checksums: the parts of all ranks add up (mod 2^64) to the whole. */
    HEED_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, sums, count + 2, MPI_UINT64_T, MPI_SUM, c->mpi));
    for (int i = 0; i < count + 2; i++) {
        ckpt_attr_write_u64(dsets[i], "checksum", sums[i], tmp);
        HEED_H5_CHECK(H5Dclose(dsets[i]), tmp);
    }
    HEED_H5_CHECK(H5Gclose(go), tmp);
    HEED_H5_CHECK(H5Gclose(g), tmp);
    write_meta(f, c, meta, ps, tmp);
    ckpt_attr_write_i64(f, "complete", 1, tmp);
    HEED_H5_CHECK(H5Fflush(f, H5F_SCOPE_GLOBAL), tmp);
    HEED_H5_CHECK(H5Pclose(dxpl), tmp);
    HEED_H5_CHECK(H5Fclose(f), tmp);
    free(sums);
    free(dsets);
    crash_point(c, "closed", meta->step);

    if (c->rank == 0)
        commit_file(tmp, path);
    /* Nobody returns (and perhaps deletes an old checkpoint) before the
     * new one is in place. */
    HEED_MPI_CHECK(MPI_Barrier(c->mpi));
    crash_point(c, "renamed", meta->step);
}
