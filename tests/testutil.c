#include "testutil.h"

#include "core/check.h"
#include "core/rng.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

tensor *tu_leaf(int ndim, const int *shape, bool with_grad, float scale, uint64_t seed) {
    tensor *t = xcalloc(1, sizeof *t);
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t->shape[i] = shape[i];
    t->numel = shape_numel(ndim, shape);
    t->dtype = DTYPE_F32;
    t->param = -1;
    t->data = xmalloc(sizeof(float) * (t->numel + 1));
    uint64_t key = rng_key(seed, 77, 0);
    for (int64_t i = 0; i < t->numel; i++)
        t->data[i] = scale * (2.0f * rng_uniform(key, i) - 1.0f);
    if (with_grad)
        t->grad = xcalloc(t->numel + 1, sizeof(float));
    return t;
}

tensor *tu_leaf_i32(int ndim, const int *shape, int lo, int hi, uint64_t seed) {
    tensor *t = xcalloc(1, sizeof *t);
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t->shape[i] = shape[i];
    t->numel = shape_numel(ndim, shape);
    t->dtype = DTYPE_I32;
    t->param = -1;
    t->idata = xmalloc(sizeof(int32_t) * (t->numel + 1));
    uint64_t key = rng_key(seed, 78, 0);
    for (int64_t i = 0; i < t->numel; i++)
        t->idata[i] = lo + (int32_t)(rng_bits(key, i) % (uint64_t)(hi - lo));
    return t;
}

void tu_leaf_free(tensor *t) {
    if (!t)
        return;
    free(t->data);
    free(t->idata);
    free(t->grad);
    free(t);
}

static double tu_weighted_sum(const tensor *out, const float *r) {
    double s = 0;
    for (int64_t i = 0; i < out->numel; i++)
        s += (double)out->data[i] * r[i];
    return s;
}

void tu_gradcheck(const char *op_name, tu_forward_fn fn, void *user, int n_inputs, tensor **inputs,
                  float h, float atol, float rtol, int max_elems) {
    graph *g = graph_create(1 << 20, 0);
    for (int i = 0; i < n_inputs; i++)
        if (inputs[i]->grad)
            memset(inputs[i]->grad, 0, sizeof(float) * inputs[i]->numel);

    tensor *out = fn(g, inputs, user);
    assert_non_null(out->grad);
    float *r = xmalloc(sizeof(float) * out->numel);
    uint64_t key = rng_key(1234, 5, 6);
    for (int64_t i = 0; i < out->numel; i++) {
        r[i] = 2.0f * rng_uniform(key, i) - 1.0f;
        out->grad[i] = r[i];
    }
    graph_backward_tape(g);

    int failures = 0;
    double worst = 0;
    for (int k = 0; k < n_inputs; k++) {
        tensor *x = inputs[k];
        if (!x->grad)
            continue;
        int64_t stride = x->numel > max_elems ? (x->numel + max_elems - 1) / max_elems : 1;
        for (int64_t i = 0; i < x->numel; i += stride) {
            float saved = x->data[i];
            graph_set_grad(g, false);
            x->data[i] = saved + h;
            graph_reset(g);
            double fp = tu_weighted_sum(fn(g, inputs, user), r);
            x->data[i] = saved - h;
            graph_reset(g);
            double fm = tu_weighted_sum(fn(g, inputs, user), r);
            x->data[i] = saved;
            graph_set_grad(g, true);
            double numeric = (fp - fm) / (2.0 * h);
            double analytic = x->grad[i];
            double err = fabs(analytic - numeric);
            double excess = err - (atol + rtol * fabs(numeric));
            if (err > worst)
                worst = err;
            if (excess > 0 && failures++ < 10)
                print_error("%s: input %d element %lld: analytic %.6g numeric %.6g (|diff| %.3g)\n",
                            op_name, k, (long long)i, analytic, numeric, err);
        }
    }
    free(r);
    graph_free(g);
    if (failures)
        fail_msg("%s: %d gradient elements off (largest |diff| %.3g, tolerance atol %.1e rtol "
                 "%.1e)",
                 op_name, failures, worst, atol, rtol);
}

void tu_assert_close(const char *what, const float *got, const float *want, int64_t n, float atol,
                     float rtol) {
    double worst = -1, worst_excess = -INFINITY;
    int64_t at = -1;
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        double excess = d - (atol + rtol * fabs(want[i]));
        if (isnan(got[i]) != isnan(want[i]))
            excess = INFINITY;
        if (excess > 0)
            bad++;
        if (excess > worst_excess) {
            worst_excess = excess;
            worst = d;
            at = i;
        }
    }
    if (n > 0)
        print_message("%s: %lld values, largest |diff| %.3g at %lld (got %.8g want %.8g)\n", what,
                      (long long)n, worst, (long long)at, got[at], want[at]);
    if (bad)
        fail_msg("%s: %lld of %lld values beyond atol %.1e + rtol %.1e", what, (long long)bad,
                 (long long)n, atol, rtol);
}

static hid_t tu_h5_open_dataset(const char *path, const char *name, hid_t *file) {
    *file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (*file < 0)
        fail_msg("cannot open fixture %s (run scripts/make_fixtures.py)", path);
    hid_t d = H5Dopen2(*file, name, H5P_DEFAULT);
    if (d < 0)
        fail_msg("fixture %s has no dataset %s", path, name);
    return d;
}

static void *tu_h5_read(const char *path, const char *name, hid_t memtype, size_t elem, int64_t *n,
                        int *ndim, int *shape) {
    hid_t file;
    hid_t d = tu_h5_open_dataset(path, name, &file);
    hid_t s = H5Dget_space(d);
    hsize_t dims[8];
    int nd = H5Sget_simple_extent_dims(s, dims, NULL);
    assert_true(nd >= 0 && nd <= 8);
    int64_t count = 1;
    for (int i = 0; i < nd; i++) {
        count *= (int64_t)dims[i];
        if (shape)
            shape[i] = (int)dims[i];
    }
    void *buf = xmalloc(elem * (count + 1));
    assert_true(H5Dread(d, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
    H5Sclose(s);
    H5Dclose(d);
    H5Fclose(file);
    if (n)
        *n = count;
    if (ndim)
        *ndim = nd;
    return buf;
}

float *tu_h5_read_f32(const char *path, const char *name, int64_t *n, int *ndim, int *shape) {
    return tu_h5_read(path, name, H5T_NATIVE_FLOAT, sizeof(float), n, ndim, shape);
}

int32_t *tu_h5_read_i32(const char *path, const char *name, int64_t *n, int *ndim, int *shape) {
    return tu_h5_read(path, name, H5T_NATIVE_INT32, sizeof(int32_t), n, ndim, shape);
}

double tu_h5_attr(const char *path, const char *name, double fallback) {
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0)
        fail_msg("cannot open fixture %s", path);
    double v = fallback;
    if (H5Aexists(file, name) > 0) {
        hid_t a = H5Aopen(file, name, H5P_DEFAULT);
        assert_true(H5Aread(a, H5T_NATIVE_DOUBLE, &v) >= 0);
        H5Aclose(a);
    }
    H5Fclose(file);
    return v;
}

const char *tu_fixture(const char *file) {
    static char buf[512];
    snprintf(buf, sizeof buf, "tests/fixtures/%s", file);
    return buf;
}
