/*
 * testutil.h - what the cmocka tests share: leaf tensors, finite-difference
 * gradient checks, closeness asserts that print the largest difference, and
 * HDF5 fixture reading.
 */
#ifndef HEED_TESTS_TESTUTIL_H
#define HEED_TESTS_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/graph.h"
#include "core/tensor.h"

/* A tensor that lives outside any graph (malloc'd data and, if with_grad,
 * zeroed grad), filled with uniform values in [-scale, scale] from `seed`.
 * Free with tu_leaf_free. */
tensor *tu_leaf(int ndim, const int *shape, bool with_grad, float scale, uint64_t seed);
tensor *tu_leaf_i32(int ndim, const int *shape, int lo, int hi, uint64_t seed); /* [lo, hi) */
void tu_leaf_free(tensor *t);

/* Builds the op's output from the inputs on g. */
typedef tensor *(*tu_forward_fn)(graph *g, tensor **inputs, void *user);

/* Checks d(sum(out * R))/d(input) for every float input with a grad, R a
 * fixed random tensor, against central differences with step h. Fails the
 * test (printing op name, input, element and both values) when
 *     |analytic - numeric| > atol + rtol * |numeric|
 * for any element. Checks at most max_elems elements of each input (spread
 * evenly). */
void tu_gradcheck(const char *op_name, tu_forward_fn fn, void *user, int n_inputs, tensor **inputs,
                  float h, float atol, float rtol, int max_elems);

/* Fails when any |got - want| > atol + rtol * |want|; prints the largest
 * difference and where it is either way. */
void tu_assert_close(const char *what, const float *got, const float *want, int64_t n, float atol,
                     float rtol);

/* Reads float dataset `name` of the HDF5 file at `path` (malloc'd; the
 * element count into *n, the shape into shape[0..*ndim)). Fails the test when
 * absent. */
float *tu_h5_read_f32(const char *path, const char *name, int64_t *n, int *ndim, int *shape);
int32_t *tu_h5_read_i32(const char *path, const char *name, int64_t *n, int *ndim, int *shape);
/* A scalar attribute of the file's root group, or `fallback`. */
double tu_h5_attr(const char *path, const char *name, double fallback);

/* Path of a fixture under tests/fixtures (tests run from the source root). */
const char *tu_fixture(const char *file);

#endif
