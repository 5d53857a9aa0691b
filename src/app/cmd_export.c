/*
 * cmd_export.c - `heed export CKPT --out FILE.h5`: the parameters of a
 * checkpoint alone, in the params-file layout (src/dist/params_file.h,
 * docs/checkpoint-format.md), for inference and other tools.
 */
#include "app/commands.h"

#include "core/check.h"
#include "dist/check_dist.h"
#include "dist/params_file.h"

#include <stdio.h>
#include <string.h>

int cmd_export(int argc, char **argv) {
    const char *ckpt = NULL, *out = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc)
            out = argv[++i];
        else if (argv[i][0] != '-' && !ckpt)
            ckpt = argv[i];
        else {
            fprintf(stderr,
                    "heed export: unexpected argument '%s'\n"
                    "usage: heed export CKPT --out FILE.h5\n",
                    argv[i]);
            return HEED_EXIT_BAD_INPUT;
        }
    }
    if (!ckpt || !out) {
        fprintf(stderr, "usage: heed export CKPT --out FILE.h5\n");
        return HEED_EXIT_BAD_INPUT;
    }
    /* Serial HDF5 on one process; MPI only because the library is parallel. */
    HEED_MPI_CHECK(MPI_Init(NULL, NULL));
    int rank = 0;
    HEED_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
    int code = HEED_EXIT_OK;
    if (rank == 0) {
        char err[1024];
        if (params_file_export(ckpt, out, err, sizeof err)) {
            printf("heed export: wrote the parameters of %s to %s\n", ckpt, out);
        } else {
            fprintf(stderr, "heed export: %s\n", err);
            code = HEED_EXIT_BAD_INPUT;
        }
    }
    HEED_MPI_CHECK(MPI_Bcast(&code, 1, MPI_INT, 0, MPI_COMM_WORLD));
    HEED_MPI_CHECK(MPI_Finalize());
    return code;
}
