/* Embedding lookup and sinusoidal positions. Embedding is linear in the
 * table, so finite differences with h = 1e-2 are exact up to float rounding:
 * 1e-3 abs + 1e-3 rel. */
#include "testutil.h"

#include <math.h>
#include <string.h>

#include "core/ops.h"

static tensor *fwd_embedding(graph *g, tensor **in, void *user) {
    return op_embedding(g, user, in[0]);
}

static void test_embedding_values(void **state) {
    int V = 5, C = 3;
    tensor *table = tu_leaf(2, (int[]){V, C}, false, 1, 1);
    tensor *ids = tu_leaf_i32(2, (int[]){2, 3}, 0, V, 2);
    int32_t idv[] = {4, 0, 2, 2, 1, 4};
    memcpy(ids->idata, idv, sizeof idv);
    graph *g = graph_create(1 << 16, 0);
    tensor *y = op_embedding(g, ids, table);
    assert_int_equal(y->ndim, 3);
    assert_int_equal(y->shape[0], 2);
    assert_int_equal(y->shape[1], 3);
    assert_int_equal(y->shape[2], C);
    assert_null(y->grad);
    assert_int_equal(graph_tape_length(g), 0);
    for (int n = 0; n < 6; n++)
        tu_assert_close("embedding row", y->data + n * C, table->data + idv[n] * C, C, 0, 0);
    graph_free(g);
    tu_leaf_free(table);
    tu_leaf_free(ids);
}

static void test_embedding_grad(void **state) {
    tensor *table = tu_leaf(2, (int[]){7, 4}, true, 1, 3);
    tensor *ids = tu_leaf_i32(2, (int[]){3, 5}, 0, 7, 4);
    tu_gradcheck("embedding", fwd_embedding, ids, 1, &table, 1e-2f, 1e-3f, 1e-3f, 200);
    tu_leaf_free(table);
    tu_leaf_free(ids);
}

/* Rows no id names get exactly nothing; a repeated id gets the sum. */
static void test_embedding_unused_rows(void **state) {
    int V = 10, C = 6, N = 5;
    tensor *table = tu_leaf(2, (int[]){V, C}, true, 1, 5);
    tensor *ids = tu_leaf_i32(1, (int[]){N}, 0, V, 6);
    int32_t idv[] = {7, 1, 4, 7, 7};
    memcpy(ids->idata, idv, sizeof idv);
    graph *g = graph_create(1 << 16, 0);
    tensor *y = op_embedding(g, ids, table);
    assert_non_null(y->grad);
    for (int i = 0; i < N * C; i++)
        y->grad[i] = (float)(i + 1) * 0.25f;
    graph_backward_tape(g);
    float want[10 * 6] = {0};
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            want[idv[n] * C + c] += y->grad[n * C + c];
    tu_assert_close("embedding dtable", table->grad, want, V * C, 0, 0);
    for (int v = 0; v < V; v++)
        if (v != 1 && v != 4 && v != 7)
            for (int c = 0; c < C; c++)
                assert_true(table->grad[v * C + c] == 0.0f);
    graph_free(g);
    tu_leaf_free(table);
    tu_leaf_free(ids);
}

/* The rotation recurrence must match the closed form even far down the
 * table; odd C ends in a lone sin column. */
static void check_positions(int T, int C, float atol) {
    graph *g = graph_create(1 << 16, 0);
    tensor *pe = sinusoidal_positions(g, T, C);
    assert_int_equal(pe->ndim, 2);
    assert_int_equal(pe->shape[0], T);
    assert_int_equal(pe->shape[1], C);
    assert_null(pe->grad);
    float *want = test_malloc(sizeof(float) * T * C);
    for (int t = 0; t < T; t++)
        for (int i = 0; 2 * i < C; i++) {
            double a = t / pow(10000.0, 2.0 * i / C);
            want[t * C + 2 * i] = (float)sin(a);
            if (2 * i + 1 < C)
                want[t * C + 2 * i + 1] = (float)cos(a);
        }
    tu_assert_close("sinusoidal", pe->data, want, (int64_t)T * C, atol, 0);
    test_free(want);
    graph_free(g);
}

static void test_sinusoidal_values(void **state) {
    check_positions(1, 4, 0);
    check_positions(50, 16, 1e-6f);
    check_positions(9, 7, 1e-6f);
    check_positions(4096, 64, 1e-6f);
    /* PE[1, 0] = sin(1), PE[1, 1] = cos(1) for any C */
    graph *g = graph_create(1 << 16, 0);
    tensor *pe = sinusoidal_positions(g, 2, 8);
    assert_float_equal(pe->data[8], sinf(1.0f), 1e-7);
    assert_float_equal(pe->data[9], cosf(1.0f), 1e-7);
    graph_free(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_embedding_values),
        cmocka_unit_test(test_embedding_grad),
        cmocka_unit_test(test_embedding_unused_rows),
        cmocka_unit_test(test_sinusoidal_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
