#include "dist/batch_sum.h"

#include "core/check.h"
#include "dist/check_dist.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void batch_sum_init(batch_sum *bs, const comm *c) {
    memset(bs, 0, sizeof *bs);
    HEED_MPI_CHECK(MPI_Comm_dup(c->mpi, &bs->mpi));
    bs->size = c->size;
}

void batch_sum_free(batch_sum *bs) {
    if (bs->mpi != MPI_COMM_NULL && bs->size > 0)
        HEED_MPI_CHECK(MPI_Comm_free(&bs->mpi));
    free(bs->all);
    memset(bs, 0, sizeof *bs);
    bs->mpi = MPI_COMM_NULL;
}

void batch_sum_fn(void *ctx, double *v, int n) {
    batch_sum *bs = ctx;
    if (bs->size == 1 || n == 0)
        return;
    if (n > bs->cap) {
        /* Grows only in the first step: the layers' channel counts are fixed. */
        HEED_ASSERT(n <= INT32_MAX / bs->size);
        free(bs->all);
        bs->all = xmalloc(sizeof(double) * (size_t)n * (size_t)bs->size);
        bs->cap = n;
    }
    HEED_MPI_CHECK(MPI_Allgather(v, n, MPI_DOUBLE, bs->all, n, MPI_DOUBLE, bs->mpi));
    for (int i = 0; i < n; i++) {
        double s = 0.0;
        for (int r = 0; r < bs->size; r++)
            s += bs->all[(size_t)r * (size_t)n + (size_t)i];
        v[i] = s;
    }
}
