/* The fusion model on an image_text dataset through the real data path:
 *   - the data feed delivers both modalities of a row (images normalised,
 *     tokens trimmed) and sample_block_views hands both to the model;
 *   - a training step on a fed batch is finite and changes the parameters;
 *   - heed explain's core exports the towers' self-attention and the
 *     cross-attention maps (kind "cross") of the fusion model, rolls out
 *     the image tower, and draws the image heatmap.
 * Singleton MPI (no mpirun): the dataset layer needs a communicator. */
#include "../dist/dataset_fixture.h"
#include "testutil.h"

#include "app/data_feed.h"
#include "app/explain.h"
#include "app/trainer.h"
#include "core/check.h"

#include <hdf5.h>
#include <math.h>
#include <mpi.h>
#include <sys/stat.h>

static char dir[256];
static comm world;

static fx_spec pair_spec(void) {
    fx_spec sp = {.kind = "image_text",
                  .n = {24, 6, 7},
                  .num_classes = 5,
                  .c = 1,
                  .h = 8,
                  .w = 8,
                  .mean_std = true,
                  .vocab = 20,
                  .max_len = 7};
    return sp;
}

static model *make_model(const data_shape *shape) {
    model_config cfg = model_config_default();
    cfg.dim = 16;
    cfg.heads = 2;
    cfg.depth = 1;
    cfg.ffn = 32;
    cfg.patch = 4;
    cfg.seed = 3;
    cfg.xattn_reverse = true;
    char err[256];
    model *m = model_create("fusion", &cfg, shape, err, sizeof err);
    if (!m)
        fail_msg("model_create: %s", err);
    return m;
}

static void test_feed_delivers_both(void **state) {
    (void)state;
    char data[512];
    fx_path(data, sizeof data, dir, "pairs.h5");
    fx_spec sp = pair_spec();
    fx_write(data, &sp);
    data_feed *feed = data_feed_open(data, &world, 8, 1, true, true, 0);
    data_shape shape;
    data_feed_shape(feed, &shape);
    assert_int_equal(shape.channels, 1);
    assert_int_equal(shape.height, 8);
    assert_int_equal(shape.vocab_size, 20);
    assert_int_equal(shape.max_len, 7);
    /* stored order: row 3 of test */
    const sample_block *blk = data_feed_rows(feed, "test", 3, 2);
    assert_non_null(blk->images);
    assert_non_null(blk->tokens);
    for (int j = 0; j < 64; j++) {
        float want = ((float)fx_pixel(2, 3, j) / 255.0f - fx_mean(0)) / fx_std(0);
        assert_true(fabsf(blk->images[j] - want) < 1e-5f);
    }
    for (int t = 0; t < blk->L; t++) {
        int32_t want = t < fx_length(2, 3, 7) ? fx_token(2, 3, t, 20) : 0;
        assert_int_equal(blk->tokens[t], want);
    }
    model *m = make_model(&shape);
    graph *g = graph_create(1 << 20, m->ps.count);
    model_batch mb;
    tensor *labels;
    sample_block_views(g, m, blk, 0, 2, &mb, &labels);
    assert_non_null(mb.images);
    assert_non_null(mb.tokens);
    assert_int_equal(mb.images->shape[0], 2);
    assert_int_equal(mb.tokens->shape[1], blk->L);
    graph_free(g);

    /* one training step on a fed batch */
    adam_config ac = adam_config_default();
    trainer t;
    trainer_init(&t, m, &world, &ac, false, false, 0, 0.0f, 1);
    int64_t global_n;
    const sample_block *tb = data_feed_train_batch(feed, 0, 0, &global_n);
    assert_true(tb->images && tb->tokens);
    uint64_t before = params_hash(&m->ps);
    step_result r = trainer_step(&t, tb, global_n, 0, 1e-2f, 1.0f);
    assert_true(r.finite && r.loss > 0);
    assert_true(params_hash(&m->ps) != before);
    trainer_free(&t);
    model_free(m);
    data_feed_free(feed);
}

static void test_explain_exports_cross_attention(void **state) {
    (void)state;
    char data[512], out[512], path[1024];
    fx_path(data, sizeof data, dir, "pairs2.h5");
    fx_spec sp = pair_spec();
    fx_write(data, &sp);
    data_feed *feed = data_feed_open(data, &world, 4, 1, false, true, 0);
    data_shape shape;
    data_feed_shape(feed, &shape);
    model *m = make_model(&shape);
    snprintf(out, sizeof out, "%s/explain", dir);
    assert_int_equal(mkdir(out, 0777), 0);
    explain_request rq = {.split = "test",
                          .first = 1,
                          .last = 4,
                          .out_dir = out,
                          .data_path = data,
                          .ckpt_path = "",
                          .seed = 1};
    char err[512] = "";
    if (explain_run(m, feed, &rq, err, sizeof err) != 0)
        fail_msg("explain_run: %s", err);
    snprintf(path, sizeof path, "%s/attention.h5", out);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    /* the exported text length: the tokens as explain padded them */
    hid_t td = H5Dopen2(f, "tokens", H5P_DEFAULT);
    assert_true(td >= 0);
    hid_t ts = H5Dget_space(td);
    hsize_t tdims[2];
    assert_int_equal(H5Sget_simple_extent_dims(ts, tdims, NULL), 2);
    H5Sclose(ts);
    H5Dclose(td);
    int T = (int)tdims[1];
    assert_true(T >= 2 && T <= 7);
    struct {
        const char *name, *kind;
        int T, S;
    } want[] = {{"attention/image.blocks.0.attn", "self", 5, 5},
                {"attention/text.blocks.0.attn", "self", T, T},
                {"attention/xattn.0.attn", "cross", T, 5},
                {"attention/xattn_rev.0.attn", "cross", 5, T}};
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        if (H5Lexists(f, want[k].name, H5P_DEFAULT) <= 0)
            fail_msg("%s missing from %s", want[k].name, path);
        hid_t d = H5Dopen2(f, want[k].name, H5P_DEFAULT);
        assert_true(d >= 0);
        hid_t space = H5Dget_space(d);
        hsize_t dims[8];
        assert_int_equal(H5Sget_simple_extent_dims(space, dims, NULL), 4);
        H5Sclose(space);
        assert_int_equal(dims[0], 4); /* samples 1..4 */
        assert_int_equal(dims[1], 2); /* heads */
        assert_int_equal((int)dims[2], want[k].T);
        assert_int_equal((int)dims[3], want[k].S);
        hid_t a = H5Aopen(d, "kind", H5P_DEFAULT);
        assert_true(a >= 0);
        hid_t str = H5Tcopy(H5T_C_S1);
        H5Tset_size(str, 32);
        char kind[32] = "";
        assert_true(H5Aread(a, str, kind) >= 0);
        assert_string_equal(kind, want[k].kind);
        H5Tclose(str);
        H5Aclose(a);
        H5Dclose(d);
    }
    assert_true(H5Lexists(f, "rollout", H5P_DEFAULT) > 0);
    H5Fclose(f);
    snprintf(path, sizeof path, "%s/sample_2.png", out);
    assert_int_equal(access(path, F_OK), 0);
    model_free(m);
    data_feed_free(feed);
}

int main(void) {
    MPI_Init(NULL, NULL);
    comm_init(&world, MPI_COMM_WORLD);
    fx_tmpdir(dir, sizeof dir);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_feed_delivers_both),
        cmocka_unit_test(test_explain_exports_cross_attention),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    fx_rmtree(dir);
    comm_free(&world);
    MPI_Finalize();
    return failed;
}
