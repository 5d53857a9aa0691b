/* patchify and prepend_token: layout against a direct index formula, and
 * finite differences (exact linear maps: atol 1e-3, rtol 1e-3). */
#include "testutil.h"

#include "core/ops.h"

static void test_patchify_layout(void **state) {
    int B = 2, C = 2, H = 4, W = 6, P = 2;
    tensor *img = tu_leaf(4, (int[]){B, C, H, W}, false, 1, 3);
    graph *g = graph_create(1 << 16, 0);
    tensor *out = op_patchify(g, img, P);
    int GW = W / P, NP = (H / P) * GW, D = C * P * P;
    assert_int_equal(out->shape[1], NP);
    assert_int_equal(out->shape[2], D);
    for (int b = 0; b < B; b++)
        for (int n = 0; n < NP; n++)
            for (int c = 0; c < C; c++)
                for (int py = 0; py < P; py++)
                    for (int px = 0; px < P; px++) {
                        int y = (n / GW) * P + py, x = (n % GW) * P + px;
                        float want = img->data[((b * C + c) * H + y) * W + x];
                        float got = out->data[(b * NP + n) * D + (c * P + py) * P + px];
                        assert_true(got == want);
                    }
    graph_free(g);
    tu_leaf_free(img);
}

static tensor *fwd_patchify(graph *g, tensor **in, void *user) {
    return op_patchify(g, in[0], 2);
}

static tensor *fwd_prepend(graph *g, tensor **in, void *user) {
    return op_prepend_token(g, in[0], in[1]);
}

static void test_patch_grads(void **state) {
    tensor *img = tu_leaf(4, (int[]){2, 3, 4, 4}, true, 1, 4);
    tu_gradcheck("patchify", fwd_patchify, NULL, 1, &img, 1e-2f, 1e-3f, 1e-3f, 200);
    tensor *in[2] = {tu_leaf(3, (int[]){3, 4, 5}, true, 1, 5), tu_leaf(1, (int[]){5}, true, 1, 6)};
    tu_gradcheck("prepend_token", fwd_prepend, NULL, 2, in, 1e-2f, 1e-3f, 1e-3f, 200);
    tu_leaf_free(img);
    tu_leaf_free(in[0]);
    tu_leaf_free(in[1]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_patchify_layout),
        cmocka_unit_test(test_patch_grads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
