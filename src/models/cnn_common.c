/*
 * cnn_common.c - option checks and input augmentation of the CNN families.
 */
#include "models/cnn_common.h"

#include "core/check.h"
#include "core/ops_vision.h"

#include <stdio.h>

bool cnn_config_check(const model_config *cfg, const data_shape *shape, cnn_augment *aug, char *err,
                      size_t errlen) {
    if (cfg->crop_pad < 0 || cfg->crop_pad >= shape->height || cfg->crop_pad >= shape->width) {
        snprintf(err, errlen, "--crop-pad %d must be in [0, %d) for %dx%d images", cfg->crop_pad,
                 shape->height < shape->width ? shape->height : shape->width, shape->height,
                 shape->width);
        return false;
    }
    if (!(cfg->bn_momentum >= 0.0f && cfg->bn_momentum <= 1.0f)) {
        snprintf(err, errlen, "--bn-momentum %g must be in [0, 1]", (double)cfg->bn_momentum);
        return false;
    }
    if (cfg->width < 0) {
        snprintf(err, errlen, "--width %d must be positive (0: the model's default)", cfg->width);
        return false;
    }
    *aug = (cnn_augment){.on = cfg->augment, .flip = cfg->flip, .pad = cfg->crop_pad};
    return true;
}

tensor *cnn_input(graph *g, const cnn_augment *aug, const model_batch *batch) {
    HEED_ASSERT(batch->images && batch->images->ndim == 4);
    if (!aug->on)
        return batch->images;
    return op_augment_images(g, batch->images, aug->pad, aug->flip);
}
