#include "app/class_weights.h"

#include <math.h>

void class_weights_from_counts(const int64_t *counts, int K, float power, float *w) {
    double n = 0.0;
    for (int k = 0; k < K; k++)
        n += (double)counts[k];
    double mass = 0.0; /* sum_k n_k * raw_k */
    for (int k = 0; k < K; k++) {
        double raw = counts[k] > 0 ? pow(n / ((double)K * (double)counts[k]), (double)power) : 0.0;
        w[k] = (float)raw;
        mass += (double)counts[k] * raw;
    }
    double c = mass > 0.0 ? n / mass : 0.0;
    for (int k = 0; k < K; k++)
        w[k] = (float)(w[k] * c);
}
