/*
 * mpi_check.h - the assertion of the MPI test programs: on failure it prints
 * the rank, the place and a message, then MPI_Abort, so no rank is left
 * waiting in a collective and mpirun exits non-zero.
 */
#ifndef HEED_TESTS_MPI_CHECK_H
#define HEED_TESTS_MPI_CHECK_H

#include <mpi.h>
#include <stdio.h>

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            int r_;                                                                                \
            MPI_Comm_rank(MPI_COMM_WORLD, &r_);                                                    \
            fprintf(stderr, "rank %d: %s:%d: check failed: %s: ", r_, __FILE__, __LINE__, #cond);  \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            MPI_Abort(MPI_COMM_WORLD, 1);                                                          \
        }                                                                                          \
    } while (0)

#endif
