/*
 * check_dist.h - checked calls into MPI and HDF5.
 *
 * HEED_MPI_CHECK(call): on failure prints the call site, the call and MPI's
 * error string, then MPI_Abort(MPI_COMM_WORLD, HEED_EXIT_INTERNAL) so that no
 * rank is left waiting in a collective.
 *
 * HEED_H5_CHECK(call, what): HDF5 calls return a negative value on failure;
 * `what` names the file or dataset for the message. It aborts the same way.
 * Validation of user files does NOT use this macro: it reports the problem
 * as bad input (see dataset.h); this is for failures that should not happen.
 *
 * HEED_PTHREAD_CHECK(call): pthread calls return an error number; a
 * non-zero one dies with the call and strerror (HEED_EXIT_INTERNAL).
 */
#ifndef HEED_DIST_CHECK_DIST_H
#define HEED_DIST_CHECK_DIST_H

#include <mpi.h>
#include <string.h>

#include "core/check.h"

_Noreturn void heed_mpi_fail(int err, const char *call, const char *file, int line);
_Noreturn void heed_h5_fail(const char *call, const char *what, const char *file, int line);

#define HEED_MPI_CHECK(call)                                                                       \
    do {                                                                                           \
        int heed_mpi_err_ = (call);                                                                \
        if (heed_mpi_err_ != MPI_SUCCESS)                                                          \
            heed_mpi_fail(heed_mpi_err_, #call, __FILE__, __LINE__);                               \
    } while (0)

#define HEED_H5_CHECK(call, what)                                                                  \
    do {                                                                                           \
        if ((call) < 0)                                                                            \
            heed_h5_fail(#call, (what), __FILE__, __LINE__);                                       \
    } while (0)

#define HEED_PTHREAD_CHECK(call)                                                                   \
    do {                                                                                           \
        int heed_pthread_err_ = (call);                                                            \
        if (heed_pthread_err_ != 0)                                                                \
            HEED_DIE(HEED_EXIT_INTERNAL, "%s failed: %s", #call, strerror(heed_pthread_err_));     \
    } while (0)

#endif
