/*
 * ops_conv.c - 2-D convolution (PyTorch's Conv2d: cross-correlation with
 * stride, zero padding, dilation and groups) through im2col + cblas_sgemm.
 *
 * Per sample and group, the input patch matrix col (Cg*KH*KW, OH*OW) is
 * built in arena scratch and one sgemm gives out (OCg, OH*OW) = w (OCg,
 * Cg*KH*KW) @ col. Backward rebuilds col instead of keeping it from the
 * forward pass: a saved col is KH*KW times the input, which for a ResNet on a
 * batch of 128 would be gigabytes, while rebuilding it costs one pass over
 * the input next to an sgemm of the same size. A 1x1 stride-1 unpadded conv
 * (bottleneck blocks) is already a matrix product and skips im2col.
 */
#include "core/ops_vision.h"

#include "core/check.h"

#include <cblas.h>
#include <string.h>

typedef struct conv_dims {
    int B, C, H, W, OC, KH, KW, OH, OW;
    int stride, pad, dil, groups;
    int Cg, OCg, Kg; /* per group: input channels, output channels, col rows */
} conv_dims;

static bool conv_direct(const conv_dims *d) {
    return d->KH == 1 && d->KW == 1 && d->stride == 1 && d->pad == 0;
}

/* col (Cg*KH*KW, OH*OW) from x (Cg, H, W): row (c, kh, kw), column (oh, ow)
 * holds x[c, oh*S - P + kh*D, ow*S - P + kw*D], zero outside the image. */
static void im2col(float *col, const float *x, const conv_dims *d) {
    int OH = d->OH, OW = d->OW, H = d->H, W = d->W, S = d->stride;
    for (int c = 0; c < d->Cg; c++)
        for (int kh = 0; kh < d->KH; kh++)
            for (int kw = 0; kw < d->KW; kw++) {
                float *row = col + ((int64_t)(c * d->KH + kh) * d->KW + kw) * OH * OW;
                int dw = kw * d->dil - d->pad;
                /* valid ow: 0 <= ow*S + dw < W */
                int ow0 = dw >= 0 ? 0 : (-dw + S - 1) / S;
                int ow1 = W - dw <= 0 ? 0 : (W - dw - 1) / S + 1;
                if (ow1 > OW)
                    ow1 = OW;
                if (ow0 > ow1)
                    ow0 = ow1;
                for (int oh = 0; oh < OH; oh++) {
                    float *r = row + (int64_t)oh * OW;
                    int ih = oh * S - d->pad + kh * d->dil;
                    if (ih < 0 || ih >= H) {
                        memset(r, 0, sizeof(float) * OW);
                        continue;
                    }
                    const float *xr = x + ((int64_t)c * H + ih) * W + dw;
                    for (int ow = 0; ow < ow0; ow++)
                        r[ow] = 0.0f;
                    if (S == 1)
                        memcpy(r + ow0, xr + ow0, sizeof(float) * (ow1 - ow0));
                    else
                        for (int ow = ow0; ow < ow1; ow++)
                            r[ow] = xr[ow * S];
                    for (int ow = ow1; ow < OW; ow++)
                        r[ow] = 0.0f;
                }
            }
}

/* dx (Cg, H, W) += the scatter of dcol (Cg*KH*KW, OH*OW): im2col's adjoint. */
static void col2im_add(float *dx, const float *dcol, const conv_dims *d) {
    int OH = d->OH, OW = d->OW, H = d->H, W = d->W, S = d->stride;
    for (int c = 0; c < d->Cg; c++)
        for (int kh = 0; kh < d->KH; kh++)
            for (int kw = 0; kw < d->KW; kw++) {
                const float *row = dcol + ((int64_t)(c * d->KH + kh) * d->KW + kw) * OH * OW;
                int dw = kw * d->dil - d->pad;
                int ow0 = dw >= 0 ? 0 : (-dw + S - 1) / S;
                int ow1 = W - dw <= 0 ? 0 : (W - dw - 1) / S + 1;
                if (ow1 > OW)
                    ow1 = OW;
                for (int oh = 0; oh < OH; oh++) {
                    int ih = oh * S - d->pad + kh * d->dil;
                    if (ih < 0 || ih >= H)
                        continue;
                    const float *r = row + (int64_t)oh * OW;
                    float *xr = dx + ((int64_t)c * H + ih) * W + dw;
                    if (S == 1)
                        for (int ow = ow0; ow < ow1; ow++)
                            xr[ow] += r[ow];
                    else
                        for (int ow = ow0; ow < ow1; ow++)
                            xr[ow * S] += r[ow];
                }
            }
}

/* out (B, OC, OH, OW) = conv(x (B, C, H, W), w (OC, Cg, KH, KW)) + b (OC);
 * col is scratch of Kg * OH*OW floats (unused for a direct conv). */
static void conv2d_forward(float *out, float *col, const float *x, const float *w, const float *b,
                           const conv_dims *d) {
    int64_t ohw = (int64_t)d->OH * d->OW, hw = (int64_t)d->H * d->W;
    bool direct = conv_direct(d);
    for (int n = 0; n < d->B; n++)
        for (int gi = 0; gi < d->groups; gi++) {
            const float *xg = x + ((int64_t)n * d->C + (int64_t)gi * d->Cg) * hw;
            float *og = out + ((int64_t)n * d->OC + (int64_t)gi * d->OCg) * ohw;
            const float *src = xg;
            if (!direct) {
                im2col(col, xg, d);
                src = col;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d->OCg, (int)ohw, d->Kg, 1.0f,
                        w + (int64_t)gi * d->OCg * d->Kg, d->Kg, src, (int)ohw, 0.0f, og, (int)ohw);
            if (b)
                for (int o = 0; o < d->OCg; o++) {
                    float bo = b[gi * d->OCg + o];
                    float *r = og + (int64_t)o * ohw;
                    for (int64_t i = 0; i < ohw; i++)
                        r[i] += bo;
                }
        }
}

/* dx += conv^T(dout), dw (OC, Cg, KH, KW) += dout (*) x, db (OC) += sum of
 * dout over (B, OH, OW). Any of dx, dw, db may be NULL; col and dcol are
 * scratch of Kg * OH*OW floats each. */
static void conv2d_backward(float *dx, float *dw, float *db, float *col, float *dcol,
                            const float *dout, const float *x, const float *w, const conv_dims *d) {
    int64_t ohw = (int64_t)d->OH * d->OW, hw = (int64_t)d->H * d->W;
    bool direct = conv_direct(d);
    for (int n = 0; n < d->B; n++)
        for (int gi = 0; gi < d->groups; gi++) {
            const float *xg = x + ((int64_t)n * d->C + (int64_t)gi * d->Cg) * hw;
            const float *dog = dout + ((int64_t)n * d->OC + (int64_t)gi * d->OCg) * ohw;
            const float *wg = w + (int64_t)gi * d->OCg * d->Kg;
            if (db)
                for (int o = 0; o < d->OCg; o++) {
                    const float *r = dog + (int64_t)o * ohw;
                    float s = 0.0f;
                    for (int64_t i = 0; i < ohw; i++)
                        s += r[i];
                    db[gi * d->OCg + o] += s;
                }
            if (dw) {
                const float *src = xg;
                if (!direct) {
                    im2col(col, xg, d);
                    src = col;
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, d->OCg, d->Kg, (int)ohw, 1.0f,
                            dog, (int)ohw, src, (int)ohw, 1.0f, dw + (int64_t)gi * d->OCg * d->Kg,
                            d->Kg);
            }
            if (dx) {
                float *dxg = dx + ((int64_t)n * d->C + (int64_t)gi * d->Cg) * hw;
                if (direct) {
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d->Kg, (int)ohw, d->OCg,
                                1.0f, wg, d->Kg, dog, (int)ohw, 1.0f, dxg, (int)ohw);
                } else {
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d->Kg, (int)ohw, d->OCg,
                                1.0f, wg, d->Kg, dog, (int)ohw, 0.0f, dcol, (int)ohw);
                    col2im_add(dxg, dcol, d);
                }
            }
        }
}

typedef struct conv2d_ctx {
    tensor *out, *x, *w, *b;
    float *col, *dcol;
    conv_dims d;
} conv2d_ctx;

static void conv2d_backward_entry(void *p) {
    conv2d_ctx *c = p;
    conv2d_backward(c->x->grad, c->w->grad, c->b ? c->b->grad : NULL, c->col, c->dcol, c->out->grad,
                    c->x->data, c->w->data, &c->d);
}

tensor *op_conv2d(graph *g, tensor *x, tensor *w, tensor *b, conv2d_geom geom) {
    HEED_ASSERT(x->ndim == 4 && w->ndim == 4 && x->data && w->data);
    HEED_ASSERT(geom.stride >= 1 && geom.pad >= 0 && geom.dilation >= 1 && geom.groups >= 1);
    conv_dims d = {.B = x->shape[0],
                   .C = x->shape[1],
                   .H = x->shape[2],
                   .W = x->shape[3],
                   .OC = w->shape[0],
                   .KH = w->shape[2],
                   .KW = w->shape[3],
                   .stride = geom.stride,
                   .pad = geom.pad,
                   .dil = geom.dilation,
                   .groups = geom.groups};
    HEED_ASSERT(d.C % d.groups == 0 && d.OC % d.groups == 0);
    d.Cg = d.C / d.groups;
    d.OCg = d.OC / d.groups;
    HEED_ASSERT(w->shape[1] == d.Cg);
    HEED_ASSERT(!b || (b->ndim == 1 && b->shape[0] == d.OC));
    d.Kg = d.Cg * d.KH * d.KW;
    d.OH = (d.H + 2 * d.pad - d.dil * (d.KH - 1) - 1) / d.stride + 1;
    d.OW = (d.W + 2 * d.pad - d.dil * (d.KW - 1) - 1) / d.stride + 1;
    HEED_ASSERT(d.OH >= 1 && d.OW >= 1);
    tensor *in[3] = {x, w, b};
    bool grad = graph_wants_grad(g, 3, in);
    tensor *out = graph_new(g, DTYPE_F32, 4, (int[]){d.B, d.OC, d.OH, d.OW}, grad);
    size_t col_bytes = sizeof(float) * ((size_t)d.Kg * d.OH * d.OW + 1);
    arena *a = graph_arena(g);
    float *col = conv_direct(&d) ? NULL : arena_alloc(a, col_bytes);
    conv2d_forward(out->data, col, x->data, w->data, b ? b->data : NULL, &d);
    if (grad) {
        conv2d_ctx *c = graph_record(g, conv2d_backward_entry, sizeof *c, 3, in);
        float *dcol = x->grad && !conv_direct(&d) ? arena_alloc(a, col_bytes) : NULL;
        *c = (conv2d_ctx){out, x, w, b, col, dcol, d};
    }
    return out;
}
