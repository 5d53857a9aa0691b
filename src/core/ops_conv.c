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
#include "core/conv_direct.h"
#include "core/conv_strided.h"
#include "core/conv_winograd.h"

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

/* Stride 1 and output size = input size (3x3 pad 1, 7x7 pad 3, dilated
 * alike): a col row is then the input plane shifted by one offset, and the
 * input gradient is the same kind of conv of dout with the flipped kernel. */
static bool conv_same(const conv_dims *d) {
    return d->stride == 1 && d->OH == d->H && d->OW == d->W && !conv_direct(d);
}

/* Row (kh, kw) of a same-geometry col for one plane x (H*W): row[oh*W + ow]
 * = x[oh + dh, ow + dw] with dh, dw = k*dil - pad, zero outside the plane.
 * One contiguous copy of the shifted plane, then the rows and columns that
 * fell outside are zeroed: per-row copies of ~W floats cost more in call
 * overhead than in bytes. */
static void im2col_same_row(float *row, const float *x, int H, int W, int dh, int dw) {
    int64_t hw = (int64_t)H * W, off = (int64_t)dh * W + dw;
    /* valid rows oh0 <= oh < oh1, clamped to the plane: a 7x7 kernel can
     * overhang a 2x2 map on both sides */
    int oh0 = dh < 0 ? -dh : 0, oh1 = dh > 0 ? H - dh : H;
    if (oh0 > H)
        oh0 = H;
    if (oh1 < oh0)
        oh1 = oh0;
    int64_t p0 = (int64_t)oh0 * W, p1 = (int64_t)oh1 * W;
    /* the copied span, clipped to the plane; what it leaves out is in the
     * wrapped columns, zeroed below */
    int64_t c0 = p0 + off < 0 ? -off : p0, c1 = p1 + off > hw ? hw - off : p1;
    if (c0 > p1)
        c0 = p1;
    if (c1 < c0)
        c1 = c0;
    memset(row, 0, sizeof(float) * c0);
    memcpy(row + c0, x + c0 + off, sizeof(float) * (c1 - c0));
    memset(row + c1, 0, sizeof(float) * (hw - c1));
    if (dw < 0)
        for (int oh = oh0; oh < oh1; oh++)
            for (int ow = 0; ow < -dw && ow < W; ow++)
                row[(int64_t)oh * W + ow] = 0.0f;
    else if (dw > 0)
        for (int oh = oh0; oh < oh1; oh++)
            for (int ow = W - dw < 0 ? 0 : W - dw; ow < W; ow++)
                row[(int64_t)oh * W + ow] = 0.0f;
}

/* col (Cg*KH*KW, OH*OW) from x (Cg, H, W): row (c, kh, kw), column (oh, ow)
 * holds x[c, oh*S - P + kh*D, ow*S - P + kw*D], zero outside the image. */
static void im2col(float *col, const float *x, const conv_dims *d) {
    int OH = d->OH, OW = d->OW, H = d->H, W = d->W, S = d->stride;
    if (conv_same(d)) {
        for (int c = 0; c < d->Cg; c++)
            for (int kh = 0; kh < d->KH; kh++)
                for (int kw = 0; kw < d->KW; kw++)
                    im2col_same_row(col + ((int64_t)(c * d->KH + kh) * d->KW + kw) * OH * OW,
                                    x + (int64_t)c * H * W, H, W, kh * d->dil - d->pad,
                                    kw * d->dil - d->pad);
        return;
    }
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

/* The dims of the conv that gives a same-geometry conv's input gradient:
 * dout (OC channels) in, the C input channels out, same kernel and padding. */
static conv_dims conv_transposed_dims(const conv_dims *d) {
    conv_dims t = *d;
    t.C = d->OC;
    t.OC = d->C;
    t.Cg = d->OCg;
    t.OCg = d->Cg;
    t.Kg = d->OCg * d->KH * d->KW;
    return t;
}

/* wf (groups, Cg, OCg*KH*KW): wf[g][c][(o, kh, kw)] = w[g*OCg + o][c][KH-1-kh][KW-1-kw],
 * the weights of conv_transposed_dims's conv. */
static void flip_kernel(float *wf, const float *w, const conv_dims *d) {
    int kk = d->KH * d->KW;
    for (int gi = 0; gi < d->groups; gi++)
        for (int o = 0; o < d->OCg; o++)
            for (int c = 0; c < d->Cg; c++) {
                const float *src = w + ((int64_t)(gi * d->OCg + o) * d->Cg + c) * kk;
                float *dst = wf + ((int64_t)(gi * d->Cg + c) * d->OCg + o) * kk;
                for (int k = 0; k < kk; k++)
                    dst[k] = src[kk - 1 - k];
            }
}

/* out (OCg, ohw) = b per row, or with `acc` += b: the bias goes in first,
 * and the conv then adds onto it. */
static void bias_fill(float *out, const float *b, bool acc, int OCg, int64_t ohw) {
    for (int o = 0; o < OCg; o++) {
        float *r = out + (int64_t)o * ohw;
        if (acc)
            for (int64_t i = 0; i < ohw; i++)
                r[i] += b[o];
        else
            for (int64_t i = 0; i < ohw; i++)
                r[i] = b[o];
    }
}

static conv_direct_geom direct_geom(const conv_dims *d) {
    return (conv_direct_geom){d->Cg, d->OCg, d->H, d->W, d->KH, d->KW, d->pad, d->dil};
}

static bool conv_direct_ok(const conv_dims *d) {
    conv_direct_geom g = direct_geom(d);
    return conv_same(d) && conv_direct_usable(&g);
}

static conv_strided_geom strided_geom(const conv_dims *d) {
    return (conv_strided_geom){d->Cg, d->OCg, d->H,  d->W,      d->OH,
                               d->OW, d->KH,  d->KW, d->stride, d->pad};
}

/* A strided conv on the direct tiles (conv_strided.h) */
static bool conv_strided_ok(const conv_dims *d) {
    conv_strided_geom g = strided_geom(d);
    return d->stride > 1 && d->dil == 1 && conv_strided_usable(&g);
}

/* conv_direct_run (for a 3x3 kernel, conv_winograd_run; for a strided conv,
 * conv_strided_run) over every sample and group: out (= or with `acc` +=)
 * conv(x, w) + b. With `flip`, w is the forward conv's weights and d the
 * transposed conv's dims (conv_transposed_dims). scratch holds
 * conv_direct_floats(d). */
static void conv2d_forward_direct(float *out, float *scratch, const float *x, const float *w,
                                  bool flip, const float *b, bool acc, const conv_dims *d) {
    conv_direct_geom g = direct_geom(d);
    conv_strided_geom sg = strided_geom(d);
    int64_t ohw = (int64_t)d->OH * d->OW, hw = (int64_t)d->H * d->W,
            wg = (int64_t)d->OCg * d->Cg * d->KH * d->KW;
    bool strided = d->stride > 1, wino = !strided && conv_winograd_usable(&g);
    size_t packed = strided ? conv_strided_packed_floats(&sg)
                    : wino  ? conv_winograd_packed_floats(&g)
                            : conv_direct_packed_floats(&g);
    float *wp = scratch, *work = scratch + packed * d->groups;
    for (int gi = 0; gi < d->groups; gi++) {
        if (strided)
            conv_strided_pack(wp + packed * gi, w + gi * wg, &sg);
        else if (wino)
            conv_winograd_pack(wp + packed * gi, w + gi * wg, flip, &g);
        else
            conv_direct_pack(wp + packed * gi, w + gi * wg, flip, &g);
    }
    for (int n = 0; n < d->B; n++)
        for (int gi = 0; gi < d->groups; gi++) {
            float *og = out + ((int64_t)n * d->OC + (int64_t)gi * d->OCg) * ohw;
            const float *xg = x + ((int64_t)n * d->C + (int64_t)gi * d->Cg) * hw;
            if (b)
                bias_fill(og, b + gi * d->OCg, acc, d->OCg, ohw);
            if (strided)
                conv_strided_run(og, acc || b, xg, wp + packed * gi, work, &sg);
            else if (wino)
                conv_winograd_run(og, acc || b, xg, wp + packed * gi, work, &g);
            else
                conv_direct_run(og, acc || b, xg, wp + packed * gi, work, &g);
        }
}

/* Floats of scratch conv2d_forward_direct needs for d. */
static size_t conv_direct_floats(const conv_dims *d) {
    if (d->stride > 1) {
        conv_strided_geom sg = strided_geom(d);
        return conv_strided_packed_floats(&sg) * d->groups + conv_strided_scratch_floats(&sg);
    }
    conv_direct_geom g = direct_geom(d);
    size_t direct = conv_direct_packed_floats(&g) * d->groups + conv_direct_scratch_floats(&g);
    size_t wino = conv_winograd_packed_floats(&g) * d->groups + conv_winograd_scratch_floats(&g);
    return conv_winograd_usable(&g) && wino > direct ? wino : direct;
}

/* out (B, OC, OH, OW) = conv(x (B, C, H, W), w (OC, Cg, KH, KW)) + b (OC);
 * with `acc`, out += that instead. col is scratch of Kg * OH*OW floats
 * (unused for a direct conv). */
static void conv2d_forward(float *out, float *col, const float *x, const float *w, const float *b,
                           bool acc, const conv_dims *d) {
    if (conv_direct_ok(d) || conv_strided_ok(d)) {
        conv2d_forward_direct(out, col, x, w, false, b, acc, d);
        return;
    }
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
            float beta = acc ? 1.0f : 0.0f;
            if (b) {
                /* the bias as sgemm's C: saves OpenBLAS's zeroing pass */
                bias_fill(og, b + gi * d->OCg, acc, d->OCg, ohw);
                beta = 1.0f;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d->OCg, (int)ohw, d->Kg, 1.0f,
                        w + (int64_t)gi * d->OCg * d->Kg, d->Kg, src, (int)ohw, beta, og, (int)ohw);
        }
}

/* dx (= when dx_overwrite, else +=) conv^T(dout), dw (OC, Cg, KH, KW) +=
 * dout (*) x, db (OC) += sum of dout over (B, OH, OW). Any of dx, dw, db may
 * be NULL. col and dcol are scratch of conv_scratch_floats each; wf is
 * scratch of w's size (same geometry only). */
static void conv2d_backward(float *dx, bool dx_overwrite, float *dw, float *db, float *col,
                            float *dcol, float *wf, const float *dout, const float *x,
                            const float *w, const conv_dims *d) {
    int64_t ohw = (int64_t)d->OH * d->OW, hw = (int64_t)d->H * d->W;
    bool direct = conv_direct(d), same = conv_same(d), strided = conv_strided_ok(d);
    conv_direct_geom dg = direct_geom(d);
    conv_strided_geom sg = strided_geom(d);
    bool dw_direct = same && conv_direct_dw_usable(&dg);
    if (dx && same) {
        /* dx = conv(dout, flipped w): one sgemm with K = OCg*KH*KW straight
         * into dx, instead of a K = OCg sgemm into dcol and a col2im pass */
        conv_dims t = conv_transposed_dims(d);
        if (conv_direct_ok(&t)) {
            conv2d_forward_direct(dx, dcol, dout, w, true, NULL, !dx_overwrite, &t);
        } else {
            flip_kernel(wf, w, d);
            conv2d_forward(dx, dcol, dout, wf, NULL, !dx_overwrite, &t);
        }
        dx = NULL;
    } else if (dx && dx_overwrite) {
        memset(dx, 0, sizeof(float) * d->B * d->C * hw);
    }
    if (dx && strided) {
        size_t packed = conv_strided_packed_floats(&sg);
        float *wp = dcol, *work = dcol + packed * d->groups;
        for (int gi = 0; gi < d->groups; gi++)
            conv_strided_dx_pack(wp + packed * gi, w + (int64_t)gi * d->OCg * d->Kg, &sg);
        for (int n = 0; n < d->B; n++)
            for (int gi = 0; gi < d->groups; gi++)
                conv_strided_dx(dx + ((int64_t)n * d->C + (int64_t)gi * d->Cg) * hw,
                                dout + ((int64_t)n * d->OC + (int64_t)gi * d->OCg) * ohw,
                                wp + packed * gi, work, &sg);
        dx = NULL;
    }
    if (dw && strided) {
        for (int gi = 0; gi < d->groups; gi++)
            conv_strided_dw(dw + (int64_t)gi * d->OCg * d->Kg, dout + (int64_t)gi * d->OCg * ohw,
                            (int64_t)d->OC * ohw, x + (int64_t)gi * d->Cg * hw, (int64_t)d->C * hw,
                            d->B, col, &sg);
        dw = NULL;
    }
    if (dw && dw_direct) {
        void (*dw_run)(float *, const float *, int64_t, const float *, int64_t, int, float *,
                       const conv_direct_geom *) =
            conv_winograd_usable(&dg) ? conv_winograd_dw : conv_direct_dw;
        for (int gi = 0; gi < d->groups; gi++)
            dw_run(dw + (int64_t)gi * d->OCg * d->Kg, dout + (int64_t)gi * d->OCg * ohw,
                   (int64_t)d->OC * ohw, x + (int64_t)gi * d->Cg * hw, (int64_t)d->C * hw, d->B,
                   col, &dg);
        dw = NULL;
    }
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
    float *col, *dcol, *wf;
    conv_dims d;
} conv2d_ctx;

static void conv2d_backward_entry(void *p) {
    conv2d_ctx *c = p;
    float *db = c->b ? c->b->grad : NULL;
    /* dw and db first: claiming x before reading x->data is safe, but the
     * claim must come right before the write (graph.h) */
    conv2d_backward(NULL, false, c->w->grad, db, c->col, c->dcol, c->wf, c->out->grad, c->x->data,
                    c->w->data, &c->d);
    if (c->x->grad)
        conv2d_backward(c->x->grad, graph_grad_claim(c->x), NULL, NULL, c->col, c->dcol, c->wf,
                        c->out->grad, c->x->data, c->w->data, &c->d);
}

/* Floats of col / dcol scratch: the patch matrix of the conv, or of the
 * transposed conv that gives a same-geometry conv's input gradient. */
static size_t conv_scratch_floats(const conv_dims *d) {
    size_t n = (size_t)d->Kg * d->OH * d->OW;
    if (conv_strided_ok(d)) {
        size_t ns = conv_direct_floats(d);
        n = n > ns ? n : ns;
    }
    if (conv_same(d)) {
        conv_dims t = conv_transposed_dims(d);
        conv_direct_geom g = direct_geom(d);
        size_t nt = (size_t)t.Kg * t.OH * t.OW, nd = conv_direct_floats(d),
               ntd = conv_direct_floats(&t),
               ndw = conv_winograd_usable(&g) ? conv_winograd_dw_scratch_floats(&g)
                                              : conv_direct_dw_scratch_floats(&g);
        n = n > nt ? n : nt;
        n = n > ndw ? n : ndw;
        n = n > nd ? n : nd;
        n = n > ntd ? n : ntd;
    }
    return n + 1;
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
    size_t col_bytes = sizeof(float) * conv_scratch_floats(&d);
    arena *a = graph_arena(g);
    float *col = conv_direct(&d) ? NULL : arena_alloc(a, col_bytes);
    conv2d_forward(out->data, col, x->data, w->data, b ? b->data : NULL, false, &d);
    if (grad) {
        conv2d_ctx *c = graph_record_claims(g, conv2d_backward_entry, sizeof *c, 3, in, 1u);
        bool dx = x->grad && !conv_direct(&d);
        float *dcol = dx ? arena_alloc(a, col_bytes) : NULL;
        float *wf = dx && conv_same(&d) ? arena_alloc(a, sizeof(float) * w->numel) : NULL;
        *c = (conv2d_ctx){out, x, w, b, col, dcol, wf, d};
    }
    return out;
}
