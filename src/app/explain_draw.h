/*
 * explain_draw.h - the pictures of `heed explain`: an attention heatmap over
 * an input image, and tokens shaded by their attention weight (PNG, and an
 * HTML page that lists every sample).
 */
#ifndef HEED_APP_EXPLAIN_DRAW_H
#define HEED_APP_EXPLAIN_DRAW_H

#include <stdbool.h>
#include <stdio.h>

/* What the caption of a picture says. */
typedef struct explain_caption {
    long long sample;      /* index in the split */
    const char *predicted; /* class names */
    const char *truth;
    float confidence; /* softmax probability of the predicted class */
} explain_caption;

enum { EXPLAIN_IMAGE_SCALE = 8 };

/* The image (C, H, W; C 1 or 3, any range: shown min-max scaled) on the left
 * and, on the right, the same image under `heat` (gh x gw, any range: scaled
 * to its own maximum) upsampled bilinearly, with the caption below. The PNG
 * is (2 * W * EXPLAIN_IMAGE_SCALE + 24) x (H * EXPLAIN_IMAGE_SCALE + 48)
 * pixels. False with errno set when it cannot be written. */
bool explain_draw_image(const char *path, const float *image, int C, int H, int W,
                        const float *heat, int gh, int gw, const explain_caption *cap);

/* The n tokens, each on a background as dark as its weight (scaled to the
 * largest), wrapped in lines of at most 960 pixels, caption on top. */
bool explain_draw_tokens(const char *path, const char *const *tokens, const float *weights, int n,
                         const explain_caption *cap);

/* HTML: the page opens with explain_html_begin, then one
 * explain_html_image (a picture written next to it) or explain_html_tokens
 * per sample, then explain_html_end. Text is escaped. */
void explain_html_begin(FILE *f, const char *title);
void explain_html_image(FILE *f, const char *png_name, const explain_caption *cap);
void explain_html_tokens(FILE *f, const char *const *tokens, const float *weights, int n,
                         const explain_caption *cap);
void explain_html_end(FILE *f);

#endif
