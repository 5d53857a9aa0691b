/* Dataset files: validation of every kind of bad input (the message must
 * name the file, the object and what was expected), metadata of valid files,
 * `inspect`, and reading rows (streaming and in memory, contiguous and
 * chunked + gzip) against the fixture's formulas. */
#include "testutil.h"

#include <math.h>
#include <mpi.h>
#include <string.h>
#include <sys/stat.h>

#include "dataset_fixture.h"
#include "dist/bad_input.h"
#include "dist/dataset.h"

static char g_dir[512];

static void tmpfile_path(char *out, size_t len, const char *name) {
    fx_path(out, len, g_dir, name);
}

/* Runs inspect into a memory buffer; returns the count, text in *text. */
static int inspect_text(const char *path, char **text) {
    size_t size = 0;
    FILE *f = open_memstream(text, &size);
    assert_non_null(f);
    int n = dataset_inspect(path, f);
    fclose(f);
    return n;
}

/* ---- bad input ---------------------------------------------------------- */

typedef struct bad_case {
    const char *name;
    fx_spec (*spec)(void); /* NULL: write nothing */
    void (*mutate)(const char *path);
    const char *want[3]; /* substrings of the message, besides the path */
} bad_case;

static fx_spec float_spec(void) {
    fx_spec s = fx_image_spec();
    s.float_images = true;
    s.mean_std = false;
    return s;
}
static fx_spec empty_test_spec(void) {
    fx_spec s = fx_image_spec();
    s.n[2] = 0;
    return s;
}

static void m_not_hdf5(const char *p) {
    FILE *f = fopen(p, "w");
    fputs("label,pixels\n1,0 0 0\n", f);
    fclose(f);
}
static void m_directory(const char *p) {
    mkdir(p, 0700);
}
static void m_truncate(const char *p) {
    assert_int_equal(truncate(p, 600), 0);
}
static void m_no_val(const char *p) {
    fx_delete(p, "/val");
}
static void m_no_test_labels(const char *p) {
    fx_delete(p, "/test/labels");
}
static void m_no_train_images(const char *p) {
    fx_delete(p, "/train/images");
}
static void m_images_rank2(const char *p) {
    fx_replace(p, "/train/images", H5T_STD_U8LE, 2, (hsize_t[]){40, 24});
}
static void m_images_int16(const char *p) {
    fx_replace(p, "/train/images", H5T_STD_I16LE, 4, (hsize_t[]){40, 2, 3, 4});
}
static void m_labels_int64(const char *p) {
    fx_replace(p, "/train/labels", H5T_STD_I64LE, 1, (hsize_t[]){40});
}
static void m_labels_2d(const char *p) {
    fx_replace(p, "/train/labels", H5T_STD_I32LE, 2, (hsize_t[]){40, 1});
}
static void m_val_rows(const char *p) {
    fx_replace(p, "/val/labels", H5T_STD_I32LE, 1, (hsize_t[]){8});
}
static void m_label_12(const char *p) {
    fx_set_int(p, "/train/labels", 17, 12);
}
static void m_labels_two_bad(const char *p) {
    fx_set_int(p, "/val/labels", 3, -1);
    fx_set_int(p, "/val/labels", 7, 10);
}
static void m_token_50(const char *p) {
    fx_set_int(p, "/train/tokens", 2 * 12 + 1, 50);
}
static void m_token_negative(const char *p) {
    fx_set_int(p, "/val/tokens", 0, -3);
}
static void m_version_2(const char *p) {
    fx_set_attr_int(p, "/", "format_version", 2, H5T_STD_I32LE);
}
static void m_kind_video(const char *p) {
    fx_set_attr_str(p, "/", "kind", "video");
}
static void m_no_num_classes(const char *p) {
    fx_delete_attr(p, "/", "num_classes");
}
static void m_num_classes_11(const char *p) {
    fx_set_attr_int(p, "/", "num_classes", 11, H5T_STD_I32LE);
}
static void m_vocab_size_49(const char *p) {
    fx_set_attr_int(p, "/", "vocab_size", 49, H5T_STD_I32LE);
}
static void m_pad_50(const char *p) {
    fx_set_attr_int(p, "/", "pad_id", 50, H5T_STD_I32LE);
}
static void m_max_len_10(const char *p) {
    fx_set_attr_int(p, "/", "max_len", 10, H5T_STD_I32LE);
}
static void m_val_channels(const char *p) {
    fx_replace(p, "/val/images", H5T_STD_U8LE, 4, (hsize_t[]){9, 3, 3, 4});
}
static void m_std_zero(const char *p) {
    fx_set_attr_floats(p, "/train/images", "std", 2, (float[]){0.0f, 1.0f});
}
static void m_mean_one(const char *p) {
    fx_set_attr_floats(p, "/train/images", "mean", 1, (float[]){0.5f});
}
static void m_float_nan(const char *p) {
    fx_set_float(p, "/test/images", 5, NAN);
}
static void m_segment_negative(const char *p) {
    fx_set_int(p, "/train/segments", 12 + 1, -1);
}
static void m_classes_ints(const char *p) {
    fx_replace(p, "/classes", H5T_STD_I32LE, 1, (hsize_t[]){10});
}
static void m_images_group(const char *p) {
    fx_delete(p, "/train/images");
    hid_t f = fx_open_rw(p);
    H5Gclose(H5Gcreate2(f, "/train/images", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    H5Fclose(f);
}
static void m_no_vocab(const char *p) {
    fx_delete(p, "/vocab");
}
static void m_two_problems(const char *p) {
    fx_delete(p, "/val");
    fx_set_int(p, "/train/labels", 0, 99);
}

static const bad_case bad_cases[] = {
    {"missing_file", NULL, NULL, {"cannot open: No such file or directory"}},
    {"not_hdf5", NULL, m_not_hdf5, {"not an HDF5 file"}},
    {"directory", NULL, m_directory, {"is a directory"}},
    {"truncated", fx_image_spec, m_truncate, {"HDF5 cannot open it (truncated or corrupt file?)"}},
    {"missing_split", fx_image_spec, m_no_val, {"/val: missing group"}},
    {"missing_labels",
     fx_image_spec,
     m_no_test_labels,
     {"/test/labels: missing dataset (int32 [N] class labels)"}},
    {"missing_images", fx_image_spec, m_no_train_images, {"/train/images: missing dataset"}},
    {"images_wrong_rank",
     fx_image_spec,
     m_images_rank2,
     {"/train/images: expected 4 dimensions [N, C, H, W], found 2 [40, 24]"}},
    {"images_wrong_dtype",
     fx_image_spec,
     m_images_int16,
     {"/train/images: expected dtype uint8 or float32, found int16"}},
    {"labels_int64",
     fx_image_spec,
     m_labels_int64,
     {"/train/labels: expected dtype int32, found int64"}},
    {"labels_2d",
     fx_image_spec,
     m_labels_2d,
     {"/train/labels: expected 1 dimension [N], found 2 [40, 1]"}},
    {"row_count_mismatch",
     fx_image_spec,
     m_val_rows,
     {"/val/labels: expected 9 rows like /val/images, found 8"}},
    {"label_out_of_range",
     fx_image_spec,
     m_label_12,
     {"/train/labels: label 12 at row 17 is outside [0, 10) (num_classes)"}},
    {"labels_two_bad",
     fx_image_spec,
     m_labels_two_bad,
     {"/val/labels: label -1 at row 3 is outside [0, 10) (num_classes); 1 more row like it"}},
    {"token_out_of_vocab",
     fx_text_spec,
     m_token_50,
     {"/train/tokens: token id 50 at row 2, position 1 is outside [0, 50) (vocab_size)"}},
    {"token_negative",
     fx_text_spec,
     m_token_negative,
     {"/val/tokens: token id -3 at row 0, position 0 is outside [0, 50)"}},
    {"empty_split", empty_test_spec, NULL, {"/test: split is empty (0 rows)"}},
    {"format_version",
     fx_image_spec,
     m_version_2,
     {"attribute format_version: expected int32 = 1", "found 2"}},
    {"kind_unknown",
     fx_image_spec,
     m_kind_video,
     {"attribute kind: expected \"image\", \"text\" or \"image_text\", found \"video\""}},
    {"num_classes_missing", fx_image_spec, m_no_num_classes, {"missing attribute num_classes"}},
    {"classes_count",
     fx_image_spec,
     m_num_classes_11,
     {"/classes: expected 11 entries (one UTF-8 name per class"}},
    {"vocab_size_mismatch",
     fx_text_spec,
     m_vocab_size_49,
     {"attribute vocab_size is 49 but /vocab has 50 entries"}},
    {"pad_id_out_of_vocab",
     fx_text_spec,
     m_pad_50,
     {"attribute pad_id: expected an int32 token id in [0, 50) (vocab_size), found 50"}},
    {"tokens_width",
     fx_text_spec,
     m_max_len_10,
     {"/train/tokens: expected [N, 10] (max_len), found [50, 12]"}},
    {"vocab_missing", fx_text_spec, m_no_vocab, {"/vocab: missing dataset"}},
    {"image_shape_across_splits",
     fx_image_spec,
     m_val_channels,
     {"/val/images: expected [N, 2, 3, 4] like /train/images, found [9, 3, 3, 4]"}},
    {"std_zero",
     fx_image_spec,
     m_std_zero,
     {"/train/images: attribute std: value 0 for channel 0 must be positive and finite"}},
    {"mean_count",
     fx_image_spec,
     m_mean_one,
     {"/train/images: attribute mean: expected 2 values (one per channel), found 1"}},
    {"float_nan", float_spec, m_float_nan, {"/test/images: value nan in row 0 is not finite"}},
    {"segment_negative",
     fx_text_spec,
     m_segment_negative,
     {"/train/segments: segment id -1 at row 1, position 1 is negative"}},
    {"classes_not_strings",
     fx_image_spec,
     m_classes_ints,
     {"/classes: expected UTF-8 strings", "found int32"}},
    {"images_is_group",
     fx_image_spec,
     m_images_group,
     {"/train/images: expected a dataset, found a group"}},
    {"two_problems",
     fx_image_spec,
     m_two_problems,
     {"/train/labels: label 99 at row 0 is outside [0, 10)", "(and 1 more problem: `heed inspect"}},
};

static void test_bad(void **state) {
    const bad_case *bc = *state;
    char path[700];
    tmpfile_path(path, sizeof path, bc->name);
    if (bc->spec) {
        fx_spec sp = bc->spec();
        fx_write(path, &sp);
    }
    if (bc->mutate)
        bc->mutate(path);
    dataset *ds = (dataset *)1;
    char err[HEED_BAD_INPUT_MSG_MAX] = "";
    int rc = dataset_open(&ds, path, MPI_COMM_WORLD, NULL, err, sizeof err);
    if (rc != HEED_EXIT_BAD_INPUT)
        fail_msg("%s: dataset_open returned %d, want %d", bc->name, rc, HEED_EXIT_BAD_INPUT);
    assert_null(ds);
    if (strncmp(err, path, strlen(path)) != 0)
        fail_msg("%s: the message does not start with the file's path:\n  %s", bc->name, err);
    for (int i = 0; i < 3 && bc->want[i]; i++)
        if (!strstr(err, bc->want[i]))
            fail_msg("%s: message\n  %s\nlacks\n  %s", bc->name, err, bc->want[i]);
    /* inspect finds the same first problem, and no fewer. */
    char *text = NULL;
    int n = inspect_text(path, &text);
    assert_true(n >= 1);
    const char *paren = strstr(err, " (and ");
    size_t first_len = paren ? (size_t)(paren - err) : strlen(err);
    char first[HEED_BAD_INPUT_MSG_MAX];
    snprintf(first, sizeof first, "%.*s", (int)first_len, err);
    if (!strstr(text, first))
        fail_msg("%s: inspect output lacks the first problem\n%s", bc->name, text);
    free(text);
}

/* ---- valid files -------------------------------------------------------- */

static dataset *open_ok(const char *path, const dataset_options *opt) {
    dataset *ds = NULL;
    char err[HEED_BAD_INPUT_MSG_MAX] = "";
    int rc = dataset_open(&ds, path, MPI_COMM_WORLD, opt, err, sizeof err);
    if (rc != 0)
        fail_msg("dataset_open(%s) failed: %s", path, err);
    return ds;
}

/* sp written to the test folder as `name`, chunked or not, and opened. */
static dataset *write_open(fx_spec *sp, const char *name, bool chunked) {
    char path[700];
    tmpfile_path(path, sizeof path, name);
    sp->chunked = chunked;
    fx_write(path, sp);
    return open_ok(path, NULL);
}

static void test_image_metadata(void **state) {
    char path[700];
    tmpfile_path(path, sizeof path, "image_ok.h5");
    fx_spec sp = fx_image_spec();
    fx_write(path, &sp);
    dataset *ds = open_ok(path, NULL);
    assert_int_equal(ds->kind, DATASET_KIND_IMAGE);
    assert_true(ds->has_images && !ds->has_tokens);
    assert_string_equal(ds->name, "fixture");
    assert_int_equal(ds->num_classes, 10);
    assert_string_equal(ds->classes[3], "class3");
    assert_int_equal(ds->channels, 2);
    assert_int_equal(ds->height, 3);
    assert_int_equal(ds->width, 4);
    for (int s = 0; s < 3; s++) {
        assert_int_equal(ds->splits[s].n, sp.n[s]);
        assert_int_equal(ds->splits[s].image_dtype, DATASET_DTYPE_UINT8);
        assert_null(ds->splits[s].lengths);
        for (int c = 0; c < 2; c++) {
            assert_true(ds->splits[s].mean[c] == fx_mean(c));
            assert_true(ds->splits[s].std[c] == fx_std(c));
        }
    }
    assert_int_equal(dataset_split_bytes(ds, DATASET_SPLIT_TRAIN), 40 * (24 + 4));
    dataset_close(ds);
    char *text = NULL;
    assert_int_equal(inspect_text(path, &text), 0);
    assert_non_null(strstr(text, "problems    none"));
    assert_non_null(strstr(text, "[40, 2, 3, 4]"));
    free(text);
}

static void test_text_metadata(void **state) {
    char path[700];
    tmpfile_path(path, sizeof path, "text_ok.h5");
    fx_spec sp = fx_text_spec();
    sp.chunked = true;
    fx_write(path, &sp);
    dataset *ds = open_ok(path, NULL);
    assert_int_equal(ds->kind, DATASET_KIND_TEXT);
    assert_int_equal(ds->vocab_size, 50);
    assert_int_equal(ds->max_len, 12);
    assert_int_equal(ds->mask_id, 4);
    assert_string_equal(ds->vocab[7], "tok7");
    for (int s = 0; s < 3; s++) {
        assert_true(ds->splits[s].has_segments);
        assert_int_equal(ds->splits[s].max_segment, 1);
        assert_non_null(ds->splits[s].lengths);
        for (int i = 0; i < sp.n[s]; i++)
            assert_int_equal(ds->splits[s].lengths[i], fx_length(s, i, 12));
    }
    dataset_close(ds);
    dataset_options skip = {.skip_value_scan = true};
    ds = open_ok(path, &skip);
    assert_null(ds->splits[0].lengths);
    dataset_close(ds);
    char *text = NULL;
    assert_int_equal(inspect_text(path, &text), 0);
    assert_non_null(strstr(text, "chunked [7, 12] shuffle gzip"));
    assert_non_null(strstr(text, "length mean"));
    free(text);
}

/* The label histogram of a split, on a chunked and a plain file. */
static void test_label_counts(void **state) {
    for (int chunked = 0; chunked < 2; chunked++) {
        fx_spec sp = fx_image_spec();
        dataset *ds = write_open(&sp, chunked ? "counts_chunked.h5" : "counts.h5", chunked);
        for (int s = 0; s < 3; s++) {
            int64_t *counts = dataset_label_counts(ds, (dataset_split)s);
            int64_t want[64] = {0};
            for (int64_t i = 0; i < sp.n[s]; i++)
                want[fx_label(s, i, ds->num_classes)]++;
            for (int k = 0; k < ds->num_classes; k++)
                assert_int_equal(counts[k], want[k]);
            free(counts);
        }
        dataset_close(ds);
    }
}

static void test_skip_scan_misses_values(void **state) {
    char path[700];
    tmpfile_path(path, sizeof path, "skip.h5");
    fx_spec sp = fx_image_spec();
    fx_write(path, &sp);
    m_label_12(path);
    dataset_options skip = {.skip_value_scan = true};
    dataset *ds = open_ok(path, &skip); /* documented: values are not checked */
    dataset_close(ds);
}

/* ---- reading ------------------------------------------------------------ */

static const int64_t read_ids[] = {5, 3, 3, 39, 0, 4, 38, 20, 21, 22};
enum { READ_N = (int)(sizeof read_ids / sizeof read_ids[0]) };

static void check_image_batch(const batch *b, const fx_spec *sp, int s) {
    assert_int_equal(b->n, READ_N);
    int per = sp->c * sp->h * sp->w, hw = sp->h * sp->w;
    for (int i = 0; i < READ_N; i++) {
        assert_int_equal(b->ids[i], read_ids[i]);
        assert_int_equal(b->labels[i], fx_label(s, read_ids[i], sp->num_classes));
        for (int j = 0; j < per; j++) {
            int c = j / hw;
            float want =
                sp->float_images
                    ? ((float)fx_pixel(s, read_ids[i], j) / 64.0f - 1.0f)
                    : ((float)fx_pixel(s, read_ids[i], j) / 255.0f - fx_mean(c)) / fx_std(c);
            float got = b->images[(size_t)i * per + j];
            if (fabsf(got - want) > 1e-6f)
                fail_msg("row %d elem %d: got %g want %g", i, j, got, want);
        }
    }
}

static void read_all_ways(const fx_spec *base, const char *stem) {
    batch ref = {0};
    for (int chunked = 0; chunked < 2; chunked++) {
        char path[700], name[64];
        snprintf(name, sizeof name, "%s_%d.h5", stem, chunked);
        tmpfile_path(path, sizeof path, name);
        fx_spec sp = *base;
        sp.chunked = chunked;
        fx_write(path, &sp);
        dataset *ds = open_ok(path, NULL);
        for (int way = 0; way < 3; way++) { /* map, stream, memory */
            dataset_reader *r =
                dataset_reader_init_opts(ds, DATASET_SPLIT_TRAIN, READ_N, way == 2, way == 0);
            const char *want = way == 2 ? "memory" : way == 0 && !chunked ? "map" : "stream";
            assert_string_equal(dataset_reader_source(r), want);
            batch b;
            batch_init(&b, ds, READ_N);
            dataset_reader_read(r, read_ids, READ_N, &b);
            check_image_batch(&b, &sp, 0);
            if (!ref.images) {
                batch_init(&ref, ds, READ_N);
                memcpy(ref.images, b.images, sizeof(float) * READ_N * 24);
            } else {
                assert_memory_equal(ref.images, b.images, sizeof(float) * READ_N * 24);
            }
            /* a second read into the same batch, and a short one */
            dataset_reader_read(r, read_ids + 4, 2, &b);
            assert_int_equal(b.n, 2);
            assert_int_equal(b.ids[1], 4);
            assert_int_equal(b.labels[0], fx_label(0, 0, 10));
            dataset_reader_read(r, read_ids, 0, &b);
            assert_int_equal(b.n, 0);
            batch_free(&b);
            dataset_reader_free(r);
        }
        dataset_close(ds);
    }
    batch_free(&ref);
}

static void test_read_uint8_images(void **state) {
    fx_spec sp = fx_image_spec();
    read_all_ways(&sp, "read_u8");
}

static void test_read_float_images(void **state) {
    fx_spec sp = float_spec();
    read_all_ways(&sp, "read_f32");
}

static void test_read_tokens_trimmed(void **state) {
    for (int chunked = 0; chunked < 2; chunked++) {
        fx_spec sp = fx_text_spec();
        dataset *ds = write_open(&sp, chunked ? "tok_c.h5" : "tok.h5", chunked);
        for (int way = 0; way < 3; way++) { /* map, stream, memory */
            dataset_reader *r =
                dataset_reader_init_opts(ds, DATASET_SPLIT_VAL, 4, way == 2, way == 0);
            batch b;
            batch_init(&b, ds, 4);
            /* val rows 0..8: lengths 1 + (5i + 2) % 12 = 3, 8, 1, 6, 11, 4, 9, 2, 7 */
            const int64_t ids[][4] = {{2, 7, 0, 7}, {4, 1, 2, 8}, {2, 2, 2, 2}};
            const int want_len[] = {3, 11, 1};
            for (int t = 0; t < 3; t++) {
                dataset_reader_read(r, ids[t], 4, &b);
                assert_int_equal(b.len, want_len[t]);
                assert_non_null(b.segments);
                for (int i = 0; i < 4; i++) {
                    int len = fx_length(1, ids[t][i], 12);
                    assert_int_equal(b.labels[i], fx_label(1, ids[t][i], 4));
                    for (int j = 0; j < b.len; j++) {
                        int32_t tok = b.tokens[i * b.len + j], seg = b.segments[i * b.len + j];
                        assert_int_equal(tok, j < len ? fx_token(1, ids[t][i], j, 50) : 0);
                        assert_int_equal(seg, j < len && j >= len / 2 ? 1 : 0);
                    }
                }
            }
            batch_free(&b);
            dataset_reader_free(r);
        }
        dataset_close(ds);
    }
}

/* More runs than one H5Dread takes (64), repeats, reverse order. */
static void test_read_many_runs(void **state) {
    char path[700];
    tmpfile_path(path, sizeof path, "many_runs.h5");
    fx_spec sp = fx_image_spec();
    sp.n[0] = 500;
    sp.chunked = true;
    fx_write(path, &sp);
    dataset *ds = open_ok(path, NULL);
    enum { N = 200 };
    int64_t ids[N];
    for (int i = 0; i < N; i++)
        ids[i] = i < 150 ? 497 - 3 * i : (i * 7) % 500; /* 150 runs, then repeats */
    batch b[2];
    for (int mem = 0; mem < 2; mem++) {
        dataset_reader *r = dataset_reader_init(ds, DATASET_SPLIT_TRAIN, N, mem);
        batch_init(&b[mem], ds, N);
        dataset_reader_read(r, ids, N, &b[mem]);
        for (int i = 0; i < N; i++)
            assert_int_equal(b[mem].labels[i], fx_label(0, ids[i], 10));
        dataset_reader_free(r);
    }
    assert_memory_equal(b[0].images, b[1].images, sizeof(float) * N * 24);
    batch_free(&b[0]);
    batch_free(&b[1]);
    dataset_close(ds);
}

/* Mapping honours a user block; a big-endian member is not mapped but
 * converted by HDF5, next to mapped ones. */
static void test_read_userblock_and_big_endian(void **state) {
    char path[700];
    tmpfile_path(path, sizeof path, "userblock.h5");
    fx_spec sp = fx_image_spec();
    sp.userblock = true;
    fx_write(path, &sp);
    hid_t f = fx_open_rw(path);
    FX_OK(H5Ldelete(f, "/train/labels", H5P_DEFAULT));
    int32_t lab[40];
    for (int i = 0; i < 40; i++)
        lab[i] = fx_label(0, i, 10);
    H5Dclose(fx_dataset(f, "/train/labels", H5T_STD_I32BE, H5T_NATIVE_INT32, 1, (hsize_t[]){40},
                        false, lab));
    H5Fclose(f);
    dataset *ds = open_ok(path, NULL);
    dataset_reader *r = dataset_reader_init(ds, DATASET_SPLIT_TRAIN, READ_N, false);
    assert_string_equal(dataset_reader_source(r), "mixed");
    batch b;
    batch_init(&b, ds, READ_N);
    dataset_reader_read(r, read_ids, READ_N, &b);
    check_image_batch(&b, &sp, 0);
    dataset_reader_free(r);
    r = dataset_reader_init(ds, DATASET_SPLIT_VAL, READ_N, false);
    assert_string_equal(dataset_reader_source(r), "map");
    dataset_reader_read(r, (int64_t[]){8, 0}, 2, &b);
    assert_true(b.images[0] == ((float)fx_pixel(1, 8, 0) / 255.0f - fx_mean(0)) / fx_std(0));
    assert_int_equal(b.labels[1], fx_label(1, 0, 10));
    batch_free(&b);
    dataset_reader_free(r);
    dataset_close(ds);
}

static void test_split_names(void **state) {
    assert_int_equal(dataset_split_parse("val"), DATASET_SPLIT_VAL);
    assert_int_equal(dataset_split_parse("dev"), -1);
    assert_string_equal(dataset_split_name(DATASET_SPLIT_TEST), "test");
    assert_string_equal(dataset_kind_name(DATASET_KIND_IMAGE_TEXT), "image_text");
}

static void test_image_text(void **state) {
    char path[700];
    tmpfile_path(path, sizeof path, "image_text.h5");
    fx_spec sp = fx_text_spec();
    sp.kind = "image_text";
    sp.c = 1;
    sp.h = 2;
    sp.w = 2;
    sp.segments = false;
    fx_write(path, &sp);
    dataset *ds = open_ok(path, NULL);
    assert_true(ds->has_images && ds->has_tokens);
    dataset_reader *r = dataset_reader_init(ds, DATASET_SPLIT_TEST, 3, false);
    batch b;
    batch_init(&b, ds, 3);
    dataset_reader_read(r, (int64_t[]){5, 1, 2}, 3, &b);
    assert_null(b.segments);
    assert_true(b.images[4] == (float)fx_pixel(2, 1, 0) / 255.0f);
    assert_int_equal(b.tokens[0], fx_token(2, 5, 0, 50));
    batch_free(&b);
    dataset_reader_free(r);
    dataset_close(ds);
    m_no_train_images(path);
    char *text = NULL;
    assert_true(inspect_text(path, &text) >= 1);
    assert_non_null(strstr(text, "/train/images: missing dataset"));
    free(text);
}

static int group_setup(void **state) {
    fx_tmpdir(g_dir, sizeof g_dir);
    return 0;
}

static int group_teardown(void **state) {
    fx_rmtree(g_dir);
    return 0;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    enum { NBAD = (int)(sizeof bad_cases / sizeof bad_cases[0]) };
    struct CMUnitTest tests[NBAD + 16];
    int n = 0;
    for (int i = 0; i < NBAD; i++)
        tests[n++] = (struct CMUnitTest){.name = bad_cases[i].name,
                                         .test_func = test_bad,
                                         .initial_state = (void *)&bad_cases[i]};
    const struct CMUnitTest more[] = {
        cmocka_unit_test(test_image_metadata),
        cmocka_unit_test(test_text_metadata),
        cmocka_unit_test(test_label_counts),
        cmocka_unit_test(test_skip_scan_misses_values),
        cmocka_unit_test(test_read_uint8_images),
        cmocka_unit_test(test_read_float_images),
        cmocka_unit_test(test_read_tokens_trimmed),
        cmocka_unit_test(test_read_many_runs),
        cmocka_unit_test(test_read_userblock_and_big_endian),
        cmocka_unit_test(test_split_names),
        cmocka_unit_test(test_image_text),
    };
    for (size_t i = 0; i < sizeof more / sizeof more[0]; i++)
        tests[n++] = more[i];
    int rc = _cmocka_run_group_tests("dataset", tests, (size_t)n, group_setup, group_teardown);
    MPI_Finalize();
    return rc;
}
