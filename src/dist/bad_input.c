#include "dist/bad_input.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist/check_dist.h"

bool bad_input_any(MPI_Comm comm, bool failed, const char *msg, char *out, size_t outlen) {
    int rank = 0, size = 1;
    HEED_MPI_CHECK(MPI_Comm_rank(comm, &rank));
    HEED_MPI_CHECK(MPI_Comm_size(comm, &size));
    /* The lowest failing rank speaks: MIN over (failed ? rank : size). One
     * all-reduce in the common case where nothing failed. */
    int mine = failed ? rank : size, speaker = size;
    HEED_MPI_CHECK(MPI_Allreduce(&mine, &speaker, 1, MPI_INT, MPI_MIN, comm));
    if (speaker == size)
        return false;
    char buf[HEED_BAD_INPUT_MSG_MAX];
    if (rank == speaker)
        snprintf(buf, sizeof buf, "%s", msg && msg[0] ? msg : "unknown problem");
    HEED_MPI_CHECK(MPI_Bcast(buf, (int)sizeof buf, MPI_CHAR, speaker, comm));
    buf[sizeof buf - 1] = '\0';
    if (out && outlen > 0)
        snprintf(out, outlen, "%s", buf);
    return true;
}

_Noreturn void bad_input_exit(MPI_Comm comm, const char *msg) {
    int inited = 0, finalized = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    if (!inited || finalized) {
        fprintf(stderr, "heed: error: %s\n", msg ? msg : "unknown problem");
        fflush(stderr);
        exit(HEED_EXIT_BAD_INPUT);
    }
    int rank = 0, size = 1, world = 1;
    HEED_MPI_CHECK(MPI_Comm_rank(comm, &rank));
    HEED_MPI_CHECK(MPI_Comm_size(comm, &size));
    HEED_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &world));
    if (rank == 0) {
        fprintf(stderr, "heed: error: %s\n", msg ? msg : "unknown problem");
        fflush(stderr);
    }
    if (size != world) {
        /* Processes outside comm would never reach MPI_Finalize. */
        MPI_Abort(comm, HEED_EXIT_BAD_INPUT);
        _Exit(HEED_EXIT_BAD_INPUT);
    }
    /* The barrier keeps a fast rank from finalising (and mpirun from
     * tearing the job down) before rank 0's message is out. */
    HEED_MPI_CHECK(MPI_Barrier(comm));
    MPI_Finalize();
    exit(HEED_EXIT_BAD_INPUT);
}

void bad_input_agree(MPI_Comm comm, bool failed, const char *msg) {
    char agreed[HEED_BAD_INPUT_MSG_MAX];
    if (bad_input_any(comm, failed, msg, agreed, sizeof agreed))
        bad_input_exit(comm, agreed);
}
