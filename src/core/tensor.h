/*
 * tensor.h - the one tensor type of heed.
 *
 * Shapes use one vocabulary across the tree: B batch, T tokens (time),
 * C channels/width, NH heads, HS head size (C / NH), H/W height/width,
 * V vocabulary, K classes, OC output channels.
 *
 * A tensor is a header over memory it does not own: parameters point into
 * the parameter buffer (params.h), activations into the step's arena
 * (graph.h). Row-major, up to 4 dimensions. float32 tensors use `data`,
 * int32 tensors (token ids, labels) use `idata`.
 *
 * `grad` is non-NULL exactly when a gradient flows into the tensor. Gradient
 * convention (all of heed): backward kernels ADD into grad (+=), never
 * overwrite. The owner zeroes gradients once per step (params_zero_grad for
 * parameters; activation grads are born zeroed in the arena), so gradients of
 * several micro-batches, or of a tensor used twice, simply accumulate.
 *
 * One exception, for speed, and only for activations of a graph in lazy mode
 * (graph_set_lazy_grads): their grad is born unwritten (`gstate` says so)
 * and the first backward to write it may overwrite (=) instead of zeroing
 * and adding; graph.h says who may and how.
 */
#ifndef HEED_CORE_TENSOR_H
#define HEED_CORE_TENSOR_H

#include <stdbool.h>
#include <stdint.h>

enum { TENSOR_MAX_DIMS = 4 };

typedef enum dtype { DTYPE_F32, DTYPE_I32 } dtype;

typedef struct tensor {
    float *data;    /* DTYPE_F32 values, or NULL */
    int32_t *idata; /* DTYPE_I32 values, or NULL */
    float *grad;    /* dLoss/d(data), same layout; NULL when no gradient flows */
    int ndim;
    int shape[TENSOR_MAX_DIMS];
    int64_t numel;
    dtype dtype;
    int param;        /* index in its params set, or -1 for activations */
    const char *name; /* parameters: full dotted name; activations: NULL */
    /* Lazily zeroed gradient (graph.h), shared by views of one buffer; NULL
     * when grad always holds valid values (parameters, leaves, eager mode). */
    struct grad_state *gstate;
} tensor;

/* Product of the first `ndim` entries of `shape` (1 for ndim == 0). */
int64_t shape_numel(int ndim, const int *shape);

/* Size of dimension i; negative i counts from the end. */
int tensor_dim(const tensor *t, int i);
/* Last dimension, and the product of all the others: the (rows, cols) view
 * that every "along the last dimension" op uses. */
int tensor_cols(const tensor *t);
int64_t tensor_rows(const tensor *t);

bool tensor_same_shape(const tensor *a, const tensor *b);

/* "[2, 3, 4]" into buf; returns buf. */
const char *tensor_shape_str(const tensor *t, char *buf, int bufsize);

#endif
