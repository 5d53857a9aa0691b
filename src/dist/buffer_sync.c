/*
 * buffer_sync.c - mean of the model's buffers over ranks, in rank order.
 */
#include "dist/buffer_sync.h"

#include "dist/check_dist.h"

#include <stdlib.h>
#include <string.h>

void buffer_sync_init(buffer_sync *s, const comm *c, const params *ps) {
    memset(s, 0, sizeof *s);
    s->comm = c;
    s->n = params_buffer_numel(ps);
    if (s->n == 0 || c->size == 1)
        return;
    s->mine = xmalloc(sizeof(float) * (size_t)s->n);
    s->all = xmalloc(sizeof(float) * (size_t)s->n * (size_t)c->size);
}

void buffer_sync_free(buffer_sync *s) {
    free(s->mine);
    free(s->all);
    memset(s, 0, sizeof *s);
}

void buffer_sync_average(buffer_sync *s, params *ps) {
    if (!s->mine)
        return;
    HEED_ASSERT(params_buffer_numel(ps) == s->n && s->n <= INT32_MAX / s->comm->size);
    int64_t k = 0;
    for (int i = 0; i < ps->count; i++)
        if (ps->buffer[i]) {
            memcpy(s->mine + k, ps->tensors[i]->data, sizeof(float) * ps->tensors[i]->numel);
            k += ps->tensors[i]->numel;
        }
    HEED_MPI_CHECK(
        MPI_Allgather(s->mine, (int)s->n, MPI_FLOAT, s->all, (int)s->n, MPI_FLOAT, s->comm->mpi));
    int p = s->comm->size;
    k = 0;
    for (int i = 0; i < ps->count; i++) {
        if (!ps->buffer[i])
            continue;
        float *d = ps->tensors[i]->data;
        for (int64_t j = 0; j < ps->tensors[i]->numel; j++, k++) {
            double sum = 0.0;
            for (int r = 0; r < p; r++)
                sum += s->all[(int64_t)r * s->n + k];
            d[j] = (float)(sum / p);
        }
    }
}
