/* heed explain's core (explain_run) on tiny image and text datasets with
 * randomly initialised models:
 *   - every exported self-attention row and every rollout vector sums to 1,
 *     and padded keys get no weight;
 *   - the exported maps and predictions are those of the forward pass: the
 *     same as a plain forward of each sample alone (batch independence);
 *   - the PNGs are valid and of the documented size, index.html lists them;
 *   - bad requests (range out of bounds, a model without attention) fail
 *     with a message and leave no files behind.
 * Singleton MPI (no mpirun): the dataset layer needs a communicator. */
#include "../dist/dataset_fixture.h"
#include "testutil.h"

#include "app/data_feed.h"
#include "app/explain.h"
#include "app/explain_draw.h"
#include "app/trainer.h"
#include "core/check.h"
#include "models/attention_sink.h"

#include <hdf5.h>
#include <math.h>
#include <mpi.h>
#include <png.h>
#include <sys/stat.h>

static char dir[256];
static comm world;

static model *make_model(const char *name, const data_shape *shape) {
    model_config cfg = model_config_default();
    cfg.dim = 16;
    cfg.heads = 2;
    cfg.depth = 2;
    cfg.ffn = 32;
    cfg.patch = 4;
    cfg.seed = 3;
    snprintf(cfg.pool, sizeof cfg.pool, "cls");
    char err[256];
    model *m = model_create(name, &cfg, shape, err, sizeof err);
    assert_non_null(m);
    return m;
}

static void read_png_size(const char *path, int *w, int *h) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    assert_non_null(png);
    assert_non_null(info);
    if (setjmp(png_jmpbuf(png)))
        fail_msg("%s is not a valid PNG", path);
    png_init_io(png, f);
    png_read_png(png, info, PNG_TRANSFORM_IDENTITY, NULL);
    *w = (int)png_get_image_width(png, info);
    *h = (int)png_get_image_height(png, info);
    png_destroy_read_struct(&png, &info, NULL);
    fclose(f);
}

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = calloc(1, (size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return buf;
}

static float *read_floats(hid_t file, const char *name, int *ndim, hsize_t *dims) {
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    assert_true(d >= 0);
    hid_t space = H5Dget_space(d);
    *ndim = H5Sget_simple_extent_dims(space, dims, NULL);
    hssize_t n = H5Sget_simple_extent_npoints(space);
    float *v = malloc(sizeof *v * (size_t)n);
    assert_true(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
    H5Sclose(space);
    H5Dclose(d);
    return v;
}

static void read_ints(hid_t file, const char *name, int32_t *out) {
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    assert_true(d >= 0);
    assert_true(H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) >= 0);
    H5Dclose(d);
}

/* Rows of the last dimension sum to 1 (attention distributions). */
static void assert_rows_sum_to_one(const float *v, int64_t rows, int cols) {
    for (int64_t r = 0; r < rows; r++) {
        double s = 0.0;
        for (int c = 0; c < cols; c++) {
            assert_true(v[r * cols + c] >= 0.0f);
            s += v[r * cols + c];
        }
        assert_true(fabs(s - 1.0) < 1e-5);
    }
}

/* The prediction and layer-0 attention of sample `row` of the split,
 * computed by a forward pass of that sample alone. */
static int single_forward(model *m, data_feed *feed, const char *split, int64_t row, float *attn0) {
    graph *g = graph_create(1 << 20, m->ps.count);
    graph_set_training(g, false);
    graph_set_grad(g, false);
    const sample_block *blk = data_feed_rows(feed, split, row, 1);
    graph_begin_step(g, 1, 0, blk->ids, 1);
    model_batch mb;
    tensor *labels;
    sample_block_views(g, m, blk, 0, 1, &mb, &labels);
    attention_sink sink;
    attention_sink_clear(&sink);
    tensor *logits = model_forward(m, g, &mb, &sink);
    const attention_map *am = attention_sink_find(&sink, "blocks.0.attn");
    assert_non_null(am);
    memcpy(attn0, am->probs->data, sizeof(float) * am->probs->numel);
    int best = 0;
    for (int k = 1; k < m->shape.num_classes; k++)
        if (logits->data[k] > logits->data[best])
            best = k;
    graph_free(g);
    return best;
}

static void explain_into(model *m, data_feed *feed, const char *data, const char *sub,
                         int64_t first, int64_t last, char *out, size_t outlen) {
    snprintf(out, outlen, "%s/%s", dir, sub);
    assert_int_equal(mkdir(out, 0777), 0);
    explain_request rq = {.split = "test",
                          .first = first,
                          .last = last,
                          .out_dir = out,
                          .data_path = data,
                          .ckpt_path = "",
                          .seed = 1};
    char err[512] = "";
    int rc = explain_run(m, feed, &rq, err, sizeof err);
    if (rc != 0)
        fail_msg("explain_run: %s", err);
}

/* Writes the fixture file `name` into the test directory (its path into
 * data) and opens a data feed over it. */
static data_feed *open_fixture(const char *name, const fx_spec *sp, char *data, size_t len,
                               data_shape *shape) {
    fx_path(data, len, dir, name);
    fx_write(data, sp);
    data_feed *feed = data_feed_open(data, &world, 4, 1, false, true, 0);
    data_feed_shape(feed, shape);
    return feed;
}

/* The attention.h5 an explain run wrote into out. */
static hid_t open_results(const char *out) {
    char path[1024];
    snprintf(path, sizeof path, "%s/attention.h5", out);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    return f;
}

/* An 8x8 one-channel image fixture with n_test test rows. */
static fx_spec small_images(int n_test) {
    fx_spec sp = fx_image_spec();
    sp.c = 1;
    sp.h = sp.w = 8;
    sp.n[2] = n_test;
    return sp;
}

static void test_vit_image(void **state) {
    (void)state;
    char data[512];
    data_shape shape;
    fx_spec sp = small_images(7);
    data_feed *feed = open_fixture("img.h5", &sp, data, sizeof data, &shape);
    model *m = make_model("vit", &shape);
    char out[512];
    explain_into(m, feed, data, "vit", 2, 6, out, sizeof out);
    hid_t f = open_results(out);
    int nd;
    hsize_t dims[8];
    float *a0 = read_floats(f, "attention/blocks.0.attn", &nd, dims);
    /* 5 samples, 2 heads, [CLS] + 2x2 patches */
    assert_int_equal(nd, 4);
    assert_int_equal(dims[0], 5);
    assert_int_equal(dims[1], 2);
    assert_int_equal(dims[2], 5);
    assert_int_equal(dims[3], 5);
    assert_rows_sum_to_one(a0, 5 * 2 * 5, 5);
    float *roll = read_floats(f, "rollout", &nd, dims);
    assert_int_equal(dims[0], 5);
    assert_int_equal(dims[1], 5);
    assert_rows_sum_to_one(roll, 5, 5);
    int32_t pred[5], labels[5];
    read_ints(f, "predictions", pred);
    read_ints(f, "labels", labels);
    for (int i = 0; i < 5; i++) {
        float alone[2 * 5 * 5];
        assert_int_equal(single_forward(m, feed, "test", 2 + i, alone), pred[i]);
        assert_int_equal(labels[i], fx_label(2, 2 + i, sp.num_classes));
        for (int j = 0; j < 2 * 5 * 5; j++)
            assert_true(fabsf(alone[j] - a0[i * 50 + j]) < 1e-6f);
    }
    H5Fclose(f);
    free(a0);
    free(roll);

    int w, h;
    char path[1024];
    snprintf(path, sizeof path, "%s/sample_4.png", out);
    read_png_size(path, &w, &h);
    assert_int_equal(w, 2 * 8 * EXPLAIN_IMAGE_SCALE + 24);
    assert_int_equal(h, 8 * EXPLAIN_IMAGE_SCALE + 48);
    snprintf(path, sizeof path, "%s/index.html", out);
    char *html = read_text(path);
    assert_non_null(strstr(html, "sample_6.png"));
    free(html);
    model_free(m);
    data_feed_free(feed);
}

static void test_transformer_text(void **state) {
    (void)state;
    char data[512];
    data_shape shape;
    fx_spec sp = fx_text_spec();
    data_feed *feed = open_fixture("text.h5", &sp, data, sizeof data, &shape);
    model *m = make_model("transformer", &shape);
    char out[512];
    explain_into(m, feed, data, "text", 0, 5, out, sizeof out);
    hid_t f = open_results(out);
    int nd;
    hsize_t dims[8];
    float *a1 = read_floats(f, "attention/blocks.1.attn", &nd, dims);
    int T = (int)dims[3];
    assert_int_equal(dims[0], 6);
    assert_rows_sum_to_one(a1, 6 * 2 * T, T);
    int32_t *tokens = malloc(sizeof *tokens * 6 * T);
    read_ints(f, "tokens", tokens);
    float *roll = read_floats(f, "rollout", &nd, dims);
    for (int i = 0; i < 6; i++) {
        /* no query may look at a padded key, and padding has no relevance */
        for (int t = 0; t < T; t++)
            if (tokens[i * T + t] == 0) {
                assert_true(roll[i * T + t] == 0.0f);
                for (int hq = 0; hq < 2 * T; hq++)
                    assert_true(a1[((int64_t)i * 2 * T + hq) * T + t] == 0.0f);
            }
        assert_rows_sum_to_one(roll + i * T, 1, T);
    }
    H5Fclose(f);
    free(a1);
    free(tokens);
    free(roll);
    int w, h;
    char path[1024];
    snprintf(path, sizeof path, "%s/sample_3.png", out);
    read_png_size(path, &w, &h);
    assert_int_equal(w, 960);
    assert_true(h >= 64);
    model_free(m);
    data_feed_free(feed);
}

/* CBAM's gates are exported as channel and spatial maps, and the picture
 * is drawn from the last spatial gate. */
static void test_cbam_gates(void **state) {
    (void)state;
    char data[512];
    data_shape shape;
    fx_spec sp = small_images(5);
    data_feed *feed = open_fixture("img3.h5", &sp, data, sizeof data, &shape);
    model_config cfg = model_config_default();
    cfg.width = 4;
    cfg.seed = 3;
    char err[256];
    model *m = model_create("cbam_cnn", &cfg, &shape, err, sizeof err);
    assert_non_null(m);
    char out[512];
    explain_into(m, feed, data, "cbam", 0, 2, out, sizeof out);
    hid_t f = open_results(out);
    int nd;
    hsize_t dims[8];
    float *sp0 = read_floats(f, "attention/stages.0.cbam.spatial", &nd, dims);
    assert_int_equal(nd, 3);
    assert_int_equal(dims[0], 3);
    assert_int_equal(dims[1], 8);
    assert_int_equal(dims[2], 8);
    float *ch0 = read_floats(f, "attention/stages.0.cbam.channel", &nd, dims);
    assert_int_equal(nd, 2);
    assert_int_equal(dims[1], 4);
    for (int i = 0; i < 3 * 64; i++)
        assert_true(sp0[i] > 0.0f && sp0[i] < 1.0f); /* sigmoid gates */
    H5Fclose(f);
    free(sp0);
    free(ch0);
    int w, h;
    char path[1024];
    snprintf(path, sizeof path, "%s/sample_1.png", out);
    read_png_size(path, &w, &h);
    assert_int_equal(w, 2 * 8 * EXPLAIN_IMAGE_SCALE + 24);
    model_free(m);
    data_feed_free(feed);
}

static tensor *no_attention_forward(void *impl, graph *g, const model_batch *b,
                                    attention_sink *sink) {
    (void)impl;
    (void)sink;
    int shape[2] = {b->B, 10};
    tensor *t = graph_new(g, DTYPE_F32, 2, shape, false);
    memset(t->data, 0, sizeof(float) * t->numel);
    return t;
}

static void test_bad_requests(void **state) {
    (void)state;
    char data[512];
    data_shape shape;
    fx_spec sp = small_images(5);
    data_feed *feed = open_fixture("img2.h5", &sp, data, sizeof data, &shape);
    model *m = make_model("vit", &shape);
    char out[512], err[512];
    snprintf(out, sizeof out, "%s/bad", dir);
    assert_int_equal(mkdir(out, 0777), 0);
    explain_request rq = {
        .split = "test", .first = 3, .last = 5, .out_dir = out, .data_path = data};
    assert_int_equal(explain_run(m, feed, &rq, err, sizeof err), HEED_EXIT_BAD_INPUT);
    assert_non_null(strstr(err, "valid: 0..4"));
    rq.split = "nope";
    assert_int_equal(explain_run(m, feed, &rq, err, sizeof err), HEED_EXIT_BAD_INPUT);
    assert_non_null(strstr(err, "--split"));

    /* a model that puts nothing into the sink */
    model_kind plain = *m->kind;
    plain.name = "plain";
    plain.forward = no_attention_forward;
    const model_kind *saved = m->kind;
    m->kind = &plain;
    rq.split = "test";
    rq.first = rq.last = 0;
    assert_int_equal(explain_run(m, feed, &rq, err, sizeof err), HEED_EXIT_BAD_INPUT);
    assert_non_null(strstr(err, "no attention"));
    m->kind = saved;
    char path[1024];
    snprintf(path, sizeof path, "%s/attention.h5", out);
    assert_int_equal(access(path, F_OK), -1);
    snprintf(path, sizeof path, "%s/attention.h5.tmp", out);
    assert_int_equal(access(path, F_OK), -1);
    snprintf(path, sizeof path, "%s/index.html.tmp", out);
    assert_int_equal(access(path, F_OK), -1);
    model_free(m);
    data_feed_free(feed);
}

int main(void) {
    MPI_Init(NULL, NULL);
    comm_init(&world, MPI_COMM_WORLD);
    fx_tmpdir(dir, sizeof dir);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vit_image),
        cmocka_unit_test(test_transformer_text),
        cmocka_unit_test(test_cbam_gates),
        cmocka_unit_test(test_bad_requests),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    fx_rmtree(dir);
    comm_free(&world);
    MPI_Finalize();
    return failed;
}
