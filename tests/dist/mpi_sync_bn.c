/* Synchronised batch norm (dist/batch_sum.h on the graph): with a global
 * batch of 5 samples split unevenly over the ranks (at 4 ranks one holds
 * none), each rank's output and input gradient rows, the parameter
 * gradients summed over the ranks, and the running statistics all match
 * batch norm over the whole batch on one process; the running statistics
 * are bitwise the same on every rank. At 1 rank it is the plain op. */
#include "mpi_check.h"

#include "core/graph.h"
#include "core/ops_vision.h"
#include "core/rng.h"
#include "dist/batch_sum.h"
#include "dist/comm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { NB = 5, C = 3, H = 4, W = 5, PLANE = C * H * W };

static tensor *leaf(int ndim, const int *shape, bool grad) {
    tensor *t = calloc(1, sizeof *t);
    t->ndim = ndim;
    t->numel = 1;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = shape[i];
        t->numel *= shape[i];
    }
    t->dtype = DTYPE_F32;
    t->param = -1;
    t->data = calloc((size_t)t->numel + 1, sizeof(float));
    if (grad)
        t->grad = calloc((size_t)t->numel + 1, sizeof(float));
    return t;
}

static void leaf_free(tensor *t) {
    free(t->data);
    free(t->grad);
    free(t);
}

typedef struct bn_run {
    tensor *x, *w, *b, *rm, *rv, *out;
} bn_run;

/* Batch norm over samples [lo, hi) of the global batch, one training step
 * from running statistics (0, 1), d(out) fixed by the global sample. */
static void run_part(bn_run *r, int lo, int hi, batch_sum *bs) {
    int nb = hi - lo;
    r->x = leaf(4, (int[]){nb, C, H, W}, true);
    r->w = leaf(1, (int[]){C}, true);
    r->b = leaf(1, (int[]){C}, true);
    r->rm = leaf(1, (int[]){C}, false);
    r->rv = leaf(1, (int[]){C}, false);
    uint64_t key = rng_key(11, 0, 0);
    for (int i = 0; i < nb * PLANE; i++)
        r->x->data[i] = 3.0f * rng_normal(key, (uint64_t)lo * PLANE + i) + 1.5f;
    for (int c = 0; c < C; c++) {
        r->w->data[c] = 1.0f + 0.25f * c;
        r->b->data[c] = 0.1f * c;
        r->rv->data[c] = 1.0f;
    }
    graph *g = graph_create(1 << 16, 0);
    graph_set_training(g, true);
    if (bs)
        graph_set_batch_sum(g, batch_sum_fn, bs);
    tensor *out = op_batch_norm(g, r->x, r->w, r->b, r->rm, r->rv, 0.1f, 1e-5f);
    for (int i = 0; i < nb * PLANE; i++)
        out->grad[i] = rng_normal(rng_key(12, 0, 0), (uint64_t)lo * PLANE + i);
    graph_backward_tape(g);
    r->out = leaf(4, (int[]){nb, C, H, W}, false);
    memcpy(r->out->data, out->data, sizeof(float) * nb * PLANE);
    graph_free(g);
}

static void run_free(bn_run *r) {
    leaf_free(r->x);
    leaf_free(r->w);
    leaf_free(r->b);
    leaf_free(r->rm);
    leaf_free(r->rv);
    leaf_free(r->out);
}

static void check_close(const char *what, const float *got, const float *want, int n) {
    for (int i = 0; i < n; i++)
        CHECK(fabsf(got[i] - want[i]) <= 2e-5f + 2e-5f * fabsf(want[i]),
              "%s[%d]: %.9g against %.9g over the whole batch", what, i, got[i], want[i]);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    comm c;
    comm_init(&c, MPI_COMM_WORLD);
    batch_sum bs;
    batch_sum_init(&bs, &c);
    /* uneven parts: the last rank takes what is left, at 4 ranks just 1 */
    int per = (NB + c.size - 1) / c.size;
    int lo = c.rank * per < NB ? c.rank * per : NB;
    int hi = lo + per < NB ? lo + per : NB;
    if (c.rank == c.size - 1)
        hi = NB;
    bn_run part, whole;
    run_part(&part, lo, hi, &bs);
    run_part(&whole, 0, NB, NULL);

    check_close("out", part.out->data, whole.out->data + (size_t)lo * PLANE, (hi - lo) * PLANE);
    check_close("dx", part.x->grad, whole.x->grad + (size_t)lo * PLANE, (hi - lo) * PLANE);
    float dw[C], db[C];
    CHECK(MPI_Allreduce(part.w->grad, dw, C, MPI_FLOAT, MPI_SUM, c.mpi) == MPI_SUCCESS, "dw");
    CHECK(MPI_Allreduce(part.b->grad, db, C, MPI_FLOAT, MPI_SUM, c.mpi) == MPI_SUCCESS, "db");
    check_close("dw", dw, whole.w->grad, C);
    check_close("db", db, whole.b->grad, C);
    check_close("running_mean", part.rm->data, whole.rm->data, C);
    check_close("running_var", part.rv->data, whole.rv->data, C);

    float stats[2 * C], root[2 * C];
    memcpy(stats, part.rm->data, sizeof(float) * C);
    memcpy(stats + C, part.rv->data, sizeof(float) * C);
    memcpy(root, stats, sizeof stats);
    CHECK(MPI_Bcast(root, 2 * C, MPI_FLOAT, 0, c.mpi) == MPI_SUCCESS, "bcast");
    CHECK(memcmp(root, stats, sizeof stats) == 0, "running statistics differ from rank 0's");

    run_free(&part);
    run_free(&whole);
    batch_sum_free(&bs);
    comm_free(&c);
    MPI_Finalize();
    return 0;
}
