#include "app/canvas.h"

#include "app/font.h"
#include "core/check.h"

#include <errno.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void canvas_init(canvas *cv, int w, int h, rgb bg) {
    HEED_ASSERT(w > 0 && h > 0);
    cv->w = w;
    cv->h = h;
    cv->px = xmalloc((size_t)w * h * 3);
    canvas_fill(cv, 0, 0, w, h, bg);
}

void canvas_free(canvas *cv) {
    free(cv->px);
    cv->px = NULL;
    cv->w = cv->h = 0;
}

void canvas_put(canvas *cv, int x, int y, rgb c) {
    if (x < 0 || y < 0 || x >= cv->w || y >= cv->h)
        return;
    uint8_t *p = cv->px + ((size_t)y * cv->w + x) * 3;
    p[0] = c.r;
    p[1] = c.g;
    p[2] = c.b;
}

static uint8_t mix(uint8_t a, uint8_t b, float alpha) {
    float v = a + (b - a) * alpha;
    return (uint8_t)(v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v + 0.5f);
}

void canvas_blend(canvas *cv, int x, int y, rgb c, float alpha) {
    if (x < 0 || y < 0 || x >= cv->w || y >= cv->h)
        return;
    alpha = alpha < 0.0f ? 0.0f : alpha > 1.0f ? 1.0f : alpha;
    uint8_t *p = cv->px + ((size_t)y * cv->w + x) * 3;
    p[0] = mix(p[0], c.r, alpha);
    p[1] = mix(p[1], c.g, alpha);
    p[2] = mix(p[2], c.b, alpha);
}

void canvas_fill(canvas *cv, int x, int y, int w, int h, rgb c) {
    for (int yy = y; yy < y + h; yy++)
        for (int xx = x; xx < x + w; xx++)
            canvas_put(cv, xx, yy, c);
}

void canvas_line(canvas *cv, int x0, int y0, int x1, int y1, rgb c, int thick) {
    int dx = abs(x1 - x0), dy = -abs(y1 - y0);
    int sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, err = dx + dy;
    for (;;) {
        canvas_put(cv, x0, y0, c);
        if (thick > 1)
            canvas_put(cv, x0, y0 + 1, c);
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

int canvas_text(canvas *cv, int x, int y, const char *s, rgb c, int scale) {
    for (; *s; s++, x += FONT_W * scale) {
        unsigned char ch = (unsigned char)*s;
        if (ch < FONT_FIRST || ch > FONT_LAST)
            ch = '?';
        const uint8_t *g = font_glyphs[ch - FONT_FIRST];
        for (int r = 0; r < FONT_H; r++)
            for (int col = 0; col < FONT_W; col++)
                if (g[r] & (0x80 >> col))
                    canvas_fill(cv, x + col * scale, y + r * scale, scale, scale, c);
    }
    return x;
}

int canvas_text_width(const char *s, int scale) {
    return (int)strlen(s) * FONT_W * scale;
}

/* Into a temporary name, renamed when complete: a reader never sees half a
 * picture. */
bool canvas_write_png(const canvas *cv, const char *path) {
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return false;
    }
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return false;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        remove(tmp);
        errno = EIO;
        return false;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)cv->w, (png_uint_32)cv->h, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < cv->h; y++)
        png_write_row(png, cv->px + (size_t)y * cv->w * 3);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    if (fclose(f) != 0) {
        int e = errno;
        remove(tmp);
        errno = e;
        return false;
    }
    return rename(tmp, path) == 0;
}

rgb canvas_heat(float v) {
    /* Five stops of viridis: dark for little attention, yellow for much. */
    static const rgb stops[5] = {
        {68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}};
    v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
    float t = v * 4.0f;
    int i = (int)t;
    if (i >= 4)
        return stops[4];
    float a = t - i;
    return (rgb){mix(stops[i].r, stops[i + 1].r, a), mix(stops[i].g, stops[i + 1].g, a),
                 mix(stops[i].b, stops[i + 1].b, a)};
}
