/* Cross-entropy (fused softmax, label smoothing, ignored rows) and the
 * accuracy count. Gradient checks use logits in [-2, 2] and h = 1e-2: the
 * O(h^2) truncation error of a log-sum-exp stays below 1e-4 there, so
 * 1e-3 abs + 1e-2 rel. */
#include "testutil.h"

#include <math.h>
#include <string.h>

#include "core/ops.h"

static tensor *labels_of(int ndim, const int *shape, const int32_t *v) {
    tensor *l = tu_leaf_i32(ndim, shape, 0, 1, 1);
    memcpy(l->idata, v, sizeof(int32_t) * l->numel);
    return l;
}

static float ce(graph *g, tensor *logits, const tensor *labels, float s) {
    tensor *loss = op_cross_entropy(g, logits, labels, s);
    assert_int_equal(loss->ndim, 1);
    assert_int_equal(loss->shape[0], 1);
    return loss->data[0];
}

/* Uniform logits: every -log p_k is log K, with or without smoothing. */
static void test_cross_entropy_uniform(void **state) {
    int N = 4, K = 7;
    tensor *logits = tu_leaf(2, (int[]){N, K}, false, 1, 1);
    for (int i = 0; i < N * K; i++)
        logits->data[i] = 0.3f;
    tensor *labels = labels_of(1, (int[]){N}, (int32_t[]){0, 6, 3, 3});
    graph *g = graph_create(1 << 16, 0);
    assert_float_equal(ce(g, logits, labels, 0.0f), logf((float)K), 1e-6);
    assert_float_equal(ce(g, logits, labels, 0.1f), logf((float)K), 1e-6);
    assert_float_equal(ce(g, logits, labels, 1.0f), logf((float)K), 1e-6);
    graph_free(g);
    tu_leaf_free(logits);
    tu_leaf_free(labels);
}

/* logits [1, 2, 3], label 0: nll = lse - 1, smoothing term lse - 2 (mean
 * logit), so with s = 0.1 the loss is 0.9 (lse - 1) + 0.1 (lse - 2), as
 * F.cross_entropy(label_smoothing=0.1) gives (2.3076060). */
static void test_cross_entropy_smoothing_value(void **state) {
    tensor *logits = tu_leaf(2, (int[]){1, 3}, true, 1, 1);
    memcpy(logits->data, (float[]){1, 2, 3}, sizeof(float) * 3);
    tensor *labels = labels_of(1, (int[]){1}, (int32_t[]){0});
    double lse = log(exp(1.0) + exp(2.0) + exp(3.0));
    graph *g = graph_create(1 << 16, 0);
    assert_float_equal(ce(g, logits, labels, 0.0f), lse - 1.0, 1e-6);
    tensor *loss = op_cross_entropy(g, logits, labels, 0.1f);
    assert_float_equal(loss->data[0], 0.9 * (lse - 1.0) + 0.1 * (lse - 2.0), 1e-6);
    assert_float_equal(loss->data[0], 2.3076060, 1e-6);
    /* d/dz = softmax(z) - (0.9 onehot + 0.1 / 3) */
    graph_backward(g, loss, 1.0f);
    float want[3];
    for (int k = 0; k < 3; k++)
        want[k] = (float)(exp(k + 1.0 - lse) - 0.1 / 3 - (k == 0 ? 0.9 : 0.0));
    tu_assert_close("ce dlogits", logits->grad, want, 3, 1e-6f, 0);
    graph_free(g);
    tu_leaf_free(logits);
    tu_leaf_free(labels);
}

/* Ignored rows change neither the loss (the mean is over the others) nor
 * get any gradient. */
static void test_cross_entropy_ignored(void **state) {
    int K = 5;
    tensor *logits = tu_leaf(2, (int[]){4, K}, true, 2, 2);
    tensor *labels = labels_of(1, (int[]){4}, (int32_t[]){-1, 3, -1, 0});
    tensor *kept = tu_leaf(2, (int[]){2, K}, false, 1, 3);
    memcpy(kept->data, logits->data + K, sizeof(float) * K);
    memcpy(kept->data + K, logits->data + 3 * K, sizeof(float) * K);
    tensor *kept_labels = labels_of(1, (int[]){2}, (int32_t[]){3, 0});
    graph *g = graph_create(1 << 16, 0);
    for (int i = 0; i < 2; i++) {
        float s = i ? 0.2f : 0.0f;
        float want = ce(g, kept, kept_labels, s);
        tensor *loss = op_cross_entropy(g, logits, labels, s);
        assert_float_equal(loss->data[0], want, 1e-6);
        memset(logits->grad, 0, sizeof(float) * 4 * K);
        graph_backward(g, loss, 1.0f);
        for (int k = 0; k < K; k++) {
            assert_true(logits->grad[k] == 0.0f);
            assert_true(logits->grad[2 * K + k] == 0.0f);
        }
        graph_reset(g);
    }
    graph_free(g);
    tu_leaf_free(logits);
    tu_leaf_free(labels);
    tu_leaf_free(kept);
    tu_leaf_free(kept_labels);
}

static void test_cross_entropy_all_ignored(void **state) {
    tensor *logits = tu_leaf(2, (int[]){3, 4}, true, 1, 4);
    tensor *labels = labels_of(1, (int[]){3}, (int32_t[]){-1, -1, -1});
    graph *g = graph_create(1 << 16, 0);
    tensor *loss = op_cross_entropy(g, logits, labels, 0.1f);
    assert_true(loss->data[0] == 0.0f);
    graph_backward(g, loss, 1.0f);
    for (int i = 0; i < 12; i++)
        assert_true(logits->grad[i] == 0.0f);
    graph_free(g);
    tu_leaf_free(logits);
    tu_leaf_free(labels);
}

typedef struct ce_case {
    const tensor *labels;
    float s;
    const float *w; /* class weights or NULL */
} ce_case;

static tensor *fwd_ce(graph *g, tensor **in, void *user) {
    ce_case *c = user;
    return op_cross_entropy_weighted(g, in[0], c->labels, c->s, c->w);
}

static void test_cross_entropy_grad(void **state) {
    tensor *logits = tu_leaf(2, (int[]){6, 5}, true, 2, 5);
    tensor *labels = labels_of(1, (int[]){6}, (int32_t[]){4, 0, -1, 2, 2, 1});
    const float smoothing[] = {0.0f, 0.2f, 1.0f};
    for (int i = 0; i < 3; i++) {
        ce_case c = {labels, smoothing[i], NULL};
        tu_gradcheck("cross_entropy", fwd_ce, &c, 1, &logits, 1e-2f, 1e-3f, 1e-2f, 100);
        c.w = (const float[]){0.5f, 2.0f, 1.0f, 0.0f, 3.0f};
        tu_gradcheck("cross_entropy_weighted", fwd_ce, &c, 1, &logits, 1e-2f, 1e-3f, 1e-2f, 100);
    }
    tu_leaf_free(logits);
    tu_leaf_free(labels);
}

/* (B, T, V) logits with (B, T) labels are the (B*T, V) problem. */
static void test_cross_entropy_3d(void **state) {
    tensor *logits = tu_leaf(3, (int[]){2, 3, 4}, true, 2, 6);
    tensor *labels = labels_of(2, (int[]){2, 3}, (int32_t[]){1, -1, 3, 0, 0, 2});
    graph *g = graph_create(1 << 16, 0);
    float l3 = ce(g, logits, labels, 0.1f);
    tensor *flat = graph_reshape(g, logits, 2, (int[]){6, 4});
    assert_float_equal(ce(g, flat, labels, 0.1f), l3, 0);
    graph_free(g);
    ce_case c = {labels, 0.1f, NULL};
    tu_gradcheck("cross_entropy_3d", fwd_ce, &c, 1, &logits, 1e-2f, 1e-3f, 1e-2f, 100);
    tu_leaf_free(logits);
    tu_leaf_free(labels);
}

/* Each row's term times w[label], the mean over the rows kept (not over
 * their weights); all-ones weights give the unweighted bits, and the
 * gradient of each row scales by its weight. */
static void test_cross_entropy_weighted_value(void **state) {
    int N = 5, K = 4;
    tensor *logits = tu_leaf(2, (int[]){N, K}, true, 2, 8);
    tensor *labels = labels_of(1, (int[]){N}, (int32_t[]){2, -1, 0, 3, 2});
    const float w[4] = {0.5f, 7.0f, 2.0f, 1.5f}, ones[4] = {1, 1, 1, 1};
    graph *g = graph_create(1 << 16, 0);
    float per_row[5] = {0};
    for (int n = 0; n < N; n++) {
        if (labels->idata[n] < 0)
            continue;
        tensor *row = tu_leaf(2, (int[]){1, K}, false, 1, 1);
        memcpy(row->data, logits->data + n * K, sizeof(float) * K);
        tensor *one = labels_of(1, (int[]){1}, labels->idata + n);
        per_row[n] = ce(g, row, one, 0.2f);
        tu_leaf_free(row);
        tu_leaf_free(one);
    }
    double want =
        (w[2] * per_row[0] + w[0] * per_row[2] + w[3] * per_row[3] + w[2] * per_row[4]) / 4;
    tensor *loss = op_cross_entropy_weighted(g, logits, labels, 0.2f, w);
    assert_float_equal(loss->data[0], want, 1e-5);
    graph_backward(g, loss, 1.0f);
    float weighted_grad[20];
    memcpy(weighted_grad, logits->grad, sizeof weighted_grad);
    graph_reset(g);
    memset(logits->grad, 0, sizeof(float) * N * K);
    float plain = ce(g, logits, labels, 0.2f);
    assert_true(op_cross_entropy_weighted(g, logits, labels, 0.2f, ones)->data[0] == plain);
    graph_reset(g);
    loss = op_cross_entropy(g, logits, labels, 0.2f);
    graph_backward(g, loss, 1.0f);
    for (int n = 0; n < N; n++) {
        int y = labels->idata[n];
        for (int k = 0; k < K; k++) {
            float scaled = y < 0 ? 0.0f : w[y] * logits->grad[n * K + k];
            assert_float_equal(weighted_grad[n * K + k], scaled, 1e-6);
        }
    }
    graph_free(g);
    tu_leaf_free(logits);
    tu_leaf_free(labels);
}

static void test_count_correct(void **state) {
    tensor *logits = tu_leaf(2, (int[]){5, 3}, false, 1, 7);
    memcpy(logits->data,
           (float[]){0, 1, 0, /* argmax 1 */
                     5, 5, 1, /* tie: the first maximum, 0 */
                     -1, -2, -3, 0, 0, 9, 3, 2, 1},
           sizeof(float) * 15);
    tensor *labels = labels_of(1, (int[]){5}, (int32_t[]){1, 0, -1, 1, 0});
    assert_int_equal(count_correct(logits, labels), 3);
    labels->idata[1] = 1;
    assert_int_equal(count_correct(logits, labels), 2);
    tu_leaf_free(logits);
    tu_leaf_free(labels);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cross_entropy_uniform),
        cmocka_unit_test(test_cross_entropy_smoothing_value),
        cmocka_unit_test(test_cross_entropy_ignored),
        cmocka_unit_test(test_cross_entropy_all_ignored),
        cmocka_unit_test(test_cross_entropy_grad),
        cmocka_unit_test(test_cross_entropy_3d),
        cmocka_unit_test(test_cross_entropy_weighted_value),
        cmocka_unit_test(test_count_correct),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
