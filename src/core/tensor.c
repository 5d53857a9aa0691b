#include "core/tensor.h"

#include "core/check.h"

#include <stdio.h>

int64_t shape_numel(int ndim, const int *shape) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    return n;
}

int tensor_dim(const tensor *t, int i) {
    if (i < 0)
        i += t->ndim;
    HEED_ASSERT(i >= 0 && i < t->ndim);
    return t->shape[i];
}

int tensor_cols(const tensor *t) {
    return t->ndim ? t->shape[t->ndim - 1] : 1;
}

int64_t tensor_rows(const tensor *t) {
    int c = tensor_cols(t);
    return c ? t->numel / c : 0;
}

bool tensor_same_shape(const tensor *a, const tensor *b) {
    if (a->ndim != b->ndim)
        return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i])
            return false;
    return true;
}

const char *tensor_shape_str(const tensor *t, char *buf, int bufsize) {
    int n = snprintf(buf, bufsize, "[");
    for (int i = 0; i < t->ndim && n < bufsize; i++)
        n += snprintf(buf + n, bufsize - n, i ? ", %d" : "%d", t->shape[i]);
    if (n < bufsize)
        snprintf(buf + n, bufsize - n, "]");
    return buf;
}
