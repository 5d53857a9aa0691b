#include "app/curves.h"

#include "core/check.h"

#include <math.h>
#include <png.h>
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

typedef struct canvas {
    uint8_t *rgb; /* IMG_H rows of IMG_W * 3 */
} canvas;

static void put(canvas *cv, int x, int y, const uint8_t col[3]) {
    if (x < 0 || y < 0 || x >= IMG_W || y >= IMG_H)
        return;
    memcpy(cv->rgb + ((size_t)y * IMG_W + x) * 3, col, 3);
}

static void line(canvas *cv, int x0, int y0, int x1, int y1, const uint8_t col[3]) {
    int dx = abs(x1 - x0), dy = -abs(y1 - y0);
    int sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, err = dx + dy;
    for (;;) {
        put(cv, x0, y0, col);
        put(cv, x0, y0 + 1, col);
        if (x0 == x1 && y0 == y1)
            break;
        int e2 = 2 * err;
        if (e2 >= dy) {
            err += dy;
            x0 += sx;
        }
        if (e2 <= dx) {
            err += dx;
            y0 += sy;
        }
    }
}

/* A 3x5 pixel font for the characters axis labels need. */
static const char *glyph(char ch) {
    switch (ch) {
    case '0':
        return "111101101101111";
    case '1':
        return "010110010010111";
    case '2':
        return "111001111100111";
    case '3':
        return "111001111001111";
    case '4':
        return "101101111001001";
    case '5':
        return "111100111001111";
    case '6':
        return "111100111101111";
    case '7':
        return "111001001001001";
    case '8':
        return "111101111101111";
    case '9':
        return "111101111001111";
    case '.':
        return "000000000000010";
    case '-':
        return "000000111000000";
    case 'e':
        return "000111111100111";
    case 'a':
        return "000011101101011";
    case 'c':
        return "000111100100111";
    case 'l':
        return "110010010010111";
    case 'o':
        return "000111101101111";
    case 'p':
        return "000111101111100";
    case 'r':
        return "000111100100100";
    case 's':
        return "000011110011110";
    case 't':
        return "010111010010011";
    case 'u':
        return "000101101101111";
    case 'y':
        return "000101111001111";
    case 'i':
        return "010000010010010";
    case 'n':
        return "000110101101101";
    case 'v':
        return "000101101101010";
    default:
        return "000000000000000";
    }
}

static void text(canvas *cv, int x, int y, const char *s, const uint8_t col[3]) {
    enum { SCALE = 2 };
    for (; *s; s++, x += 4 * SCALE) {
        const char *g = glyph(*s);
        for (int r = 0; r < 5; r++)
            for (int c = 0; c < 3; c++)
                if (g[r * 3 + c] == '1')
                    for (int dy = 0; dy < SCALE; dy++)
                        for (int dx = 0; dx < SCALE; dx++)
                            put(cv, x + c * SCALE + dx, y + r * SCALE + dy, col);
    }
}

static void panel(canvas *cv, int x0, const curve *c, const char *title, const uint8_t col[3]) {
    static const uint8_t black[3] = {0, 0, 0}, grey[3] = {200, 200, 200};
    int left = x0 + MARGIN + 16, right = x0 + PANEL_W - 16, top = 32, bottom = IMG_H - MARGIN;
    line(cv, left, bottom, right, bottom, black);
    line(cv, left, top, left, bottom, black);
    text(cv, left, 10, title, black);
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
        line(cv, left + 1, gy, right, gy, grey);
    }
    char buf[32];
    snprintf(buf, sizeof buf, "%.3g", ymax);
    text(cv, x0 + 4, top - 4, buf, black);
    snprintf(buf, sizeof buf, "%.3g", ymin);
    text(cv, x0 + 4, bottom - 8, buf, black);
    snprintf(buf, sizeof buf, "%.0f", xmin);
    text(cv, left, bottom + 8, buf, black);
    snprintf(buf, sizeof buf, "%.0f", xmax);
    text(cv, right - 8 * (int)strlen(buf), bottom + 8, buf, black);
    text(cv, (left + right) / 2 - 16, bottom + 24, "step", black);
    int px = -1, py = -1;
    for (int i = 0; i < c->n; i++) {
        if (!isfinite(c->y[i]))
            continue;
        int x = left + (int)((c->x[i] - xmin) / (xmax - xmin) * (right - left));
        int y = bottom - (int)((c->y[i] - ymin) / (ymax - ymin) * (bottom - top));
        if (px >= 0)
            line(cv, px, py, x, y, col);
        else
            put(cv, x, y, col);
        if (c->n < 50)
            for (int d = -2; d <= 2; d++)
                line(cv, x + d, y - 2, x + d, y + 2, col);
        px = x;
        py = y;
    }
}

bool curves_write_png(const char *path, const curve *loss, const curve *accuracy) {
    static const uint8_t blue[3] = {31, 119, 180}, orange[3] = {214, 39, 40};
    canvas cv = {xmalloc((size_t)IMG_W * IMG_H * 3)};
    memset(cv.rgb, 255, (size_t)IMG_W * IMG_H * 3);
    panel(&cv, 0, loss, "train loss", blue);
    panel(&cv, PANEL_W, accuracy, "val accuracy", orange);

    FILE *f = fopen(path, "wb");
    if (!f) {
        free(cv.rgb);
        return false;
    }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        free(cv.rgb);
        return false;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, IMG_W, IMG_H, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < IMG_H; y++)
        png_write_row(png, cv.rgb + (size_t)y * IMG_W * 3);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(cv.rgb);
    return fclose(f) == 0;
}
