#include "app/ckpt_model.h"

#include "core/check.h"
#include "dist/allreduce.h"
#include "core/optim.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* OpenBLAS's own call; cblas.h of other BLAS builds lacks it. */
void openblas_set_num_threads(int num_threads);

bool ckpt_model_open(ckpt_model *cm, const comm *c, const char *ckpt, const char *data, int threads,
                     char *err, size_t errlen) {
    memset(cm, 0, sizeof *cm);
    if (!ckpt_read_meta(c, ckpt, &cm->meta, err, errlen))
        return false;
    run_config_default(&cm->rc);
    char why[1024];
    if (!run_config_load_ini_text(&cm->rc, cm->meta.config, ckpt, why, sizeof why)) {
        snprintf(err, errlen, "the configuration saved in %.900s", why);
        ckpt_meta_free(&cm->meta);
        return false;
    }
    cm->rc.mc.seed = cm->rc.seed;
    long cores = sysconf(_SC_NPROCESSORS_ONLN) / (c->local_size > 0 ? c->local_size : 1);
    openblas_set_num_threads(threads > 0 ? threads : cores > 0 ? (int)cores : 1);
    const run_config *rc = &cm->rc;
    cm->feed =
        data_feed_open(data, c, rc->batch_size, rc->seed, rc->drop_last, false, rc->length_buckets);
    data_shape shape;
    data_feed_shape(cm->feed, &shape);
    cm->model = model_create(rc->model, &rc->mc, &shape, why, sizeof why);
    if (!cm->model) {
        snprintf(err, errlen, "%.300s does not fit the model of %.300s: %.400s", data, ckpt, why);
        ckpt_model_close(cm);
        return false;
    }
    /* Evaluation needs no optimiser state, but each rank reads and checks a
     * share of the moments: a corrupt checkpoint is refused whole. */
    int64_t lo, hi;
    ring_chunk_range(cm->model->ps.numel, c->size, c->rank, &lo, &hi);
    adam_state moments;
    adam_state_init(&moments, lo, hi);
    bool ok = ckpt_read_state(c, ckpt, &cm->model->ps, &moments, why, sizeof why);
    adam_state_free(&moments);
    if (!ok) {
        snprintf(err, errlen, "%.400s (is %.300s the data this model was trained on?)", why, data);
        ckpt_model_close(cm);
        return false;
    }
    return true;
}

void ckpt_model_close(ckpt_model *cm) {
    model_free(cm->model);
    data_feed_free(cm->feed);
    ckpt_meta_free(&cm->meta);
    memset(cm, 0, sizeof *cm);
}
