/* Padding masks: valid flags from ids, and the additive mask from flags.
 * Exact values; neither op has a gradient. */
#include "testutil.h"

#include <math.h>
#include <string.h>

#include "core/ops.h"

static void test_valid_from_ids(void **state) {
    tensor *ids = tu_leaf_i32(2, (int[]){2, 4}, 0, 1, 1);
    memcpy(ids->idata, (int32_t[]){5, 0, 3, 0, 0, 0, 0, 0}, sizeof(int32_t) * 8);
    graph *g = graph_create(1 << 16, 0);
    tensor *valid = valid_from_ids(g, ids, 0);
    assert_int_equal(valid->dtype, DTYPE_I32);
    assert_true(tensor_same_shape(valid, ids));
    assert_null(valid->grad);
    assert_memory_equal(valid->idata, ((int32_t[]){1, 0, 1, 0, 0, 0, 0, 0}), sizeof(int32_t) * 8);
    /* a pad id other than 0 (e.g. BERT's vocabularies put [PAD] elsewhere) */
    valid = valid_from_ids(g, ids, 3);
    assert_memory_equal(valid->idata, ((int32_t[]){1, 1, 0, 1, 1, 1, 1, 1}), sizeof(int32_t) * 8);
    assert_int_equal(graph_tape_length(g), 0);
    graph_free(g);
    tu_leaf_free(ids);
}

static void test_mask_from_valid(void **state) {
    tensor *valid = tu_leaf_i32(2, (int[]){2, 3}, 0, 1, 1);
    memcpy(valid->idata, (int32_t[]){1, 0, 2, 0, 0, 1}, sizeof(int32_t) * 6);
    graph *g = graph_create(1 << 16, 0);
    tensor *mask = mask_from_valid(g, valid);
    assert_int_equal(mask->dtype, DTYPE_F32);
    assert_true(tensor_same_shape(mask, valid));
    assert_null(mask->grad);
    for (int i = 0; i < 6; i++) {
        if (valid->idata[i])
            assert_true(mask->data[i] == 0.0f);
        else
            assert_true(isinf(mask->data[i]) && mask->data[i] < 0);
    }
    assert_int_equal(graph_tape_length(g), 0);
    graph_free(g);
    tu_leaf_free(valid);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_from_ids),
        cmocka_unit_test(test_mask_from_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
