/*
 * params_file.h - parameters alone, for inference, other tools and
 * initialising a model from a file (`heed export`, `--init-from`).
 *
 * Layout (docs/checkpoint-format.md): an HDF5 file with
 *   /params/<full parameter name>   float32, the tensor's shape, e.g.
 *                                   /params/blocks.0.attn.qkv.weight
 *                                   optional uint64 attribute `checksum`
 *                                   (ckpt_checksum; verified when present)
 *   root attributes                 `model` (string), `heed_version` (string)
 * A checkpoint's /params group has the same layout, so every reader here
 * also accepts a checkpoint. Python writes the same layout with h5py:
 *   f.create_dataset("params/" + name, data=t.float().numpy())
 *
 * Nothing here is collective: call it on one rank (writing) or on each rank
 * (reading the same file).
 */
#ifndef HEED_DIST_PARAMS_FILE_H
#define HEED_DIST_PARAMS_FILE_H

#include "core/params.h"

#include <stdbool.h>
#include <stddef.h>

/* Writes every tensor of ps to path (path.tmp, then rename). false with a
 * message in err when the file cannot be written. */
bool params_file_write(const char *path, const char *model, const params *ps, char *err,
                       size_t errlen);

typedef struct params_file_report {
    int loaded;  /* tensors of ps read from the file */
    int missing; /* tensors of ps the file lacks */
    int unused;  /* datasets of the file that ps has no tensor for */
    char first_missing[PARAMS_NAME_MAX], first_unused[PARAMS_NAME_MAX];
} params_file_report;

/* Loads every tensor of ps whose full name is a dataset of /params,
 * checking its shape (and its checksum when it has one). require_all: a
 * tensor of ps missing from the file is an error too (extra datasets never
 * are; the report counts them). false with a message naming the file and
 * the tensor; ps is then partly overwritten. rep may be NULL. */
bool params_file_read(const char *path, params *ps, bool require_all, params_file_report *rep,
                      char *err, size_t errlen);

/* Copies /params of a checkpoint (or params file) at src into a new params
 * file at dst, verifying every checksum, with the source's `model`
 * attribute. false with a message. Writes dst.tmp, then renames. */
bool params_file_export(const char *src, const char *dst, char *err, size_t errlen);

#endif
