#include "app/curves.h"

#include "app/canvas.h"
#include "core/check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { IMG_W = 960, IMG_H = 400, PANEL_W = IMG_W / 2, MARGIN = 48 };

void curve_add(curve *c, double x, double y) {
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 256;
        c->x = xrealloc(c->x, sizeof *c->x * c->cap);
        c->y = xrealloc(c->y, sizeof *c->y * c->cap);
    }
    c->x[c->n] = x;
    c->y[c->n] = y;
    c->n++;
}

void curve_free(curve *c) {
    free(c->x);
    free(c->y);
    memset(c, 0, sizeof *c);
}

static void panel(canvas *cv, int x0, const curve *c, const char *title, rgb col) {
    const rgb black = CANVAS_BLACK, grey = {200, 200, 200};
    int left = x0 + MARGIN + 16, right = x0 + PANEL_W - 16, top = 32, bottom = IMG_H - MARGIN;
    canvas_line(cv, left, bottom, right, bottom, black, 2);
    canvas_line(cv, left, top, left, bottom, black, 2);
    canvas_text(cv, left, 10, title, black, 1);
    if (c->n == 0)
        return;
    double xmin = c->x[0], xmax = c->x[0], ymin = c->y[0], ymax = c->y[0];
    for (int i = 0; i < c->n; i++) {
        xmin = fmin(xmin, c->x[i]);
        xmax = fmax(xmax, c->x[i]);
        if (isfinite(c->y[i])) {
            ymin = fmin(ymin, c->y[i]);
            ymax = fmax(ymax, c->y[i]);
        }
    }
    if (xmax == xmin)
        xmax = xmin + 1;
    if (ymax == ymin)
        ymax = ymin + 1;
    for (int k = 1; k < 4; k++) {
        int gy = bottom - (bottom - top) * k / 4;
        canvas_line(cv, left + 1, gy, right, gy, grey, 1);
    }
    char buf[32];
    snprintf(buf, sizeof buf, "%.3g", ymax);
    canvas_text(cv, x0 + 4, top - 8, buf, black, 1);
    snprintf(buf, sizeof buf, "%.3g", ymin);
    canvas_text(cv, x0 + 4, bottom - 16, buf, black, 1);
    snprintf(buf, sizeof buf, "%.0f", xmin);
    canvas_text(cv, left, bottom + 6, buf, black, 1);
    snprintf(buf, sizeof buf, "%.0f", xmax);
    canvas_text(cv, right - canvas_text_width(buf, 1), bottom + 6, buf, black, 1);
    canvas_text(cv, (left + right) / 2 - 16, bottom + 24, "step", black, 1);
    int px = -1, py = -1;
    for (int i = 0; i < c->n; i++) {
        if (!isfinite(c->y[i]))
            continue;
        int x = left + (int)((c->x[i] - xmin) / (xmax - xmin) * (right - left));
        int y = bottom - (int)((c->y[i] - ymin) / (ymax - ymin) * (bottom - top));
        if (px >= 0)
            canvas_line(cv, px, py, x, y, col, 2);
        else
            canvas_put(cv, x, y, col);
        if (c->n < 50)
            for (int d = -2; d <= 2; d++)
                canvas_line(cv, x + d, y - 2, x + d, y + 2, col, 1);
        px = x;
        py = y;
    }
}

bool curves_write_png(const char *path, const curve *loss, const curve *accuracy) {
    canvas cv;
    canvas_init(&cv, IMG_W, IMG_H, CANVAS_WHITE);
    panel(&cv, 0, loss, "train loss", (rgb){31, 119, 180});
    panel(&cv, PANEL_W, accuracy, "val accuracy", (rgb){214, 39, 40});
    bool ok = canvas_write_png(&cv, path);
    canvas_free(&cv);
    return ok;
}
