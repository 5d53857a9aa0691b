#include "dist/comm.h"

#include <string.h>

#include "dist/check_dist.h"

void comm_init(comm *c, MPI_Comm parent) {
    HEED_ASSERT(c != NULL);
    memset(c, 0, sizeof *c);
    HEED_MPI_CHECK(MPI_Comm_dup(parent, &c->mpi));
    HEED_MPI_CHECK(MPI_Comm_rank(c->mpi, &c->rank));
    HEED_MPI_CHECK(MPI_Comm_size(c->mpi, &c->size));

    /* Key = world rank keeps local ranks in world order, so local rank 0 is
     * the node's lowest world rank. */
    HEED_MPI_CHECK(
        MPI_Comm_split_type(c->mpi, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &c->node));
    HEED_MPI_CHECK(MPI_Comm_rank(c->node, &c->local_rank));
    HEED_MPI_CHECK(MPI_Comm_size(c->node, &c->local_size));

    /* Each node's leader counts 1. An exclusive scan over world ranks numbers
     * the leaders in the order of their (lowest) world rank; the leader then
     * tells its node. MPI_Exscan leaves rank 0's result undefined: it is 0. */
    int leader = c->local_rank == 0 ? 1 : 0;
    int before = 0;
    HEED_MPI_CHECK(MPI_Exscan(&leader, &before, 1, MPI_INT, MPI_SUM, c->mpi));
    if (c->rank == 0)
        before = 0;
    c->node_index = before;
    HEED_MPI_CHECK(MPI_Bcast(&c->node_index, 1, MPI_INT, 0, c->node));
    HEED_MPI_CHECK(MPI_Allreduce(&leader, &c->num_nodes, 1, MPI_INT, MPI_SUM, c->mpi));
}

/* A handle comm_free must release: not MPI_COMM_NULL, and not the all-zero
 * bits of a `comm` that was memset but never initialised (no MPI uses 0 for
 * a live communicator). */
static int comm_is_live(MPI_Comm m) {
    return m != MPI_COMM_NULL && m != (MPI_Comm)0;
}

void comm_free(comm *c) {
    if (!c)
        return;
    if (comm_is_live(c->node))
        HEED_MPI_CHECK(MPI_Comm_free(&c->node));
    if (comm_is_live(c->mpi))
        HEED_MPI_CHECK(MPI_Comm_free(&c->mpi));
    c->node = MPI_COMM_NULL;
    c->mpi = MPI_COMM_NULL;
}
