/*
 * class_weights.h - per-class loss weights from the label counts of the
 * train split (--class-balance P), for unbalanced classes: macro-F1 counts
 * a rare class as much as a common one, the unweighted loss does not.
 *
 * w_k = c * (n / (K n_k))^P, with c chosen so that the weights average 1
 * over the training samples (sum_k n_k w_k = n): the loss keeps its scale,
 * so the learning rate that suits P = 0 still suits P > 0. P = 1 is
 * scikit-learn's class_weight="balanced" (c = 1 when every class occurs),
 * P = 0.5 a milder correction. A class with no training sample gets 0.
 */
#ifndef HEED_APP_CLASS_WEIGHTS_H
#define HEED_APP_CLASS_WEIGHTS_H

#include <stdint.h>

/* Fills w[0..K) from counts[0..K) and the power P >= 0. All zero when no
 * class has a sample. */
void class_weights_from_counts(const int64_t *counts, int K, float power, float *w);

#endif
