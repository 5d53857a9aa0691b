/*
 * comm.h - the MPI world a heed run lives in.
 *
 * A `comm` owns a private duplicate of the communicator it was made from, so
 * heed's messages never match anyone else's (a test harness, a library, a
 * second heed context in the same process), and records where this rank sits:
 * its rank and the world size, its rank among the ranks of its node and how
 * many share the node (for the default thread count: cores of the node divided
 * by the ranks on it), and how many nodes the job spans.
 *
 *   comm c;
 *   comm_init(&c, MPI_COMM_WORLD);   // every rank
 *   ... ring_init(&r, &c, ...) ...
 *   comm_free(&c);                   // every rank
 *
 * There is no global state: two `comm`s can live in one process.
 */
#ifndef HEED_DIST_COMM_H
#define HEED_DIST_COMM_H

#include <mpi.h>

typedef struct comm {
    MPI_Comm mpi;   /* private duplicate of the parent; owned, freed by comm_free */
    MPI_Comm node;  /* the ranks sharing this node's memory (MPI_COMM_TYPE_SHARED); owned */
    int rank;       /* 0..size-1 in `mpi` (same as in the parent) */
    int size;       /* ranks in `mpi` */
    int local_rank; /* 0..local_size-1 among the ranks of this node */
    int local_size; /* ranks on this node */
    int node_index; /* 0..num_nodes-1; nodes numbered by their lowest rank */
    int num_nodes;  /* nodes the job spans (1 on a laptop) */
} comm;

/* Fills `c` from `parent`: duplicates it, splits the duplicate by shared
 * memory, and counts the nodes. `c` is caller-owned storage; the
 * communicators it holds are owned by `c` until comm_free. `parent` is not
 * kept and may be freed afterwards. Aborts the job (MPI_Abort) on any MPI
 * failure. Collective: every rank of `parent` must call this. */
void comm_init(comm *c, MPI_Comm parent);

/* Frees the communicators of `c` and sets them to MPI_COMM_NULL; NULL, or a
 * `comm` already freed or zeroed, is a no-op. A ring made from `c` holds its
 * own communicator and may be freed before or after. Collective: every rank
 * of `c` must call this. */
void comm_free(comm *c);

#endif
