/* Every registered model gives bit for bit the same loss and parameter
 * gradients with lazily zeroed activation gradients (graph_set_lazy_grads,
 * what heed train uses) as in eager mode, over two training steps with
 * dropout and a padded batch. Before the second step the arena is filled
 * with NaN, and so is the gradient pool before every backward, so an
 * unwritten gradient that anything reads shows up, as does a gradient whose
 * memory the pool gave away too early. */
#include "testutil.h"

#include "core/ops.h"
#include "core/optim.h"
#include "models/model.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { NB = 4, LEN = 10, IMG = 16, CH = 3, CLASSES = 5, VOCAB = 40 };

static void fill_arena_nan(graph *g) {
    arena *a = graph_arena(g);
    size_t bytes = arena_high_water(a);
    float *p = arena_alloc(a, bytes);
    for (size_t i = 0; i < bytes / sizeof(float); i++)
        p[i] = NAN;
    graph_reset(g);
}

/* Two AdamW steps of model `name`; the second step's loss and gradients. */
static void run(const char *name, bool lazy, model_batch *mb, tensor *labels, float *grads,
                float *loss, int64_t *numel) {
    model_config cfg = model_config_default();
    cfg.dim = 16;
    cfg.heads = 2;
    cfg.depth = 1;
    cfg.ffn = 32;
    cfg.dropout = 0.1f;
    cfg.width = 4;
    data_shape shape = {.num_classes = CLASSES};
    const model_kind *kind = model_kind_find(name);
    if (kind->needs_images) {
        shape.channels = CH;
        shape.height = shape.width = IMG;
    }
    if (kind->needs_tokens) {
        shape.vocab_size = VOCAB;
        shape.max_len = LEN;
    }
    char err[256];
    model *m = model_create(name, &cfg, &shape, err, sizeof err);
    if (!m)
        fail_msg("%s: %s", name, err);
    graph *g = graph_create(1 << 12, m->ps.count);
    graph_set_training(g, true);
    graph_set_lazy_grads(g, lazy);
    graph_set_grad_poison(g, true); /* NaN in the gradient pool at every backward */
    adam_config ac = adam_config_default();
    adam_state st;
    adam_state_init(&st, 0, m->ps.numel);
    int64_t ids[NB] = {3, 1, 4, 1};
    for (int step = 0; step < 2; step++) {
        params_zero_grad(&m->ps);
        graph_reset(g);
        if (step == 1)
            fill_arena_nan(g);
        graph_begin_step(g, 7, step, ids, NB);
        tensor *l = model_loss(m, g, mb, labels, 0.0f, NULL, NULL);
        graph_backward(g, l, 1.0f);
        *loss = l->data[0];
        if (step == 1)
            memcpy(grads, m->ps.grad, sizeof(float) * m->ps.numel);
        adam_step(&ac, &st, &m->ps, m->ps.grad, 1e-2f, 1.0f);
    }
    *numel = m->ps.numel;
    adam_state_free(&st);
    graph_free(g);
    model_free(m);
}

static void test_every_model_lazy_equals_eager(void **state) {
    tensor *images = tu_leaf(4, (int[]){NB, CH, IMG, IMG}, false, 1, 1);
    tensor *tokens = tu_leaf_i32(2, (int[]){NB, LEN}, 1, VOCAB, 2);
    for (int t = 6; t < LEN; t++)
        tokens->idata[LEN + t] = 0; /* sample 1 is padded */
    tensor *labels = tu_leaf_i32(1, (int[]){NB}, 0, CLASSES, 3);
    enum { MAX_PARAMS = 1 << 22 };
    float *eager = test_malloc(sizeof(float) * MAX_PARAMS);
    float *lazy = test_malloc(sizeof(float) * MAX_PARAMS);
    for (int i = 0; i < model_kind_count(); i++) {
        const model_kind *kind = model_kind_at(i);
        model_batch mb = {.B = NB,
                          .images = kind->needs_images ? images : NULL,
                          .tokens = kind->needs_tokens ? tokens : NULL};
        float loss_eager, loss_lazy;
        int64_t n_eager, n_lazy;
        run(kind->name, false, &mb, labels, eager, &loss_eager, &n_eager);
        assert_true(n_eager <= MAX_PARAMS);
        run(kind->name, true, &mb, labels, lazy, &loss_lazy, &n_lazy);
        assert_int_equal(n_eager, n_lazy);
        if (!isfinite(loss_eager) || memcmp(&loss_eager, &loss_lazy, sizeof(float)) != 0)
            fail_msg("%s: loss eager %.9g lazy %.9g", kind->name, loss_eager, loss_lazy);
        if (memcmp(eager, lazy, sizeof(float) * n_eager) != 0) {
            print_error("%s: gradients differ\n", kind->name);
            tu_assert_close(kind->name, lazy, eager, n_eager, 0, 0);
            fail();
        }
        print_message("%s: %lld gradients equal, loss %.6f\n", kind->name, (long long)n_eager,
                      loss_eager);
    }
    test_free(eager);
    test_free(lazy);
    tu_leaf_free(images);
    tu_leaf_free(tokens);
    tu_leaf_free(labels);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_model_lazy_equals_eager),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
