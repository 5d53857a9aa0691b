#include "app/explain_draw.h"

#include "app/canvas.h"
#include "core/check.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const rgb caption_ok = {0, 110, 0}, caption_wrong = {190, 0, 0};

static void caption_text(const explain_caption *cap, char *buf, size_t len) {
    snprintf(buf, len, "#%lld  predicted: %s (%.2f)  true: %s", cap->sample, cap->predicted,
             cap->confidence, cap->truth);
}

static rgb caption_colour(const explain_caption *cap) {
    return strcmp(cap->predicted, cap->truth) == 0 ? caption_ok : caption_wrong;
}

static float max_of(const float *v, int n) {
    float m = 0.0f;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i]) && v[i] > m)
            m = v[i];
    return m;
}

/* Bilinear sample of the (gh, gw) grid at cell-centre coordinates. */
static float heat_at(const float *heat, int gh, int gw, float gy, float gx) {
    gy = gy < 0.0f ? 0.0f : gy > gh - 1 ? (float)(gh - 1) : gy;
    gx = gx < 0.0f ? 0.0f : gx > gw - 1 ? (float)(gw - 1) : gx;
    int y0 = (int)gy, x0 = (int)gx;
    int y1 = y0 + 1 < gh ? y0 + 1 : y0, x1 = x0 + 1 < gw ? x0 + 1 : x0;
    float ay = gy - y0, ax = gx - x0;
    float top = heat[y0 * gw + x0] * (1 - ax) + heat[y0 * gw + x1] * ax;
    float bottom = heat[y1 * gw + x0] * (1 - ax) + heat[y1 * gw + x1] * ax;
    return top * (1 - ay) + bottom * ay;
}

static rgb image_pixel(const float *image, int C, int H, int W, int y, int x, float lo, float hi) {
    float s = hi > lo ? 255.0f / (hi - lo) : 0.0f;
    uint8_t v[3];
    for (int c = 0; c < 3; c++) {
        float p = image[((size_t)(C == 3 ? c : 0) * H + y) * W + x];
        float q = (p - lo) * s;
        v[c] = (uint8_t)(q < 0 ? 0 : q > 255 ? 255 : q + 0.5f);
    }
    return (rgb){v[0], v[1], v[2]};
}

bool explain_draw_image(const char *path, const float *image, int C, int H, int W,
                        const float *heat, int gh, int gw, const explain_caption *cap) {
    HEED_ASSERT(C == 1 || C == 3);
    enum { S = EXPLAIN_IMAGE_SCALE, PAD = 8 };
    int pw = W * S, ph = H * S;
    canvas cv;
    canvas_init(&cv, 2 * pw + 3 * PAD, ph + 48, CANVAS_WHITE);
    float lo = image[0], hi = image[0];
    for (size_t i = 0; i < (size_t)C * H * W; i++) {
        lo = fminf(lo, image[i]);
        hi = fmaxf(hi, image[i]);
    }
    float hmax = max_of(heat, gh * gw);
    for (int y = 0; y < ph; y++)
        for (int x = 0; x < pw; x++) {
            rgb p = image_pixel(image, C, H, W, y / S, x / S, lo, hi);
            canvas_put(&cv, PAD + x, PAD + y, p);
            /* The grid cell centres sit at (i + 0.5) * H / gh image pixels. */
            float gy = ((y + 0.5f) / ph) * gh - 0.5f, gx = ((x + 0.5f) / pw) * gw - 0.5f;
            float v = hmax > 0.0f ? heat_at(heat, gh, gw, gy, gx) / hmax : 0.0f;
            canvas_put(&cv, 2 * PAD + pw + x, PAD + y, p);
            canvas_blend(&cv, 2 * PAD + pw + x, PAD + y, canvas_heat(v), 0.35f + 0.4f * v);
        }
    char buf[256];
    caption_text(cap, buf, sizeof buf);
    canvas_text(&cv, PAD, ph + PAD + 12, buf, caption_colour(cap), 1);
    bool ok = canvas_write_png(&cv, path);
    canvas_free(&cv);
    return ok;
}

enum { TOKENS_W = 960, LINE_H = 24, TOKEN_PAD = 4, MARGIN = 12 };

/* Lays the tokens out in lines; returns the number of lines. When cv is not
 * NULL, draws them too. */
static int layout_tokens(canvas *cv, const char *const *tokens, const float *weights, int n,
                         float wmax, int top) {
    int x = MARGIN, line = 0;
    for (int i = 0; i < n; i++) {
        int w = canvas_text_width(tokens[i], 1) + 2 * TOKEN_PAD;
        if (x + w > TOKENS_W - MARGIN && x > MARGIN) {
            x = MARGIN;
            line++;
        }
        if (cv) {
            float v = wmax > 0.0f ? weights[i] / wmax : 0.0f;
            int y = top + line * LINE_H;
            canvas_fill(cv, x, y, w, LINE_H - 4, (rgb){255, 255, 255});
            for (int yy = 0; yy < LINE_H - 4; yy++)
                for (int xx = 0; xx < w; xx++)
                    canvas_blend(cv, x + xx, y + yy, (rgb){230, 85, 13}, v);
            canvas_text(cv, x + TOKEN_PAD, y + 2, tokens[i], v > 0.6f ? CANVAS_WHITE : CANVAS_BLACK,
                        1);
        }
        x += w + 2;
    }
    return line + 1;
}

bool explain_draw_tokens(const char *path, const char *const *tokens, const float *weights, int n,
                         const explain_caption *cap) {
    float wmax = max_of(weights, n);
    int lines = layout_tokens(NULL, tokens, weights, n, wmax, 0);
    int top = MARGIN + 28;
    canvas cv;
    canvas_init(&cv, TOKENS_W, top + lines * LINE_H + MARGIN, CANVAS_WHITE);
    char buf[256];
    caption_text(cap, buf, sizeof buf);
    canvas_text(&cv, MARGIN, MARGIN, buf, caption_colour(cap), 1);
    layout_tokens(&cv, tokens, weights, n, wmax, top);
    bool ok = canvas_write_png(&cv, path);
    canvas_free(&cv);
    return ok;
}

static void html_escaped(FILE *f, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '&':
            fputs("&amp;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        default:
            fputc(*s, f);
        }
    }
}

static void html_caption(FILE *f, const explain_caption *cap) {
    bool ok = strcmp(cap->predicted, cap->truth) == 0;
    fprintf(f, "<p class=\"%s\">#%lld &mdash; predicted <b>", ok ? "ok" : "wrong", cap->sample);
    html_escaped(f, cap->predicted);
    fprintf(f, "</b> (%.2f), true <b>", cap->confidence);
    html_escaped(f, cap->truth);
    fputs("</b></p>\n", f);
}

void explain_html_begin(FILE *f, const char *title) {
    fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>", f);
    html_escaped(f, title);
    fputs("</title>\n<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
          ".ok{color:#060}.wrong{color:#b00}.tok{padding:0 .15em;margin:0 .05em;"
          "border-radius:.2em;line-height:1.8}</style></head><body>\n<h1>",
          f);
    html_escaped(f, title);
    fputs("</h1>\n", f);
}

void explain_html_image(FILE *f, const char *png_name, const explain_caption *cap) {
    html_caption(f, cap);
    fputs("<img src=\"", f);
    html_escaped(f, png_name);
    fputs("\" alt=\"attention map\">\n", f);
}

void explain_html_tokens(FILE *f, const char *const *tokens, const float *weights, int n,
                         const explain_caption *cap) {
    html_caption(f, cap);
    float wmax = max_of(weights, n);
    fputs("<p>", f);
    for (int i = 0; i < n; i++) {
        float v = wmax > 0.0f ? weights[i] / wmax : 0.0f;
        fprintf(f, "<span class=\"tok\" title=\"%.4f\" style=\"background:rgba(230,85,13,%.3f)\">",
                weights[i], v);
        html_escaped(f, tokens[i]);
        fputs("</span> ", f);
    }
    fputs("</p>\n", f);
}

void explain_html_end(FILE *f) {
    fputs("</body></html>\n", f);
}
