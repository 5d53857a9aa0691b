/*
 * ckpt_model.h - a trained model back from a checkpoint, built for a data
 * file: what `heed eval` and `heed explain` start from.
 *
 * The model kind and its options come from the configuration saved in the
 * checkpoint, the data shape from the data file; parameters are loaded and
 * their checksums verified. A data file the model does not fit (another
 * image size, vocabulary or number of classes) is refused with the name of
 * the first parameter whose shape differs.
 */
#ifndef HEED_APP_CKPT_MODEL_H
#define HEED_APP_CKPT_MODEL_H

#include "app/config.h"
#include "app/data_feed.h"
#include "dist/checkpoint.h"
#include "dist/comm.h"
#include "models/model.h"

typedef struct ckpt_model {
    run_config rc;   /* the configuration saved in the checkpoint */
    ckpt_meta meta;  /* its step, world size, ... */
    data_feed *feed; /* over `data` */
    model *model;    /* parameters loaded */
} ckpt_model;

/* Collective: every rank of c calls it with the same arguments. Sets the
 * BLAS threads (threads, or the cores of the node over its ranks when 0).
 * false with the same message in err on every rank (and nothing to close)
 * for an unreadable or corrupt checkpoint, a saved configuration heed cannot
 * read, or data the model does not fit. Bad data files exit the job with
 * code 2 (data_feed_open). */
bool ckpt_model_open(ckpt_model *cm, const comm *c, const char *ckpt, const char *data, int threads,
                     char *err, size_t errlen);
void ckpt_model_close(ckpt_model *cm);

#endif
