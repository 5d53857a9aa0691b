#include "dist/check_dist.h"

#include <stdio.h>

_Noreturn void heed_mpi_fail(int err, const char *call, const char *file, int line) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(err, msg, &len) != MPI_SUCCESS)
        snprintf(msg, sizeof msg, "error code %d", err);
    int rank = -1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    fprintf(stderr, "heed: rank %d: %s:%d: %s failed: %s\n", rank, file, line, call, msg);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, HEED_EXIT_INTERNAL);
    _Exit(HEED_EXIT_INTERNAL);
}

_Noreturn void heed_h5_fail(const char *call, const char *what, const char *file, int line) {
    int rank = -1, inited = 0;
    MPI_Initialized(&inited);
    if (inited)
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    fprintf(stderr, "heed: rank %d: %s:%d: HDF5 call %s failed on %s\n", rank, file, line, call,
            what);
    fflush(stderr);
    if (inited)
        MPI_Abort(MPI_COMM_WORLD, HEED_EXIT_INTERNAL);
    _Exit(HEED_EXIT_INTERNAL);
}
