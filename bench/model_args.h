/*
 * model_args.h - the model options every benchmark program takes, spelled as
 * `heed train` spells them, so a benchmark line and a training line agree.
 */
#ifndef HEED_BENCH_MODEL_ARGS_H
#define HEED_BENCH_MODEL_ARGS_H

#include "models/model.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Applies option `k` with value `v` to cfg; false when `k` is not a model
 * option (the caller then tries its own or rejects it). */
static inline bool model_args_apply(model_config *cfg, const char *k, const char *v) {
    struct {
        const char *name;
        int *field;
    } ints[] = {
        {"--dim", &cfg->dim},
        {"--depth", &cfg->depth},
        {"--heads", &cfg->heads},
        {"--ffn", &cfg->ffn},
        {"--patch", &cfg->patch},
        {"--width", &cfg->width},
        {"--embed-dim", &cfg->embed_dim},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (!strcmp(k, ints[i].name)) {
            *ints[i].field = atoi(v);
            return true;
        }
    if (!strcmp(k, "--pool")) {
        snprintf(cfg->pool, sizeof cfg->pool, "%s", v);
        return true;
    }
    return false;
}

#endif
