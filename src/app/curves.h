/*
 * curves.h - curves.png: training loss and evaluation accuracy against step,
 * drawn with libpng (two panels, axes with min/max labels).
 */
#ifndef HEED_APP_CURVES_H
#define HEED_APP_CURVES_H

#include <stdbool.h>
#include <stdint.h>

typedef struct curve {
    double *x, *y;
    int n, cap;
} curve;

void curve_add(curve *c, double x, double y);
void curve_free(curve *c);

/* Writes a PNG with the loss curve on the left and the accuracy curve on the
 * right; false with errno set when the file cannot be written. */
bool curves_write_png(const char *path, const curve *loss, const curve *accuracy);

#endif
