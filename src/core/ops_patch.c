/*
 * ops_patch.c - patch embedding helpers: patchify and a prepended token.
 */
#include "core/ops.h"

#include "core/check.h"

#include <string.h>

typedef struct patchify_ctx {
    tensor *out, *img;
    int B, C, H, W, P;
} patchify_ctx;

/* out (B, NP, C*P*P) from img (B, C, H, W); backward = the same walk reversed. */
static void patchify_walk(float *patches, float *img, int B, int C, int H, int W, int P,
                          bool to_patches) {
    int GW = W / P, NP = (H / P) * GW, D = C * P * P;
    for (int b = 0; b < B; b++)
        for (int n = 0; n < NP; n++) {
            int y0 = (n / GW) * P, x0 = (n % GW) * P;
            float *patch = patches + ((size_t)b * NP + n) * D;
            for (int c = 0; c < C; c++)
                for (int py = 0; py < P; py++) {
                    float *row = img + (((size_t)b * C + c) * H + y0 + py) * W + x0;
                    float *dst = patch + (c * P + py) * P;
                    if (to_patches)
                        memcpy(dst, row, sizeof(float) * P);
                    else
                        for (int px = 0; px < P; px++)
                            row[px] += dst[px];
                }
        }
}

static void patchify_backward_entry(void *p) {
    patchify_ctx *c = p;
    patchify_walk(c->out->grad, c->img->grad, c->B, c->C, c->H, c->W, c->P, false);
}

tensor *op_patchify(graph *g, tensor *images, int P) {
    HEED_ASSERT(images->ndim == 4 && P > 0);
    int B = images->shape[0], C = images->shape[1], H = images->shape[2], W = images->shape[3];
    HEED_ASSERT(H % P == 0 && W % P == 0);
    tensor *in[1] = {images};
    bool grad = graph_wants_grad(g, 1, in);
    int NP = (H / P) * (W / P);
    tensor *out = graph_new(g, DTYPE_F32, 3, (int[]){B, NP, C * P * P}, grad);
    patchify_walk(out->data, images->data, B, C, H, W, P, true);
    if (grad) {
        patchify_ctx *c = graph_record(g, patchify_backward_entry, sizeof *c, 1, in);
        *c = (patchify_ctx){out, images, B, C, H, W, P};
    }
    return out;
}

typedef struct prepend_ctx {
    tensor *out, *x, *tok;
    int B, T, C;
} prepend_ctx;

static void prepend_backward_entry(void *p) {
    prepend_ctx *c = p;
    int B = c->B, T = c->T, C = c->C;
    for (int b = 0; b < B; b++) {
        const float *dout_b = c->out->grad + (size_t)b * (T + 1) * C;
        if (c->tok->grad)
            for (int i = 0; i < C; i++)
                c->tok->grad[i] += dout_b[i];
        if (c->x->grad) {
            float *dx = c->x->grad + (size_t)b * T * C;
            for (int64_t i = 0; i < (int64_t)T * C; i++)
                dx[i] += dout_b[C + i];
        }
    }
}

tensor *op_prepend_token(graph *g, tensor *x, tensor *tok) {
    HEED_ASSERT(x->ndim == 3 && tok->numel == x->shape[2]);
    int B = x->shape[0], T = x->shape[1], C = x->shape[2];
    tensor *in[2] = {x, tok};
    bool grad = graph_wants_grad(g, 2, in);
    tensor *out = graph_new(g, DTYPE_F32, 3, (int[]){B, T + 1, C}, grad);
    for (int b = 0; b < B; b++) {
        float *o = out->data + (size_t)b * (T + 1) * C;
        memcpy(o, tok->data, sizeof(float) * C);
        memcpy(o + C, x->data + (size_t)b * T * C, sizeof(float) * T * C);
    }
    if (grad) {
        prepend_ctx *c = graph_record(g, prepend_backward_entry, sizeof *c, 2, in);
        *c = (prepend_ctx){out, x, tok, B, T, C};
    }
    return out;
}
