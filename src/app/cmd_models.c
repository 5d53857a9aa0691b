#include "app/commands.h"

#include "core/check.h"
#include "models/model.h"

#include <stdio.h>

int cmd_models(int argc, char **argv) {
    printf("models (heed train --model NAME; options with their defaults):\n\n");
    model_kinds_print(stdout);
    return HEED_EXIT_OK;
}
