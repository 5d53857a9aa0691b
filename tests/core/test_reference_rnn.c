/* The stacked bidirectional LSTM and GRU (ops_rnn.h) against torch.nn.LSTM
 * and torch.nn.GRU over a packed, right-padded batch
 * (scripts/make_fixtures_rnn.py -> tests/fixtures/rnn.h5): outputs, the
 * input gradient and every parameter gradient to atol 1e-5 + rtol 1e-4. */
#include "testutil.h"

#include "core/ops_rnn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *fixture(void) {
    return tu_fixture("rnn.h5");
}

static int attr_int(const char *name) {
    double v = tu_h5_attr(fixture(), name, NAN);
    if (isnan(v))
        fail_msg("rnn.h5 has no attribute %s", name);
    return (int)v;
}

static void check_case(const char *name, rnn_cell cell) {
    int B = attr_int("B"), T = attr_int("T"), C = attr_int("C"), H = attr_int("H");
    params ps;
    params_init(&ps);
    rnn_stack s;
    rnn_stack_init(&s, &ps, "rnn", cell, C, H, attr_int("layers"), true, 0.0f);
    params_alloc(&ps, 1);
    char key[256];
    int64_t n;
    for (int i = 0; i < ps.count; i++) {
        tensor *t = ps.tensors[i];
        snprintf(key, sizeof key, "%s/params/%s", name, t->name + strlen("rnn."));
        float *v = tu_h5_read_f32(fixture(), key, &n, NULL, NULL);
        assert_int_equal(n, t->numel);
        memcpy(t->data, v, sizeof(float) * n);
        free(v);
    }
    tensor *x = tu_leaf(3, (int[]){B, T, C}, true, 1, 0);
    snprintf(key, sizeof key, "%s/x", name);
    float *xv = tu_h5_read_f32(fixture(), key, &n, NULL, NULL);
    assert_int_equal(n, x->numel);
    memcpy(x->data, xv, sizeof(float) * n);
    free(xv);
    snprintf(key, sizeof key, "%s/lengths", name);
    int32_t *len = tu_h5_read_i32(fixture(), key, &n, NULL, NULL);
    assert_int_equal(n, B);
    tensor *valid = tu_leaf_i32(2, (int[]){B, T}, 0, 1, 0);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            valid->idata[b * T + t] = t < len[b];
    free(len);

    graph *g = graph_create(1 << 16, 0);
    tensor *out = rnn_stack_forward(g, &s, x, valid);
    snprintf(key, sizeof key, "%s/out", name);
    float *want = tu_h5_read_f32(fixture(), key, &n, NULL, NULL);
    assert_int_equal(n, out->numel);
    tu_assert_close(key, out->data, want, n, 1e-5f, 1e-4f);
    free(want);
    snprintf(key, sizeof key, "%s/grad_out", name);
    float *gout = tu_h5_read_f32(fixture(), key, &n, NULL, NULL);
    memcpy(out->grad, gout, sizeof(float) * n);
    free(gout);
    graph_backward_tape(g);
    snprintf(key, sizeof key, "%s/grad/x", name);
    want = tu_h5_read_f32(fixture(), key, &n, NULL, NULL);
    tu_assert_close(key, x->grad, want, n, 1e-5f, 1e-4f);
    free(want);
    for (int i = 0; i < ps.count; i++) {
        tensor *t = ps.tensors[i];
        snprintf(key, sizeof key, "%s/grad/%s", name, t->name + strlen("rnn."));
        want = tu_h5_read_f32(fixture(), key, &n, NULL, NULL);
        assert_int_equal(n, t->numel);
        tu_assert_close(key, t->grad, want, n, 1e-5f, 1e-4f);
        free(want);
    }
    graph_free(g);
    tu_leaf_free(x);
    tu_leaf_free(valid);
    params_free(&ps);
}

static void test_lstm_matches_torch(void **state) {
    (void)state;
    check_case("lstm", RNN_CELL_LSTM);
}

static void test_gru_matches_torch(void **state) {
    (void)state;
    check_case("gru", RNN_CELL_GRU);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lstm_matches_torch),
        cmocka_unit_test(test_gru_matches_torch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
