/* Dropout: identity in eval mode and at p = 0; the mask is the documented
 * function of (seed, step, op number, sample id, element) and nothing else
 * (not the row a sample sits in); about 1 - p of the elements survive,
 * scaled by 1 / (1 - p); finite-difference gradients in training mode.
 *
 * Gradient tolerance: with the mask fixed by graph_begin_step, dropout is
 * linear in x, so central differences (h = 1e-2) are exact up to output
 * rounding: atol 1e-3 + rtol 1e-3. */
#include "testutil.h"

#include "core/ops.h"
#include "core/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define H 1e-2f
#define ATOL 1e-3f
#define RTOL 1e-3f

enum { N_PER = 300 }; /* elements per sample in most tests */

/* A (B, 3, 100) tensor of ones: out / scale is the mask. */
static tensor *ones(int B) {
    tensor *x = tu_leaf(3, (int[]){B, 3, 100}, false, 1, 1);
    for (int64_t i = 0; i < x->numel; i++)
        x->data[i] = 1.0f;
    return x;
}

/* The output of one training-mode dropout of x with the given sample ids. */
static void run_dropout(float *out, tensor *x, const int64_t *ids, uint64_t seed, uint64_t step,
                        float p) {
    graph *g = graph_create(1 << 16, 0);
    graph_set_training(g, true);
    graph_begin_step(g, seed, step, ids, x->shape[0]);
    memcpy(out, op_dropout(g, x, p)->data, sizeof(float) * x->numel);
    graph_free(g);
}

static void test_identity(void **state) {
    tensor *x = tu_leaf(2, (int[]){2, 10}, true, 1, 2);
    graph *g = graph_create(1 << 14, 0);
    graph_begin_step(g, 1, 1, (int64_t[]){0, 1}, 2);
    /* graphs start in eval mode */
    assert_ptr_equal(op_dropout(g, x, 0.5f), x);
    graph_set_training(g, true);
    assert_ptr_equal(op_dropout(g, x, 0.0f), x);
    graph_set_training(g, false);
    assert_ptr_equal(op_dropout(g, x, 0.5f), x);
    assert_int_equal(graph_tape_length(g), 0);
    graph_free(g);
    tu_leaf_free(x);
}

/* Element (j, i) of sample b (a (B, 3, 100) tensor) is kept iff 16-bit lane
 * i % 4 of rng_bits(rng_key(stream, id_b, 0), j << 20 | i / 4) is >=
 * round(p * 2^16), with stream the graph's next rng stream. */
static void test_mask_contract(void **state) {
    tensor *x = ones(2);
    int64_t ids[2] = {17, 4};
    float p = 0.25f, scale = 1.0f / (1.0f - p);
    graph *g = graph_create(1 << 16, 0);
    graph_set_training(g, true);
    graph_begin_step(g, 99, 3, ids, 2);
    uint64_t stream = graph_rng_stream(g);
    graph_begin_step(g, 99, 3, ids, 2); /* rewinds the op counter */
    tensor *y = op_dropout(g, x, p);
    for (int b = 0; b < 2; b++) {
        uint64_t key = rng_key(stream, (uint64_t)ids[b], 0);
        for (int i = 0; i < N_PER; i++) {
            int last = i % 100;
            uint64_t coord = (uint64_t)(i / 100) << 20 | (uint64_t)(last / 4);
            uint64_t lane = (rng_bits(key, coord) >> (16 * (last % 4))) & 0xffff;
            float want = lane >= (uint64_t)(p * 65536.0f + 0.5f) ? scale : 0.0f;
            assert_true(y->data[b * N_PER + i] == want);
        }
    }
    graph_free(g);
    tu_leaf_free(x);
}

/* Padding does not move a mask: a sample's (token, channel) and attention
 * (head, query, key) masks at length 5 are the top-left corner of its masks
 * at length 8. */
static void test_independent_of_length(void **state) {
    int64_t ids[2] = {3, 8};
    for (int four = 0; four < 2; four++) {
        int shape_short[4] = {2, 2, 5, 5}, shape_long[4] = {2, 2, 8, 8};
        int nd = four ? 4 : 3;
        if (!four) { /* (B, T, C) with C = 6 */
            shape_short[1] = 5, shape_short[2] = 6;
            shape_long[1] = 8, shape_long[2] = 6;
        }
        tensor *xs = tu_leaf(nd, shape_short, false, 1, 1),
               *xl = tu_leaf(nd, shape_long, false, 1, 1);
        for (int64_t i = 0; i < xs->numel; i++)
            xs->data[i] = 1.0f;
        for (int64_t i = 0; i < xl->numel; i++)
            xl->data[i] = 1.0f;
        float *ys = malloc(sizeof(float) * xs->numel), *yl = malloc(sizeof(float) * xl->numel);
        run_dropout(ys, xs, ids, 5, 2, 0.5f);
        run_dropout(yl, xl, ids, 5, 2, 0.5f);
        int64_t ps = xs->numel / 2, pl = xl->numel / 2;
        for (int b = 0; b < 2; b++)
            for (int i = 0; i < shape_short[1]; i++)
                for (int j = 0; j < shape_short[2]; j++)
                    for (int k = 0; k < (four ? 5 : 1); k++) {
                        int64_t is = four ? (i * 5 + j) * 5 + k : i * 6 + j;
                        int64_t il = four ? (i * 8 + j) * 8 + k : i * 6 + j;
                        assert_true(ys[b * ps + is] == yl[b * pl + il]);
                    }
        free(ys);
        free(yl);
        tu_leaf_free(xs);
        tu_leaf_free(xl);
    }
}

static void test_reproducible(void **state) {
    tensor *x = ones(3);
    int64_t ids[3] = {5, 9, 2};
    float a[3 * N_PER], b[3 * N_PER], c[3 * N_PER];
    run_dropout(a, x, ids, 42, 7, 0.4f);
    run_dropout(b, x, ids, 42, 7, 0.4f);
    assert_memory_equal(a, b, sizeof a);
    /* another step or another seed draws another mask */
    run_dropout(c, x, ids, 42, 8, 0.4f);
    assert_memory_not_equal(a, c, sizeof a);
    run_dropout(c, x, ids, 43, 7, 0.4f);
    assert_memory_not_equal(a, c, sizeof a);
    /* so does a second dropout op in the same step */
    graph *g = graph_create(1 << 16, 0);
    graph_set_training(g, true);
    graph_begin_step(g, 42, 7, ids, 3);
    tensor *first = op_dropout(g, x, 0.4f), *second = op_dropout(g, x, 0.4f);
    assert_memory_equal(first->data, a, sizeof a);
    assert_memory_not_equal(first->data, second->data, sizeof a);
    graph_free(g);
    tu_leaf_free(x);
}

/* Sample 9 at row 1 of a batch of 3 and at row 3 of a batch of 4 (another
 * rank or micro-batch) gets the same mask; different samples differ. */
static void test_independent_of_row(void **state) {
    tensor *x3 = ones(3), *x4 = ones(4);
    float a[3 * N_PER], b[4 * N_PER];
    run_dropout(a, x3, (int64_t[]){5, 9, 2}, 42, 7, 0.4f);
    run_dropout(b, x4, (int64_t[]){1, 4, 7, 9}, 42, 7, 0.4f);
    assert_memory_equal(a + 1 * N_PER, b + 3 * N_PER, sizeof(float) * N_PER);
    assert_memory_not_equal(a + 0 * N_PER, a + 1 * N_PER, sizeof(float) * N_PER);
    tu_leaf_free(x3);
    tu_leaf_free(x4);
}

static void test_fraction_kept(void **state) {
    /* 64 samples of 300: 19200 draws, so the kept fraction has a standard
     * deviation of sqrt(p (1 - p) / 19200) <= 0.0036; allow 5 of them */
    tensor *x = tu_leaf(2, (int[]){64, N_PER}, false, 1, 3);
    int64_t ids[64];
    for (int i = 0; i < 64; i++)
        ids[i] = 1000 + 3 * i;
    float ps[3] = {0.1f, 0.5f, 0.9f};
    float *y = test_malloc(sizeof(float) * x->numel);
    for (int k = 0; k < 3; k++) {
        run_dropout(y, x, ids, 5, 0, ps[k]);
        int64_t kept = 0;
        float scale = 1.0f / (1.0f - ps[k]);
        for (int64_t i = 0; i < x->numel; i++) {
            if (y[i] != 0.0f) {
                kept++;
                assert_true(y[i] == x->data[i] * scale);
            }
        }
        double frac = (double)kept / (double)x->numel;
        if (fabs(frac - (1.0 - ps[k])) > 0.018)
            fail_msg("p = %g: kept %.4f of the elements, expected %.4f", ps[k], frac, 1.0 - ps[k]);
    }
    /* p = 1 drops everything, without NaN */
    run_dropout(y, x, ids, 5, 0, 1.0f);
    for (int64_t i = 0; i < x->numel; i++)
        assert_true(y[i] == 0.0f);
    test_free(y);
    tu_leaf_free(x);
}

static tensor *fwd_dropout(graph *g, tensor **in, void *user) {
    /* the same (seed, step, ids) before every forward: the same mask */
    graph_begin_step(g, 42, 7, (int64_t[]){5, 9, 2}, 3);
    graph_set_training(g, true);
    return op_dropout(g, in[0], *(float *)user);
}

static void test_grads(void **state) {
    tensor *x = tu_leaf(3, (int[]){3, 4, 25}, true, 1, 4);
    float p = 0.4f;
    tu_gradcheck("dropout", fwd_dropout, &p, 1, &x, H, ATOL, RTOL, 300);
    /* the gradient is the mask times the scale: zero exactly where dropped */
    graph *g = graph_create(1 << 16, 0);
    memset(x->grad, 0, sizeof(float) * x->numel);
    tensor *y = fwd_dropout(g, &x, &p);
    for (int64_t i = 0; i < y->numel; i++)
        y->grad[i] = 1.0f;
    graph_backward_tape(g);
    for (int64_t i = 0; i < y->numel; i++)
        assert_true(x->grad[i] == (y->data[i] == 0.0f ? 0.0f : 1.0f / (1.0f - p)));
    /* backward adds: a second replay doubles the gradient */
    graph_backward_tape(g);
    for (int64_t i = 0; i < y->numel; i++)
        assert_true(x->grad[i] == (y->data[i] == 0.0f ? 0.0f : 2.0f / (1.0f - p)));
    graph_free(g);
    tu_leaf_free(x);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identity),
        cmocka_unit_test(test_mask_contract),
        cmocka_unit_test(test_reproducible),
        cmocka_unit_test(test_independent_of_row),
        cmocka_unit_test(test_fraction_kept),
        cmocka_unit_test(test_grads),
        cmocka_unit_test(test_independent_of_length),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
