/*
 * canvas.h - an RGB picture in memory, the few drawing primitives heed's
 * pictures need (lines, boxes, blended pixels, text), and writing it as PNG
 * with libpng. Curves and attention maps are drawn on it.
 *
 *   canvas cv;
 *   canvas_init(&cv, 640, 480, CANVAS_WHITE);
 *   canvas_text(&cv, 10, 10, "loss", CANVAS_BLACK, 1);
 *   if (!canvas_write_png(&cv, "out.png")) ... errno says why ...
 *   canvas_free(&cv);
 */
#ifndef HEED_APP_CANVAS_H
#define HEED_APP_CANVAS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct rgb {
    uint8_t r, g, b;
} rgb;

#define CANVAS_WHITE ((rgb){255, 255, 255})
#define CANVAS_BLACK ((rgb){0, 0, 0})

typedef struct canvas {
    int w, h;
    uint8_t *px; /* h rows of w * 3 bytes; owned */
} canvas;

/* Allocates a w x h picture filled with `bg` (aborts on out of memory). */
void canvas_init(canvas *cv, int w, int h, rgb bg);
void canvas_free(canvas *cv);

/* Drawing clips at the edges. */
void canvas_put(canvas *cv, int x, int y, rgb c);
/* Mixes c into the pixel with weight alpha in [0, 1]. */
void canvas_blend(canvas *cv, int x, int y, rgb c, float alpha);
void canvas_fill(canvas *cv, int x, int y, int w, int h, rgb c);
/* A line `thick` pixels wide (1 or 2). */
void canvas_line(canvas *cv, int x0, int y0, int x1, int y1, rgb c, int thick);
/* ASCII text with its top-left at (x, y), each font pixel scale x scale;
 * characters outside printable ASCII draw as '?'. Returns the x after it. */
int canvas_text(canvas *cv, int x, int y, const char *s, rgb c, int scale);
/* Width in pixels of s drawn at `scale`. */
int canvas_text_width(const char *s, int scale);

/* Writes the picture as an 8-bit RGB PNG (through `path`.tmp and a rename,
 * so no half-written picture is left); false with errno set (EIO for a
 * libpng failure) when the file cannot be written. */
bool canvas_write_png(const canvas *cv, const char *path);

/* The viridis-like colour of v in [0, 1] (clamped), for heatmaps. */
rgb canvas_heat(float v);

#endif
