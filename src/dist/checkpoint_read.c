/*
 * checkpoint_read.c - reading a checkpoint back, at any rank count.
 *
 * Every rank reads the root attributes and every parameter (parameters are
 * replicated), and only the moment range [lo, hi) it owns now: a checkpoint
 * written by 4 ranks loads on 1, 2 or 3 with no conversion, because the
 * moments are one flat array whatever wrote them. Every dataset's checksum
 * is verified: parameters by each rank on its own copy, moments by adding
 * the ranks' parts.
 *
 * A broken file is bad input, not a bug: every function here returns false
 * with a message naming the file and what is wrong, the same on all ranks,
 * so `--resume auto` can skip it and an explicit --resume can exit 2.
 */
#include "dist/check_dist.h"
#include "dist/checkpoint.h"
#include "dist/checkpoint_h5.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Collective: opens path read-only through MPI-IO; -1 with err on failure. */
static hid_t open_checkpoint(const comm *c, const char *path, char *err, size_t errlen) {
    hid_t fapl = ckpt_fapl_mpio(c, false);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (f < 0)
        snprintf(err, errlen, "%s: cannot open as HDF5 (missing, truncated or not a checkpoint)",
                 path);
    return f;
}

static bool read_str_into(hid_t f, const char *name, char *out, size_t len) {
    char *s = ckpt_attr_read_str(f, name);
    if (!s)
        return false;
    bool fits = strlen(s) < len;
    snprintf(out, len, "%s", s);
    free(s);
    return fits;
}

bool ckpt_read_meta(const comm *c, const char *path, ckpt_meta *m, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    ckpt_h5_errors e = ckpt_h5_errors_off();
    bool ok = false;
    hid_t f = open_checkpoint(c, path, err, errlen);
    if (f < 0)
        goto done;
    char format[32] = "";
    int64_t version = 0, complete = 0, world = 0;
    CKPT_NEED(read_str_into(f, "format", format, sizeof format) &&
                  !strcmp(format, "heed-checkpoint"),
              "%s: not a heed checkpoint (root attribute format != 'heed-checkpoint')", path);
    CKPT_NEED(ckpt_attr_read_i64(f, "format_version", &version) && version == CKPT_FORMAT_VERSION,
              "%s: checkpoint format version %lld, this heed reads version %d", path,
              (long long)version, CKPT_FORMAT_VERSION);
    CKPT_NEED(ckpt_attr_read_i64(f, "complete", &complete) && complete == 1,
              "%s: incomplete checkpoint (no 'complete' attribute)", path);
    bool attrs =
        read_str_into(f, "model", m->model, sizeof m->model) &&
        read_str_into(f, "arch", m->arch, sizeof m->arch) &&
        read_str_into(f, "heed_version", m->heed_version, sizeof m->heed_version) &&
        read_str_into(f, "schedule", m->schedule, sizeof m->schedule) &&
        ckpt_attr_read_i64(f, "world_size", &world) && ckpt_attr_read_i64(f, "step", &m->step) &&
        ckpt_attr_read_i64(f, "epoch", &m->epoch) &&
        ckpt_attr_read_i64(f, "step_in_epoch", &m->step_in_epoch) &&
        ckpt_attr_read_i64(f, "global_batch", &m->global_batch) &&
        ckpt_attr_read_i64(f, "train_size", &m->train_size) &&
        ckpt_attr_read_i64(f, "steps_per_epoch", &m->steps_per_epoch) &&
        ckpt_attr_read_u64(f, "seed", &m->seed) && ckpt_attr_read_i64(f, "adam_t", &m->adam_t) &&
        ckpt_attr_read_f32(f, "base_lr", &m->base_lr) && ckpt_attr_read_f32(f, "lr", &m->lr) &&
        ckpt_attr_read_i64(f, "warmup", &m->warmup) &&
        ckpt_attr_read_i64(f, "total_steps", &m->total_steps);
    CKPT_NEED(attrs,
              "%s: a root attribute of the checkpoint is missing or malformed "
              "(docs/checkpoint-format.md lists them)",
              path);
    m->world_size = (int)world;
    m->config = ckpt_attr_read_str(f, "config");
    CKPT_NEED(m->config, "%s: the checkpoint has no 'config' attribute", path);
    ok = true;
done:
    if (f >= 0)
        H5Fclose(f);
    ckpt_h5_errors_restore(e);
    ok = ckpt_agree(c, ok, err, errlen);
    if (!ok)
        ckpt_meta_free(m);
    return ok;
}

/* Reads /params/<name> whole into dst after checking its shape against t.
 * Independent I/O: every rank reads all of it, so a collective transfer
 * would only add a synchronisation per tensor. Not collective. */
static bool read_param(hid_t g, hid_t dxpl, const char *path, const tensor *t, float *dst,
                       char *err, size_t errlen) {
    bool ok = false;
    hid_t d = -1, s = -1;
    CKPT_NEED(H5Lexists(g, t->name, H5P_DEFAULT) > 0,
              "%s: parameter '%s' is missing (checkpoint of another model or architecture?)", path,
              t->name);
    d = H5Dopen2(g, t->name, H5P_DEFAULT);
    CKPT_NEED(d >= 0, "%s: cannot open dataset /params/%s", path, t->name);
    s = H5Dget_space(d);
    hsize_t dims[8];
    int nd = s >= 0 ? H5Sget_simple_extent_ndims(s) : -1;
    CKPT_NEED(nd >= 1 && nd <= 8 && H5Sget_simple_extent_dims(s, dims, NULL) == nd,
              "%s: /params/%s has an unusable dataspace", path, t->name);
    bool same = nd == t->ndim;
    for (int k = 0; same && k < nd; k++)
        same = dims[k] == (hsize_t)t->shape[k];
    char want[64] = "", got[64] = "";
    for (int k = 0; k < t->ndim; k++)
        snprintf(want + strlen(want), sizeof want - strlen(want), "%s%d", k ? "," : "",
                 t->shape[k]);
    for (int k = 0; k < nd && k < 8; k++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%llu", k ? "," : "",
                 (unsigned long long)dims[k]);
    CKPT_NEED(same,
              "%s: parameter '%s' has shape [%s] in the file, the model expects [%s] "
              "(another architecture or configuration?)",
              path, t->name, got, want);
    CKPT_NEED(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, dxpl, dst) >= 0,
              "%s: reading /params/%s failed (truncated file?)", path, t->name);
    uint64_t want_sum = 0;
    CKPT_NEED(ckpt_attr_read_u64(d, "checksum", &want_sum), "%s: /params/%s has no checksum", path,
              t->name);
    CKPT_NEED(ckpt_checksum(dst, 0, t->numel) == want_sum,
              "%s: checksum mismatch in /params/%s: the file is corrupt", path, t->name);
    ok = true;
done:
    if (s >= 0)
        H5Sclose(s);
    if (d >= 0)
        H5Dclose(d);
    return ok;
}

/* Collective: reads [lo, hi) of the flat moment dataset `name` into dst and
 * verifies the checksum from the parts of all ranks. */
static bool read_moment(const comm *c, hid_t go, hid_t dxpl, const char *path, const char *name,
                        int64_t n, int64_t lo, int64_t hi, float *dst, char *err, size_t errlen) {
    bool ok = false;
    hid_t d = -1, fs = -1, ms = -1;
    d = H5Dopen2(go, name, H5P_DEFAULT);
    CKPT_NEED(d >= 0, "%s: dataset /optim/%s is missing", path, name);
    fs = H5Dget_space(d);
    hsize_t dim = 0;
    CKPT_NEED(fs >= 0 && H5Sget_simple_extent_ndims(fs) == 1 &&
                  H5Sget_simple_extent_dims(fs, &dim, NULL) == 1 && dim == (hsize_t)n,
              "%s: /optim/%s has %llu elements, the model has %lld", path, name,
              (unsigned long long)dim, (long long)n);
    hsize_t start = (hsize_t)lo, count = (hsize_t)(hi - lo), mdim = count > 0 ? count : 1;
    ms = H5Screate_simple(1, &mdim, NULL);
    CKPT_NEED(ms >= 0, "%s: dataspace for /optim/%s", path, name);
    if (count > 0) {
        CKPT_NEED(H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &count, NULL) >= 0,
                  "%s: selecting /optim/%s", path, name);
    } else {
        CKPT_NEED(H5Sselect_none(fs) >= 0 && H5Sselect_none(ms) >= 0, "%s: selecting /optim/%s",
                  path, name);
    }
    CKPT_NEED(H5Dread(d, H5T_NATIVE_FLOAT, ms, fs, dxpl, dst) >= 0,
              "%s: reading /optim/%s failed (truncated file?)", path, name);
    uint64_t want_sum = 0;
    CKPT_NEED(ckpt_attr_read_u64(d, "checksum", &want_sum), "%s: /optim/%s has no checksum", path,
              name);
    ok = true;
done:
    if (ms >= 0)
        H5Sclose(ms);
    if (fs >= 0)
        H5Sclose(fs);
    if (d >= 0)
        H5Dclose(d);
    /* Ranks' parts of the checksum only add up when all ranks read. */
    if (!ckpt_agree(c, ok, err, errlen))
        return false;
    uint64_t part = ckpt_checksum(dst, lo, hi - lo), sum = 0;
    HEED_MPI_CHECK(MPI_Allreduce(&part, &sum, 1, MPI_UINT64_T, MPI_SUM, c->mpi));
    if (sum != want_sum) {
        snprintf(err, errlen, "%s: checksum mismatch in /optim/%s: the file is corrupt", path,
                 name);
        return false;
    }
    return true;
}

bool ckpt_read_state(const comm *c, const char *path, params *ps, adam_state *adam, char *err,
                     size_t errlen) {
    ckpt_h5_errors e = ckpt_h5_errors_off();
    bool ok = false;
    hid_t g = -1, go = -1, dxpl = -1;
    int64_t numel = 0, t = 0;
    hid_t f = open_checkpoint(c, path, err, errlen);
    if (f < 0)
        goto done;
    dxpl = H5Pcreate(H5P_DATASET_XFER);
    CKPT_NEED(dxpl >= 0 && H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE) >= 0, "%s: transfer list",
              path);
    CKPT_NEED(ckpt_attr_read_i64(f, "numel", &numel) && ckpt_attr_read_i64(f, "adam_t", &t),
              "%s: root attributes numel/adam_t missing", path);
    g = H5Gopen2(f, "params", H5P_DEFAULT);
    CKPT_NEED(g >= 0, "%s: group /params is missing", path);
    H5G_info_t info;
    CKPT_NEED(H5Gget_info(g, &info) >= 0, "%s: cannot list /params", path);
    CKPT_NEED(info.nlinks == (hsize_t)ps->count,
              "%s: %llu parameters in the file, the model has %d (checkpoint of another model or "
              "architecture?)",
              path, (unsigned long long)info.nlinks, ps->count);
    for (int i = 0; i < ps->count; i++)
        if (!read_param(g, H5P_DEFAULT, path, ps->tensors[i], ps->data + ps->offset[i], err,
                        errlen))
            goto done;
    CKPT_NEED(numel == ps->numel, "%s: flat parameter buffer of %lld floats, the model has %lld",
              path, (long long)numel, (long long)ps->numel);
    go = H5Gopen2(f, "optim", H5P_DEFAULT);
    CKPT_NEED(go >= 0, "%s: group /optim is missing", path);
    ok = true;
done:
    ok = ckpt_agree(c, ok, err, errlen);
    if (ok)
        ok = read_moment(c, go, dxpl, path, "adam_m", ps->numel, adam->lo, adam->hi, adam->m, err,
                         errlen) &&
             read_moment(c, go, dxpl, path, "adam_v", ps->numel, adam->lo, adam->hi, adam->v, err,
                         errlen);
    if (ok)
        adam->t = t;
    if (go >= 0)
        H5Gclose(go);
    if (g >= 0)
        H5Gclose(g);
    if (dxpl >= 0)
        H5Pclose(dxpl);
    if (f >= 0)
        H5Fclose(f);
    ckpt_h5_errors_restore(e);
    return ok;
}
