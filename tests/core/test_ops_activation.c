/* ReLU, GELU (erf and tanh forms), tanh and sigmoid: values against the
 * double-precision formulas PyTorch implements (gelu approximate='none' and
 * 'tanh'), saturation at extreme inputs, and finite-difference gradients.
 *
 * Gradient tolerance: central differences with h = 1e-2 on inputs in
 * [-4, 4]; the truncation error h^2/6 |f'''| stays below 1e-4 for these
 * smooth functions, the output rounding below 5e-5: atol 5e-4 + rtol 5e-3.
 * ReLU inputs are kept 0.05 away from its kink, so h cannot cross it. */
#include "testutil.h"

#include "core/ops.h"

#include <math.h>
#include <string.h>

#define H 1e-2f
#define ATOL 5e-4f
#define RTOL 5e-3f

typedef tensor *(*unary_fn)(graph *, tensor *);

static tensor *gelu_erf(graph *g, tensor *x) {
    return op_gelu(g, x, GELU_ERF);
}
static tensor *gelu_tanh(graph *g, tensor *x) {
    return op_gelu(g, x, GELU_TANH);
}

static tensor *fwd_unary(graph *g, tensor **in, void *user) {
    return ((unary_fn)user)(g, in[0]);
}

static double ref_gelu_erf(double x) {
    return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
}
static double ref_gelu_tanh(double x) {
    return 0.5 * x *
           (1.0 + tanh(0.79788456080286535588 /* sqrt(2 / pi) */ * (x + 0.044715 * x * x * x)));
}
static double ref_sigmoid(double x) {
    return 1.0 / (1.0 + exp(-x));
}

typedef struct act_case {
    const char *name;
    unary_fn fn;
    double (*ref)(double);
    /* relative: |got - ref| <= tol |ref|, about 2 ulp (tanh and sigmoid,
     * which PyTorch computes to full relative precision, also near 0).
     * Otherwise |got - ref| <= tol max(1, |x|): GELU's 1 + erf cancels for
     * x << 0 in float, in PyTorch too, so tiny results have no relative
     * precision to test. */
    bool relative;
    double tol;
} act_case;

static const act_case cases[] = {
    {"gelu_erf", gelu_erf, ref_gelu_erf, false, 4e-7},
    {"gelu_tanh", gelu_tanh, ref_gelu_tanh, false, 4e-7},
    {"tanh", op_tanh, tanh, true, 2.5e-7},
    {"sigmoid", op_sigmoid, ref_sigmoid, true, 2.5e-7},
};
enum { N_CASES = sizeof cases / sizeof cases[0] };

static void test_values_dense(void **state) {
    int n = 16001; /* [-8, 8] in steps of 1e-3 */
    tensor *x = tu_leaf(1, (int[]){n}, false, 1, 1);
    for (int i = 0; i < n; i++)
        x->data[i] = -8.0f + 1e-3f * (float)i;
    graph *g = graph_create(1 << 18, 0);
    for (int k = 0; k < N_CASES; k++) {
        tensor *y = cases[k].fn(g, x);
        double worst = 0;
        int at = 0;
        for (int i = 0; i < n; i++) {
            double v = x->data[i];
            double ref = cases[k].ref(v);
            double err =
                fabs(y->data[i] - ref) / (cases[k].relative ? fabs(ref) : fmax(1.0, fabs(v)));
            if (err > worst) {
                worst = err;
                at = i;
            }
        }
        if (worst > cases[k].tol)
            fail_msg("%s: error %.3g at x = %g exceeds %.3g", cases[k].name, worst, x->data[at],
                     cases[k].tol);
    }
    graph_free(g);
    tu_leaf_free(x);
}

static void test_known_values(void **state) {
    tensor *x = tu_leaf(1, (int[]){5}, false, 1, 1);
    memcpy(x->data, (float[]){-1.0f, 0.0f, 0.5f, 1.0f, 2.0f}, sizeof(float) * 5);
    graph *g = graph_create(1 << 14, 0);
    /* the formulas of torch.nn.functional, evaluated in double */
    tu_assert_close("relu", op_relu(g, x)->data, (float[]){0, 0, 0.5f, 1, 2}, 5, 0, 0);
    tu_assert_close("gelu_erf", op_gelu(g, x, GELU_ERF)->data,
                    (float[]){-0.158655254f, 0, 0.345731231f, 0.841344746f, 1.95449974f}, 5, 1e-7f,
                    2e-7f);
    tu_assert_close("gelu_tanh", op_gelu(g, x, GELU_TANH)->data,
                    (float[]){-0.158808009f, 0, 0.34571401f, 0.841191991f, 1.95459769f}, 5, 1e-7f,
                    2e-7f);
    tu_assert_close("tanh", op_tanh(g, x)->data,
                    (float[]){-0.761594156f, 0, 0.462117157f, 0.761594156f, 0.96402758f}, 5, 0,
                    2e-7f);
    tu_assert_close("sigmoid", op_sigmoid(g, x)->data,
                    (float[]){0.268941421f, 0.5f, 0.622459331f, 0.731058579f, 0.880797078f}, 5, 0,
                    2e-7f);
    graph_free(g);
    tu_leaf_free(x);
}

/* Far outside the fitted ranges: saturated values, finite derivatives. */
static void test_extremes(void **state) {
    float xs[6] = {-1e4f, -100.0f, -30.0f, 30.0f, 100.0f, 1e4f};
    tensor *x = tu_leaf(1, (int[]){6}, true, 1, 1);
    memcpy(x->data, xs, sizeof xs);
    for (int k = 0; k < N_CASES; k++) {
        graph *g = graph_create(1 << 14, 0);
        memset(x->grad, 0, sizeof xs);
        tensor *y = cases[k].fn(g, x);
        for (int i = 0; i < 6; i++)
            y->grad[i] = 1.0f;
        graph_backward_tape(g);
        for (int i = 0; i < 6; i++) {
            assert_true(isfinite(y->data[i]) && isfinite(x->grad[i]));
            float v = y->data[i], d = x->grad[i];
            bool pos = xs[i] > 0;
            if (cases[k].ref == tanh) {
                assert_true(v == (pos ? 1.0f : -1.0f) && d == 0.0f);
            } else if (cases[k].ref == ref_sigmoid) {
                assert_true(pos ? v == 1.0f : (v >= 0.0f && v < 1e-12f));
                assert_true(d >= 0.0f && d < 1e-12f);
            } else { /* gelu: x above, 0 below */
                assert_true(pos ? v == xs[i] : fabsf(v) < 1e-12f);
                assert_true(pos ? d == 1.0f : fabsf(d) < 1e-12f);
            }
        }
        graph_free(g);
    }
    tu_leaf_free(x);
}

static void test_relu_kink(void **state) {
    /* PyTorch's relu passes no gradient at exactly 0 */
    tensor *x = tu_leaf(1, (int[]){3}, true, 1, 1);
    memcpy(x->data, (float[]){-0.5f, 0.0f, 0.5f}, sizeof(float) * 3);
    graph *g = graph_create(1 << 14, 0);
    tensor *y = op_relu(g, x);
    for (int i = 0; i < 3; i++)
        y->grad[i] = 3.0f;
    graph_backward_tape(g);
    tu_assert_close("relu grad", x->grad, (float[]){0, 0, 3}, 3, 0, 0);
    graph_free(g);
    tu_leaf_free(x);
}

static void test_grads(void **state) {
    /* 3 x 37 values in [-4, 4]: both branches of tanh (|x| < 0.625 and
     * above), and a vector loop tail */
    tensor *x = tu_leaf(2, (int[]){3, 37}, true, 4, 11);
    for (int k = 0; k < N_CASES; k++)
        tu_gradcheck(cases[k].name, fwd_unary, (void *)cases[k].fn, 1, &x, H, ATOL, RTOL, 200);
    /* ReLU: no input within h of the kink */
    for (int64_t i = 0; i < x->numel; i++)
        if (fabsf(x->data[i]) < 0.05f)
            x->data[i] = x->data[i] < 0.0f ? -0.05f : 0.05f;
    tu_gradcheck("relu", fwd_unary, (void *)op_relu, 1, &x, H, ATOL, RTOL, 200);
    /* around 0 and the tanh branch point */
    tensor *s = tu_leaf(1, (int[]){41}, true, 0.8f, 12);
    for (int k = 0; k < N_CASES; k++)
        tu_gradcheck(cases[k].name, fwd_unary, (void *)cases[k].fn, 1, &s, H, ATOL, RTOL, 200);
    tu_leaf_free(x);
    tu_leaf_free(s);
}

static void test_no_grad(void **state) {
    tensor *x = tu_leaf(1, (int[]){4}, false, 1, 1);
    graph *g = graph_create(1 << 14, 0);
    for (int k = 0; k < N_CASES; k++)
        assert_null(cases[k].fn(g, x)->grad);
    assert_int_equal(graph_tape_length(g), 0);
    graph_free(g);
    tu_leaf_free(x);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_dense), cmocka_unit_test(test_known_values),
        cmocka_unit_test(test_extremes),     cmocka_unit_test(test_relu_kink),
        cmocka_unit_test(test_grads),        cmocka_unit_test(test_no_grad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
