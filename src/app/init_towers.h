/*
 * init_towers.h - `--init-image-from FILE` / `--init-text-from FILE`: start
 * a fusion model's towers from single-modality runs.
 *
 * The fusion model names its towers' parameters like the single-modality
 * models under a prefix ("image.blocks.0.attn.q.weight" is a vit's
 * "blocks.0.attn.q.weight"), so a tower is loaded from a params file or a
 * checkpoint (src/dist/params_file.h) of a `vit` / `transformer` run by
 * stripping the prefix. Every tower tensor must be in the file with the same
 * shape (so --dim, --depth, --heads, --ffn, --patch and --max-len must match
 * the run it comes from); the file's other tensors (that model's head) are
 * ignored.
 */
#ifndef HEED_APP_INIT_TOWERS_H
#define HEED_APP_INIT_TOWERS_H

#include "core/params.h"

#include <stdbool.h>
#include <stddef.h>

/* Loads the tensors of ps whose names start with `prefix` from the tensors
 * of `path` named without it; *loaded receives how many. false with a
 * message naming the file and the tensor (ps may then be partly
 * overwritten), or when no tensor of ps has the prefix. Not collective:
 * every rank reads the same file. */
bool init_towers_load(params *ps, const char *prefix, const char *path, int *loaded, char *err,
                      size_t errlen);

#endif
