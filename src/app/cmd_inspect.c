#include "app/commands.h"

#include "core/check.h"
#include "dist/dataset.h"

#include <stdio.h>

int cmd_inspect(int argc, char **argv) {
    if (argc != 1 || argv[0][0] == '-') {
        fprintf(stderr, "usage: heed inspect FILE.h5\n");
        return HEED_EXIT_BAD_INPUT;
    }
    int problems = dataset_inspect(argv[0], stdout);
    return problems ? HEED_EXIT_BAD_INPUT : HEED_EXIT_OK;
}
