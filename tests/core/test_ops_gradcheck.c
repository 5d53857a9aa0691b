/* Finite-difference gradient checks of every op in ops_elementwise,
 * ops_activation, ops_softmax, ops_norm, ops_dropout, ops_embedding,
 * ops_shape, ops_pool and ops_loss. Central differences with h = 1e-2 on
 * inputs in [-1, 1]; tolerance atol 2e-3 + rtol 1e-2 unless stated (float32
 * forward, O(h^2) truncation). */
#include "testutil.h"

#include "core/ops.h"

#include <math.h>
#include <string.h>

#define H 1e-2f
#define ATOL 2e-3f
#define RTOL 1e-2f

typedef tensor *(*unary_fn)(graph *, tensor *);

static tensor *fwd_unary(graph *g, tensor **in, void *user) {
    return ((unary_fn)user)(g, in[0]);
}

static tensor *gelu_erf(graph *g, tensor *x) {
    return op_gelu(g, x, GELU_ERF);
}
static tensor *gelu_tanh(graph *g, tensor *x) {
    return op_gelu(g, x, GELU_TANH);
}
static tensor *scale3(graph *g, tensor *x) {
    return op_scale(g, x, -3.0f);
}
static tensor *softmax_nomask(graph *g, tensor *x) {
    return op_softmax(g, x, NULL);
}
static tensor *log_softmax_nomask(graph *g, tensor *x) {
    return op_log_softmax(g, x, NULL);
}

static void check_unary(const char *name, unary_fn fn, float lo_abs) {
    tensor *x = tu_leaf(3, (int[]){2, 3, 7}, true, 1, 11);
    /* keep away from kinks (ReLU at 0) */
    for (int64_t i = 0; i < x->numel; i++)
        if (fabsf(x->data[i]) < lo_abs)
            x->data[i] = x->data[i] < 0 ? -lo_abs : lo_abs;
    tu_gradcheck(name, fwd_unary, (void *)fn, 1, &x, H, ATOL, RTOL, 100);
    tu_leaf_free(x);
}

static void test_unary_grads(void **state) {
    check_unary("relu", op_relu, 0.05f);
    check_unary("gelu_erf", gelu_erf, 0);
    check_unary("gelu_tanh", gelu_tanh, 0);
    check_unary("tanh", op_tanh, 0);
    check_unary("sigmoid", op_sigmoid, 0);
    check_unary("scale", scale3, 0);
    check_unary("softmax", softmax_nomask, 0);
    check_unary("log_softmax", log_softmax_nomask, 0);
}

static void test_gelu_values(void **state) {
    /* torch.nn.functional.gelu at 1.0: erf 0.8413447, tanh 0.8411920 */
    tensor *x = tu_leaf(1, (int[]){1}, false, 1, 1);
    x->data[0] = 1.0f;
    graph *g = graph_create(1 << 12, 0);
    assert_true(fabsf(op_gelu(g, x, GELU_ERF)->data[0] - 0.8413447f) < 1e-6f);
    assert_true(fabsf(op_gelu(g, x, GELU_TANH)->data[0] - 0.8411920f) < 1e-6f);
    graph_free(g);
    tu_leaf_free(x);
}

typedef tensor *(*binary_fn)(graph *, tensor *, tensor *);

static tensor *fwd_binary(graph *g, tensor **in, void *user) {
    return ((binary_fn)user)(g, in[0], in[1]);
}

static void test_binary_grads(void **state) {
    tensor *in[2] = {tu_leaf(2, (int[]){3, 5}, true, 1, 1), tu_leaf(2, (int[]){3, 5}, true, 1, 2)};
    tu_gradcheck("add", fwd_binary, (void *)op_add, 2, in, H, ATOL, RTOL, 100);
    tu_gradcheck("mul", fwd_binary, (void *)op_mul, 2, in, H, ATOL, RTOL, 100);
    tensor *b = tu_leaf(1, (int[]){5}, true, 1, 3);
    tensor *bin[2] = {in[0], b};
    tu_gradcheck("bias", fwd_binary, (void *)op_bias, 2, bin, H, ATOL, RTOL, 100);
    tensor *x3 = tu_leaf(3, (int[]){2, 3, 4}, true, 1, 4),
           *pos = tu_leaf(2, (int[]){5, 4}, true, 1, 5);
    tensor *pin[2] = {x3, pos};
    tu_gradcheck("add_positions", fwd_binary, (void *)op_add_positions, 2, pin, H, ATOL, RTOL, 100);
    /* rows of pos beyond T get no gradient */
    for (int i = 12; i < 20; i++)
        assert_true(pos->grad[i] == 0.0f);
    tu_leaf_free(in[0]);
    tu_leaf_free(in[1]);
    tu_leaf_free(b);
    tu_leaf_free(x3);
    tu_leaf_free(pos);
}

static tensor *fwd_masked_softmax(graph *g, tensor **in, void *user) {
    return op_softmax(g, in[0], user);
}
static tensor *fwd_masked_log_softmax(graph *g, tensor **in, void *user) {
    return op_log_softmax(g, in[0], user);
}

static void test_masked_softmax(void **state) {
    /* x (B=2, NH=2, T=2, S=4); mask (B, S) with sample 1's last two keys off */
    tensor *x = tu_leaf(4, (int[]){2, 2, 2, 4}, true, 1, 7);
    tensor *mask = tu_leaf(2, (int[]){2, 4}, false, 0, 0);
    float mv[8] = {0, 0, 0, 0, 0, 0, -INFINITY, -INFINITY};
    memcpy(mask->data, mv, sizeof mv);
    tu_gradcheck("softmax_masked", fwd_masked_softmax, mask, 1, &x, H, ATOL, RTOL, 100);
    tu_gradcheck("log_softmax_masked", fwd_masked_softmax, mask, 1, &x, H, ATOL, RTOL, 100);
    graph *g = graph_create(1 << 14, 0);
    tensor *p = op_softmax(g, x, mask);
    for (int r = 0; r < 8; r++) {
        float sum = 0;
        for (int s = 0; s < 4; s++)
            sum += p->data[r * 4 + s];
        assert_true(fabsf(sum - 1.0f) < 1e-6f);
        if (r >= 4)
            assert_true(p->data[r * 4 + 2] == 0.0f && p->data[r * 4 + 3] == 0.0f);
    }
    /* a fully masked row: zeros, no NaN, no gradient */
    float all_off[8] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, 0, 0, 0, 0};
    memcpy(mask->data, all_off, sizeof all_off);
    tensor *q = op_softmax(g, x, mask);
    for (int i = 0; i < 16; i++)
        assert_true(q->data[i] == 0.0f);
    tensor *lq = fwd_masked_log_softmax(g, &x, mask);
    for (int i = 16; i < 32; i++)
        assert_false(isnan(lq->data[i]));
    graph_free(g);
    tu_leaf_free(x);
    tu_leaf_free(mask);
}

static tensor *fwd_layer_norm(graph *g, tensor **in, void *user) {
    return op_layer_norm(g, in[0], in[1], in[2], 1e-5f);
}

static void test_layer_norm(void **state) {
    tensor *in[3] = {tu_leaf(2, (int[]){4, 6}, true, 1, 1), tu_leaf(1, (int[]){6}, true, 1, 2),
                     tu_leaf(1, (int[]){6}, true, 1, 3)};
    tu_gradcheck("layer_norm", fwd_layer_norm, NULL, 3, in, H, ATOL, RTOL, 100);
    for (int i = 0; i < 6; i++) {
        in[1]->data[i] = 1;
        in[2]->data[i] = 0;
    }
    graph *g = graph_create(1 << 14, 0);
    tensor *y = fwd_layer_norm(g, in, NULL);
    for (int r = 0; r < 4; r++) {
        double m = 0, v = 0;
        for (int i = 0; i < 6; i++)
            m += y->data[r * 6 + i];
        m /= 6;
        for (int i = 0; i < 6; i++)
            v += (y->data[r * 6 + i] - m) * (y->data[r * 6 + i] - m);
        assert_true(fabs(m) < 1e-6 && fabs(v / 6 - 1) < 1e-3);
    }
    graph_free(g);
    for (int i = 0; i < 3; i++)
        tu_leaf_free(in[i]);
}

static tensor *fwd_dropout(graph *g, tensor **in, void *user) {
    int64_t ids[3] = {5, 9, 2};
    graph_begin_step(g, 42, 7, ids, 3);
    graph_set_training(g, true);
    return op_dropout(g, in[0], 0.4f);
}

static void test_dropout(void **state) {
    tensor *x = tu_leaf(2, (int[]){3, 200}, true, 1, 9);
    tu_gradcheck("dropout", fwd_dropout, NULL, 1, &x, H, ATOL, RTOL, 200);
    graph *g = graph_create(1 << 16, 0);
    tensor *y = fwd_dropout(g, &x, NULL);
    int kept = 0;
    for (int64_t i = 0; i < y->numel; i++) {
        if (y->data[i] != 0.0f) {
            kept++;
            assert_true(fabsf(y->data[i] - x->data[i] / 0.6f) < 1e-6f);
        }
    }
    assert_true(kept > 0.5 * 600 && kept < 0.7 * 600);
    /* the mask of sample 9 is the same when it sits in another row */
    graph_reset(g);
    int64_t ids[1] = {9};
    graph_begin_step(g, 42, 7, ids, 1);
    tensor *x1 = graph_reshape(g, x, 2, (int[]){3, 200});
    tensor *row1 = graph_new(g, DTYPE_F32, 2, (int[]){1, 200}, false);
    memcpy(row1->data, x1->data + 200, sizeof(float) * 200);
    float y1[200];
    memcpy(y1, op_dropout(g, row1, 0.4f)->data, sizeof y1);
    graph_reset(g);
    tensor *y3 = fwd_dropout(g, &x, NULL);
    for (int i = 0; i < 200; i++)
        assert_true(y1[i] == y3->data[200 + i]);
    /* eval mode: identity */
    graph_set_training(g, false);
    assert_ptr_equal(op_dropout(g, x, 0.4f), x);
    graph_free(g);
    tu_leaf_free(x);
}

typedef struct ids_case {
    tensor *ids, *labels, *valid;
    float smoothing;
} ids_case;

static tensor *fwd_embedding(graph *g, tensor **in, void *user) {
    return op_embedding(g, ((ids_case *)user)->ids, in[0]);
}

static void test_embedding(void **state) {
    tensor *table = tu_leaf(2, (int[]){10, 4}, true, 1, 1);
    tensor *ids = tu_leaf_i32(2, (int[]){2, 3}, 0, 10, 2);
    int32_t v[6] = {1, 3, 1, 7, 0, 3};
    memcpy(ids->idata, v, sizeof v);
    ids_case c = {.ids = ids};
    tu_gradcheck("embedding", fwd_embedding, &c, 1, &table, H, ATOL, RTOL, 100);
    for (int r = 0; r < 10; r++) {
        bool used = r == 0 || r == 1 || r == 3 || r == 7;
        for (int i = 0; i < 4; i++)
            if (!used)
                assert_true(table->grad[r * 4 + i] == 0.0f);
    }
    tu_leaf_free(table);
    tu_leaf_free(ids);
}

static tensor *fwd_ce(graph *g, tensor **in, void *user) {
    ids_case *c = user;
    return op_cross_entropy(g, in[0], c->labels, c->smoothing);
}

static void test_cross_entropy(void **state) {
    tensor *logits = tu_leaf(2, (int[]){4, 5}, true, 2, 3);
    tensor *labels = tu_leaf_i32(1, (int[]){4}, 0, 5, 4);
    labels->idata[2] = -1;
    ids_case c = {.labels = labels, .smoothing = 0.0f};
    tu_gradcheck("cross_entropy", fwd_ce, &c, 1, &logits, H, ATOL, RTOL, 100);
    c.smoothing = 0.1f;
    tu_gradcheck("cross_entropy_smoothed", fwd_ce, &c, 1, &logits, H, ATOL, RTOL, 100);
    /* uniform logits: loss = log K, with or without smoothing */
    memset(logits->data, 0, sizeof(float) * 20);
    graph *g = graph_create(1 << 14, 0);
    assert_true(fabsf(fwd_ce(g, &logits, &c)->data[0] - logf(5)) < 1e-6f);
    /* all labels ignored: 0 */
    for (int i = 0; i < 4; i++)
        labels->idata[i] = -1;
    assert_true(fwd_ce(g, &logits, &c)->data[0] == 0.0f);
    graph_free(g);
    tu_leaf_free(logits);
    tu_leaf_free(labels);
}

static tensor *fwd_masked_mean(graph *g, tensor **in, void *user) {
    return op_masked_mean(g, in[0], ((ids_case *)user)->valid);
}
static tensor *fwd_weighted_sum(graph *g, tensor **in, void *user) {
    return op_weighted_sum(g, in[0], in[1]);
}

static void test_pooling(void **state) {
    tensor *x = tu_leaf(3, (int[]){3, 4, 5}, true, 1, 5);
    tensor *valid = tu_leaf_i32(2, (int[]){3, 4}, 1, 2, 0);
    valid->idata[3] = 0;
    for (int t = 0; t < 4; t++)
        valid->idata[8 + t] = 0; /* sample 2: no valid token */
    ids_case c = {.valid = valid};
    tu_gradcheck("masked_mean", fwd_masked_mean, &c, 1, &x, H, ATOL, RTOL, 100);
    graph *g = graph_create(1 << 14, 0);
    tensor *m = fwd_masked_mean(g, &x, &c);
    for (int i = 0; i < 5; i++) {
        float want = (x->data[i] + x->data[5 + i] + x->data[10 + i]) / 3;
        assert_true(fabsf(m->data[i] - want) < 1e-6f);
        assert_true(m->data[10 + i] == 0.0f);
    }
    graph_free(g);
    tensor *w = tu_leaf(2, (int[]){3, 4}, true, 1, 6);
    tensor *in[2] = {x, w};
    tu_gradcheck("weighted_sum", fwd_weighted_sum, NULL, 2, in, H, ATOL, RTOL, 100);
    tu_leaf_free(x);
    tu_leaf_free(w);
    tu_leaf_free(valid);
}

static tensor *fwd_concat(graph *g, tensor **in, void *user) {
    return op_concat(g, 3, in, *(int *)user);
}
static tensor *fwd_split_mix(graph *g, tensor **in, void *user) {
    tensor *parts[2];
    op_split(g, in[0], 1, 2, (int[]){1, 3}, parts);
    /* use both parts, the second scaled, so both backward paths are checked */
    return op_concat(g, 2, (tensor *[]){op_scale(g, parts[1], 2.0f), parts[0]}, 1);
}
static tensor *fwd_select(graph *g, tensor **in, void *user) {
    return op_select_token(g, in[0], 2);
}

static void test_shape_ops(void **state) {
    tensor *in[3] = {tu_leaf(3, (int[]){2, 3, 2}, true, 1, 1),
                     tu_leaf(3, (int[]){2, 3, 4}, true, 1, 2),
                     tu_leaf(3, (int[]){2, 3, 1}, true, 1, 3)};
    int axis = -1;
    tu_gradcheck("concat_last", fwd_concat, &axis, 3, in, H, ATOL, RTOL, 100);
    graph *g = graph_create(1 << 14, 0);
    tensor *cat = fwd_concat(g, in, &axis);
    assert_int_equal(cat->shape[2], 7);
    assert_true(cat->data[7 + 2] == in[1]->data[4]); /* row 1, column 2 = in[1] row 1 col 0 */
    tensor *parts[3];
    op_split(g, cat, -1, 3, (int[]){2, 4, 1}, parts);
    for (int k = 0; k < 3; k++)
        assert_memory_equal(parts[k]->data, in[k]->data, sizeof(float) * in[k]->numel);
    graph_free(g);
    tensor *x = tu_leaf(3, (int[]){2, 4, 3}, true, 1, 4);
    tu_gradcheck("split", fwd_split_mix, NULL, 1, &x, H, ATOL, RTOL, 100);
    tu_gradcheck("select_token", fwd_select, NULL, 1, &x, H, ATOL, RTOL, 100);
    tu_leaf_free(x);
    for (int k = 0; k < 3; k++)
        tu_leaf_free(in[k]);
}

static void test_masks(void **state) {
    tensor *ids = tu_leaf_i32(2, (int[]){2, 3}, 1, 5, 1);
    ids->idata[2] = 0;
    graph *g = graph_create(1 << 14, 0);
    tensor *valid = valid_from_ids(g, ids, 0);
    tensor *mask = mask_from_valid(g, valid);
    assert_int_equal(valid->idata[2], 0);
    assert_int_equal(valid->idata[1], 1);
    assert_true(mask->data[2] == -INFINITY && mask->data[1] == 0.0f);
    tensor *pe = sinusoidal_positions(g, 4, 6);
    assert_true(fabsf(pe->data[1 * 6 + 0] - sinf(1.0f)) < 1e-6f);
    assert_true(fabsf(pe->data[2 * 6 + 3] - cosf(2.0f * powf(10000.0f, -2.0f / 6))) < 1e-6f);
    graph_free(g);
    tu_leaf_free(ids);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unary_grads),  cmocka_unit_test(test_gelu_values),
        cmocka_unit_test(test_binary_grads), cmocka_unit_test(test_masked_softmax),
        cmocka_unit_test(test_layer_norm),   cmocka_unit_test(test_dropout),
        cmocka_unit_test(test_embedding),    cmocka_unit_test(test_cross_entropy),
        cmocka_unit_test(test_pooling),      cmocka_unit_test(test_shape_ops),
        cmocka_unit_test(test_masks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
