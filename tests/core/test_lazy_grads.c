/* Lazily zeroed activation gradients (graph_set_lazy_grads) give bit for bit
 * the gradients of eager mode, on a graph built to trip them: a tensor added
 * to itself, attention and a matrix product whose inputs are one tensor
 * (claims on a shared buffer), a tensor consumed both by ops that claim and
 * by ops that do not, views (reshape), an unused output, and dropout. Before
 * the compared step the arena is filled with NaN, and so is the gradient
 * pool before every backward, so an unwritten gradient that anything reads
 * shows up, as does one whose memory the pool gave away too early. */
#include "testutil.h"

#include "core/ops.h"
#include "core/ops_vision.h"

#include <math.h>
#include <string.h>

enum { B = 3, T = 5, C = 8, K = 4, N_LEAVES = 9 };

typedef struct net {
    tensor *x, *w1, *b1, *w2, *w3, *lnw, *lnb, *wo, *bo;
    tensor *labels;
} net;

static tensor *net_loss(graph *g, const net *n) {
    int64_t ids[B] = {4, 5, 6};
    graph_begin_step(g, 9, 2, ids, B);
    tensor *h = op_linear(g, n->x, n->w1, n->b1); /* (B, T, C) */
    tensor *hh = op_add(g, h, h);                 /* one tensor twice, no claims */
    tensor *q = op_gelu(g, hh, GELU_ERF);
    /* q, k and v are one tensor: every claim after the first accumulates */
    tensor *att = op_attention(g, q, q, q, NULL, 2, 0.2f, NULL);
    /* h again, through a claiming op, and a view of it */
    tensor *z = op_linear(g, graph_reshape(g, h, 2, (int[]){B * T, C}), n->w2, NULL);
    tensor *y = op_add(g, att, graph_reshape(g, z, 3, (int[]){B, T, C}));
    tensor *m = op_matmul(g, y, y, false, true); /* (B, T, T), a == b */
    tensor *parts[2];
    op_split(g, m, -1, 2, (int[]){3, 2}, parts); /* parts[1] is never used */
    tensor *p = op_dropout(g, op_tanh(g, parts[0]), 0.3f);
    tensor *l = op_layer_norm(g, p, n->lnw, n->lnb, 1e-5f);
    tensor *r = op_linear_gelu(g, l, n->w3, NULL, GELU_TANH); /* (B, T, C), claims l */
    tensor *pooled = op_masked_mean(g, op_add(g, r, y), NULL);
    return op_cross_entropy(g, op_linear(g, pooled, n->wo, n->bo), n->labels, 0.0f);
}

static void fill_arena_nan(graph *g) {
    arena *a = graph_arena(g);
    size_t bytes = arena_high_water(a);
    float *p = arena_alloc(a, bytes);
    for (size_t i = 0; i < bytes / sizeof(float); i++)
        p[i] = NAN;
    graph_reset(g);
}

typedef tensor *(*loss_fn)(graph *g, const void *net);

/* Runs two training steps' backward of loss(net) on a fresh graph; the
 * leaves' gradients of the second step (NaN-filled arena) land in grads[i]. */
static void run(loss_fn loss, const void *model, tensor *const *leaves, int n_leaves, bool lazy,
                float **grads, float *loss_value) {
    graph *g = graph_create(1 << 12, 0); /* small: the first step grows it */
    graph_set_training(g, true);
    graph_set_lazy_grads(g, lazy);
    graph_set_grad_poison(g, true); /* NaN in the gradient pool at every backward */
    for (int step = 0; step < 2; step++) {
        for (int i = 0; i < n_leaves; i++)
            memset(leaves[i]->grad, 0, sizeof(float) * leaves[i]->numel);
        graph_reset(g);
        if (step == 1)
            fill_arena_nan(g);
        tensor *l = loss(g, model);
        graph_backward(g, l, 1.0f);
        *loss_value = l->data[0];
    }
    for (int i = 0; i < n_leaves; i++)
        memcpy(grads[i], leaves[i]->grad, sizeof(float) * leaves[i]->numel);
    graph_free(g);
}

/* Lazy and eager runs give the same loss and the same gradient bits, and
 * every leaf gets a nonzero finite gradient; frees the leaves. */
static void assert_lazy_equals_eager(loss_fn loss, const void *model, tensor *const *leaves,
                                     int n_leaves) {
    float *eager[16], *lazy[16];
    assert_true(n_leaves <= 16);
    for (int i = 0; i < n_leaves; i++) {
        eager[i] = test_malloc(sizeof(float) * leaves[i]->numel);
        lazy[i] = test_malloc(sizeof(float) * leaves[i]->numel);
    }
    float loss_eager, loss_lazy;
    run(loss, model, leaves, n_leaves, false, eager, &loss_eager);
    run(loss, model, leaves, n_leaves, true, lazy, &loss_lazy);
    assert_true(isfinite(loss_eager));
    assert_memory_equal(&loss_eager, &loss_lazy, sizeof(float));
    for (int i = 0; i < n_leaves; i++) {
        double norm = 0;
        for (int64_t j = 0; j < leaves[i]->numel; j++)
            norm += fabs(eager[i][j]);
        if (!(norm > 0) || !isfinite(norm))
            fail_msg("leaf %d: gradient is zero or not finite (|g|_1 = %g)", i, norm);
        if (memcmp(eager[i], lazy[i], sizeof(float) * leaves[i]->numel) != 0)
            tu_assert_close("lazy vs eager", lazy[i], eager[i], leaves[i]->numel, 0, 0);
        assert_memory_equal(eager[i], lazy[i], sizeof(float) * leaves[i]->numel);
        test_free(eager[i]);
        test_free(lazy[i]);
        tu_leaf_free(leaves[i]);
    }
}

static tensor *net_loss_fn(graph *g, const void *n) {
    return net_loss(g, n);
}

static void test_lazy_equals_eager(void **state) {
    (void)state;
    net n = {
        .x = tu_leaf(3, (int[]){B, T, C}, true, 1, 1),
        .w1 = tu_leaf(2, (int[]){C, C}, true, 0.5f, 2),
        .b1 = tu_leaf(1, (int[]){C}, true, 0.5f, 3),
        .w2 = tu_leaf(2, (int[]){C, C}, true, 0.5f, 4),
        .w3 = tu_leaf(2, (int[]){C, 3}, true, 0.5f, 5),
        .lnw = tu_leaf(1, (int[]){3}, true, 1, 6),
        .lnb = tu_leaf(1, (int[]){3}, true, 1, 7),
        .wo = tu_leaf(2, (int[]){K, C}, true, 0.5f, 8),
        .bo = tu_leaf(1, (int[]){K}, true, 0.5f, 9),
        .labels = tu_leaf_i32(1, (int[]){B}, 0, K, 10),
    };
    tensor *const leaves[N_LEAVES] = {n.x, n.w1, n.b1, n.w2, n.w3, n.lnw, n.lnb, n.wo, n.bo};
    assert_lazy_equals_eager(net_loss_fn, &n, leaves, N_LEAVES);
    tu_leaf_free(n.labels);
}

/* Convolutions claim their input's gradient: the same-geometry path (the
 * flipped-kernel conv, here also a 7x7 kernel overhanging a 3x2 map), the
 * strided path (col2im), the 1x1 path, and an input consumed twice; batch
 * norm and add claim theirs too. */
typedef struct conv_net {
    tensor *x, *w_same, *w_wide, *w_stride, *w_1x1, *b_same, *bn_w, *bn_b, *labels;
    tensor *bn_mean, *bn_var;
} conv_net;

static tensor *conv_net_loss(graph *g, const void *p) {
    const conv_net *n = p;
    int64_t ids[2] = {1, 2};
    graph_begin_step(g, 3, 1, ids, 2);
    tensor *h = op_scale(g, n->x, 1.5f); /* an activation: its gradient is lazy */
    tensor *a = op_conv2d(g, h, n->w_same, n->b_same, (conv2d_geom){1, 1, 1, 1});
    tensor *an = op_batch_norm(g, a, n->bn_w, n->bn_b, n->bn_mean, n->bn_var, 0.1f, 1e-5f);
    tensor *b = op_conv2d(g, op_relu(g, an), n->w_wide, NULL, (conv2d_geom){1, 3, 1, 1});
    tensor *c = op_conv2d(g, op_add(g, an, b), n->w_stride, NULL, (conv2d_geom){2, 1, 1, 1});
    tensor *d = op_conv2d(g, c, n->w_1x1, NULL, (conv2d_geom){1, 0, 1, 1}); /* (2, 3, 2, 1) */
    tensor *e = op_conv2d(g, h, n->w_1x1, NULL, (conv2d_geom){2, 0, 1, 1}); /* h again */
    tensor *logits = graph_reshape(g, op_add(g, d, e), 2, (int[]){2, 6});
    return op_cross_entropy(g, logits, n->labels, 0.0f);
}

static void test_lazy_equals_eager_conv(void **state) {
    (void)state;
    conv_net n = {
        .x = tu_leaf(4, (int[]){2, 3, 3, 2}, true, 1, 21),
        .w_same = tu_leaf(4, (int[]){3, 3, 3, 3}, true, 0.5f, 22),
        .w_wide = tu_leaf(4, (int[]){3, 3, 7, 7}, true, 0.5f, 23),
        .w_stride = tu_leaf(4, (int[]){3, 3, 3, 3}, true, 0.5f, 24),
        .w_1x1 = tu_leaf(4, (int[]){3, 3, 1, 1}, true, 0.5f, 25),
        .b_same = tu_leaf(1, (int[]){3}, true, 0.5f, 26),
        .bn_w = tu_leaf(1, (int[]){3}, true, 1, 28),
        .bn_b = tu_leaf(1, (int[]){3}, true, 1, 29),
        .labels = tu_leaf_i32(1, (int[]){2}, 0, 6, 27),
        .bn_mean = tu_leaf(1, (int[]){3}, false, 0, 30),
        .bn_var = tu_leaf(1, (int[]){3}, false, 1, 31),
    };
    tensor *const leaves[8] = {n.x,     n.w_same, n.w_wide, n.w_stride,
                               n.w_1x1, n.b_same, n.bn_w,   n.bn_b};
    assert_lazy_equals_eager(conv_net_loss, &n, leaves, 8);
    tu_leaf_free(n.labels);
    tu_leaf_free(n.bn_mean);
    tu_leaf_free(n.bn_var);
}

/* The gradient of an output nothing consumed counts as zeros: what flows
 * from it into the input is zero, even with NaN in the pool. */
static void test_lazy_unused_output_is_zero(void **state) {
    tensor *x = tu_leaf(2, (int[]){4, 6}, true, 1, 11);
    tensor *labels = tu_leaf_i32(1, (int[]){4}, 0, 3, 12);
    graph *g = graph_create(1 << 12, 0);
    graph_set_lazy_grads(g, true);
    graph_set_grad_poison(g, true);
    for (int step = 0; step < 2; step++) {
        graph_reset(g);
        if (step == 1)
            fill_arena_nan(g);
        tensor *parts[2];
        op_split(g, x, -1, 2, (int[]){3, 3}, parts);
        tensor *loss = op_cross_entropy(g, parts[0], labels, 0.0f);
        graph_backward(g, loss, 1.0f);
        for (int r = 0; r < 4; r++)
            for (int c = 3; c < 6; c++)
                assert_true(x->grad[r * 6 + c] == 0.0f);
    }
    graph_free(g);
    tu_leaf_free(x);
    tu_leaf_free(labels);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lazy_equals_eager),
        cmocka_unit_test(test_lazy_equals_eager_conv),
        cmocka_unit_test(test_lazy_unused_output_is_zero),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
