/*
 * cnn_common.h - what the CNN families (cbam_cnn, resnet*) share: checking
 * the augmentation and batch-norm options and applying the augmentation.
 */
#ifndef HEED_MODELS_CNN_COMMON_H
#define HEED_MODELS_CNN_COMMON_H

#include "models/model.h"

#include <stddef.h>

typedef struct cnn_augment {
    bool on, flip;
    int pad;
} cnn_augment;

/* Checks --augment/--crop-pad/--flip/--bn-momentum for images of `shape`;
 * false with a message naming the option. */
bool cnn_config_check(const model_config *cfg, const data_shape *shape, cnn_augment *aug, char *err,
                      size_t errlen);

/* The batch's images, augmented in training mode when enabled. */
tensor *cnn_input(graph *g, const cnn_augment *aug, const model_batch *batch);

#endif
