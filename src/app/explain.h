/*
 * explain.h - what `heed explain` does once it has a model and data: run
 * the model on chosen samples with an attention sink and write what it
 * attended to (docs/explain.md describes the files).
 *
 *   DIR/attention.h5     per sample: prediction, label, probabilities, every
 *                        attention map the forward pass used, attention
 *                        rollout (Transformer models), tokens (text)
 *   DIR/sample_<i>.png   image models: the heatmap over the input image;
 *                        text models: the tokens shaded by weight
 *   DIR/index.html       every sample, text shaded token by token
 */
#ifndef HEED_APP_EXPLAIN_H
#define HEED_APP_EXPLAIN_H

#include "app/data_feed.h"
#include "models/model.h"

#include <stddef.h>
#include <stdint.h>

typedef struct explain_request {
    const char *split;     /* "train", "val" or "test" */
    int64_t first, last;   /* samples first..last of the split, inclusive */
    const char *out_dir;   /* exists */
    const char *data_path; /* recorded in the file */
    const char *ckpt_path; /* recorded in the file (may be "") */
    uint64_t seed;
} explain_request;

/* Runs m (eval mode, no gradients) on the requested samples and writes the
 * files above; each is written under a temporary name and renamed when
 * complete. Returns 0, or HEED_EXIT_BAD_INPUT with a message in err when the
 * request cannot be served (range out of bounds, a model that records no
 * attention). Not collective: one process calls it. */
int explain_run(model *m, data_feed *feed, const explain_request *rq, char *err, size_t errlen);

#endif
