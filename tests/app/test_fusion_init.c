/* --init-image-from / --init-text-from: a fusion model's towers loaded
 * from params files of a vit and a transformer (init_towers_load):
 *   - every tower tensor gets the single-modality model's values (names
 *     mapped by the image. / text. prefix), the rest of the model keeps its
 *     own initialisation, the single models' heads are ignored;
 *   - a file from another architecture (other --dim) is refused naming the
 *     tensor, a missing file naming the file, a prefix with no tensors too.
 * Singleton MPI (no mpirun) for the HDF5 layer. */
#include "../dist/dataset_fixture.h"
#include "testutil.h"

#include "app/init_towers.h"
#include "core/check.h"
#include "dist/params_file.h"
#include "models/model.h"

#include <mpi.h>

static char dir[256];

static const data_shape shape = {.num_classes = 6,
                                 .channels = 1,
                                 .height = 8,
                                 .width = 8,
                                 .vocab_size = 15,
                                 .max_len = 7,
                                 .pad_id = 0};

static model *make(const char *name, int dim, uint64_t seed) {
    model_config cfg = model_config_default();
    cfg.dim = dim;
    cfg.heads = 2;
    cfg.depth = 2;
    cfg.ffn = 24;
    cfg.patch = 4;
    cfg.seed = seed;
    char err[256];
    model *m = model_create(name, &cfg, &shape, err, sizeof err);
    if (!m)
        fail_msg("model_create %s: %s", name, err);
    return m;
}

static void save(const model *m, const char *file, char *path, size_t len) {
    fx_path(path, len, dir, file);
    char err[512];
    if (!params_file_write(path, m->kind->name, &m->ps, err, sizeof err))
        fail_msg("params_file_write: %s", err);
}

static void test_load_towers(void **state) {
    (void)state;
    model *vit = make("vit", 16, 1), *txt = make("transformer", 16, 2),
          *fus = make("fusion", 16, 3);
    model *fresh = make("fusion", 16, 3);
    char vpath[512], tpath[512], err[512];
    save(vit, "vit.h5", vpath, sizeof vpath);
    save(txt, "text.h5", tpath, sizeof tpath);
    int n_img = 0, n_txt = 0;
    if (!init_towers_load(&fus->ps, "image.", vpath, &n_img, err, sizeof err) ||
        !init_towers_load(&fus->ps, "text.", tpath, &n_txt, err, sizeof err))
        fail_msg("init_towers_load: %s", err);
    assert_int_equal(n_img, vit->ps.count - 2); /* all but head.weight, head.bias */
    assert_int_equal(n_txt, txt->ps.count - 2);
    int from_vit = 0, from_txt = 0, own = 0;
    for (int i = 0; i < fus->ps.count; i++) {
        const tensor *t = fus->ps.tensors[i];
        const model *src = !strncmp(t->name, "image.", 6)  ? vit
                           : !strncmp(t->name, "text.", 5) ? txt
                                                           : NULL;
        if (src) {
            const tensor *s = params_find(&src->ps, strchr(t->name, '.') + 1);
            if (!s)
                fail_msg("%s has no counterpart in %s", t->name, src->kind->name);
            if (memcmp(t->data, s->data, sizeof(float) * t->numel) != 0)
                fail_msg("%s was not loaded", t->name);
            src == vit ? from_vit++ : from_txt++;
        } else {
            const tensor *f = params_find(&fresh->ps, t->name);
            if (memcmp(t->data, f->data, sizeof(float) * t->numel) != 0)
                fail_msg("%s (not a tower tensor) changed", t->name);
            own++;
        }
    }
    print_message("%d tensors from vit, %d from transformer, %d fusion tensors untouched\n",
                  from_vit, from_txt, own);
    assert_true(from_vit == n_img && from_txt == n_txt && own > 0);
    model_free(vit);
    model_free(txt);
    model_free(fus);
    model_free(fresh);
}

static void expect_fail(params *ps, const char *prefix, const char *path, const char *needle) {
    char err[512] = "";
    int n = -1;
    assert_false(init_towers_load(ps, prefix, path, &n, err, sizeof err));
    assert_int_equal(n, 0);
    if (!strstr(err, needle))
        fail_msg("message '%s' does not name '%s'", err, needle);
}

static void test_refused(void **state) {
    (void)state;
    model *wide = make("vit", 32, 1), *fus = make("fusion", 16, 3);
    char path[512], missing[512];
    save(wide, "wide.h5", path, sizeof path);
    expect_fail(&fus->ps, "image.", path, "patch_embed.weight"); /* shape mismatch */
    fx_path(missing, sizeof missing, dir, "nope.h5");
    expect_fail(&fus->ps, "image.", missing, "nope.h5");
    expect_fail(&fus->ps, "audio.", path, "audio.");
    model_free(wide);
    model_free(fus);
}

int main(void) {
    MPI_Init(NULL, NULL);
    fx_tmpdir(dir, sizeof dir);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_towers),
        cmocka_unit_test(test_refused),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    fx_rmtree(dir);
    MPI_Finalize();
    return failed;
}
