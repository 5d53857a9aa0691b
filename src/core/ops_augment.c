/*
 * ops_augment.c - random crop with zero padding and horizontal flip, drawn
 * per sample inside the model's forward pass.
 *
 * Doing it here rather than in the data loader keys the draws exactly like
 * dropout: rng_key(graph_rng_stream(g), graph_sample_id(g, b), 0) gives the
 * crop offsets and the flip of sample b. The augmented batch is therefore a
 * function of (seed, step, global sample id) only, the same at any rank
 * count or micro-batch size, and eval (training mode off) sees the images
 * untouched.
 */
#include "core/ops_vision.h"

#include "core/check.h"
#include "core/rng.h"

#include <string.h>

/* out (C, H, W) = x shifted by (dy - pad, dx - pad), zero where it leaves the
 * image, mirrored along W when flip. */
static void augment_one(float *out, const float *x, int C, int H, int W, int pad, int dy, int dx,
                        bool flip) {
    for (int c = 0; c < C; c++)
        for (int i = 0; i < H; i++) {
            float *o = out + ((int64_t)c * H + i) * W;
            int si = i + dy - pad;
            if (si < 0 || si >= H) {
                memset(o, 0, sizeof(float) * W);
                continue;
            }
            const float *xr = x + ((int64_t)c * H + si) * W;
            for (int j = 0; j < W; j++) {
                int sj = (flip ? W - 1 - j : j) + dx - pad;
                o[j] = sj >= 0 && sj < W ? xr[sj] : 0.0f;
            }
        }
}

tensor *op_augment_images(graph *g, tensor *x, int pad, bool flip) {
    HEED_ASSERT(x->ndim == 4 && x->data && pad >= 0);
    if (!graph_training(g) || (pad == 0 && !flip))
        return x;
    int B = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    tensor *out = graph_new_like(g, x, false);
    uint64_t stream = graph_rng_stream(g);
    int64_t per = (int64_t)C * H * W;
    for (int b = 0; b < B; b++) {
        uint64_t key = rng_key(stream, (uint64_t)graph_sample_id(g, b), 0);
        uint64_t r = rng_bits(key, 0);
        int span = 2 * pad + 1;
        int dy = (int)(r % (uint64_t)span);
        int dx = (int)((r >> 16) % (uint64_t)span);
        bool f = flip && ((r >> 40) & 1u);
        augment_one(out->data + b * per, x->data + b * per, C, H, W, pad, dy, dx, f);
    }
    return out;
}
