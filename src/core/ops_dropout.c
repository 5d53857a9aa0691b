/*
 * ops_dropout.c - inverted dropout with a mask keyed per sample.
 *
 * Element (i1, .., ik) of sample b is kept when lane ik % 4 (16 bits) of
 * rng_bits(key_b, c) is >= round(p * 2^16), with key_b =
 * rng_key(graph_rng_stream(g), graph_sample_id(g, b), 0) and c the
 * coordinates packed in 20-bit fields (i1 << 40 | i2 << 20 | ik / 4). The
 * mask is thus a pure function of (seed, step, op number, global sample id,
 * coordinates): it does not change with the rank, the micro-batch, the row
 * a sample lands in, or how far the batch is padded (a token's mask is the
 * same at T = 12 and T = 64, attention probabilities included), which keeps
 * a step's arithmetic identical at any rank count. Kept elements are scaled by
 * 1 / (1 - p) so the expectation is unchanged and eval needs no rescaling.
 */
#include "core/ops.h"

#include "core/check.h"
#include "core/rng.h"

/* The draws are scalar calls (64-bit mixing), the rest of the op is SIMD. */
void dropout_draw_keep(uint8_t *keep, uint64_t key, float p, int nd, const int *dims) {
    int last = nd > 0 ? dims[nd - 1] : 1;
    /* p in steps of 2^-16; p = 1 gives 65536, which no 16-bit lane reaches */
    uint32_t threshold = (uint32_t)(p * 65536.0f + 0.5f);
    int64_t rows = 1;
    for (int d = 0; d + 1 < nd; d++)
        rows *= dims[d];
    int coord[TENSOR_MAX_DIMS] = {0};
    for (int64_t r = 0; r < rows; r++) {
        uint64_t base = 0;
        for (int d = 0; d + 1 < nd; d++)
            base = (base << DROPOUT_COORD_BITS) | (uint64_t)coord[d];
        base <<= DROPOUT_COORD_BITS;
        /* One 64-bit draw serves 4 consecutive elements of the last
         * dimension, 16 bits each: a quarter of the draws, which were half
         * of a ViT step at p = 0.1. */
        uint8_t *row = keep + r * last;
        for (int i = 0; i < last; i += 4) {
            uint64_t bits = rng_bits(key, base | (uint64_t)(i >> 2));
            for (int lane = 0; lane < 4 && i + lane < last; lane++)
                row[i + lane] = ((bits >> (16 * lane)) & 0xffffu) >= threshold;
        }
        for (int d = nd - 2; d >= 0 && ++coord[d] == dims[d]; d--)
            coord[d] = 0;
    }
}

/* out (N) = x * keep * scale */
static void dropout_forward(float *out, const float *x, const uint8_t *keep, float scale,
                            int64_t n) {
    for (int64_t i = 0; i < n; i++)
        out[i] = x[i] * ((float)keep[i] * scale);
}

/* dx (N) += dout * keep * scale */
static void dropout_backward(float *dx, const float *dout, const uint8_t *keep, float scale,
                             int64_t n) {
    for (int64_t i = 0; i < n; i++)
        dx[i] += dout[i] * ((float)keep[i] * scale);
}

typedef struct dropout_ctx {
    tensor *out, *x;
    uint8_t *keep; /* (N), 0 or 1 */
    float scale;
} dropout_ctx;

static void dropout_backward_entry(void *p) {
    dropout_ctx *c = p;
    if (c->x->grad)
        dropout_backward(c->x->grad, c->out->grad, c->keep, c->scale, c->x->numel);
}

tensor *op_dropout(graph *g, tensor *x, float p) {
    HEED_ASSERT(p >= 0.0f && p <= 1.0f);
    if (!graph_training(g) || p == 0.0f)
        return x;
    HEED_ASSERT(x->ndim >= 1 && x->data);
    tensor *in[1] = {x};
    bool grad = graph_wants_grad(g, 1, in);
    tensor *out = graph_new_like(g, x, grad);
    /* + 1: an empty batch still gets a valid pointer */
    uint8_t *keep = arena_alloc(graph_arena(g), (size_t)x->numel + 1);
    /* drawn even for an empty batch, so later ops' numbers do not shift */
    uint64_t stream = graph_rng_stream(g);
    int B = x->shape[0];
    int64_t per_sample = B > 0 ? x->numel / B : 0;
    for (int d = 1; d < x->ndim; d++)
        HEED_ASSERT(x->shape[d] < (1 << DROPOUT_COORD_BITS));
    for (int b = 0; b < B; b++) {
        uint64_t key = rng_key(stream, (uint64_t)graph_sample_id(g, b), 0);
        dropout_draw_keep(keep + b * per_sample, key, p, x->ndim - 1, x->shape + 1);
    }
    /* p == 1 drops everything: scale 0 rather than inf * 0 = NaN */
    float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
    dropout_forward(out->data, x->data, keep, scale, x->numel);
    if (grad) {
        dropout_ctx *c = graph_record(g, dropout_backward_entry, sizeof *c, 1, in);
        *c = (dropout_ctx){out, x, keep, scale};
    }
    return out;
}
