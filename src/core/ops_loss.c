/*
 * ops_loss.c - cross-entropy with label smoothing, class weights and ignored
 * rows, and the accuracy count that goes with it.
 *
 * The softmax is fused into the loss: forward keeps one logsumexp per row,
 * and backward recomputes each probability as exp(x - lse). Saving the
 * probabilities instead would cost N*K floats, which for masked language
 * modelling (K = vocabulary) is the largest activation of the step.
 */
#include "core/ops.h"

#include "core/check.h"
#include "core/fastmath.h"

#include <math.h>

/* LANES: independent partial results per row reduction (see row_stats). */
enum { LABEL_IGNORE = -1, LANES = 16 };

/* Max, sum of exp(x - max) and sum of x over one row x (K). Each reduction
 * keeps LANES partial results: gcc may not reorder a float sum by itself,
 * so one accumulator would serialise on the add latency (K = 30k for a
 * vocabulary), while LANES fixed lanes vectorise and give the same bits for
 * any vector width. */
static void row_stats(const float *x, int K, float *max_out, float *sum_exp_out, float *sum_x_out) {
    int KL = K - K % LANES;
    float m[LANES], se[LANES], sx[LANES];
    for (int j = 0; j < LANES; j++) {
        m[j] = -INFINITY;
        se[j] = 0.0f;
        sx[j] = 0.0f;
    }
    for (int k = 0; k < KL; k += LANES)
        for (int j = 0; j < LANES; j++)
            m[j] = x[k + j] > m[j] ? x[k + j] : m[j];
    float maxv = -INFINITY;
    for (int j = 0; j < LANES; j++)
        maxv = m[j] > maxv ? m[j] : maxv;
    for (int k = KL; k < K; k++)
        maxv = x[k] > maxv ? x[k] : maxv;
    for (int k = 0; k < KL; k += LANES)
        for (int j = 0; j < LANES; j++) {
            se[j] += fast_expf(x[k + j] - maxv);
            sx[j] += x[k + j];
        }
    float sum_exp = 0.0f, sum_x = 0.0f;
    for (int j = 0; j < LANES; j++) {
        sum_exp += se[j];
        sum_x += sx[j];
    }
    for (int k = KL; k < K; k++) {
        sum_exp += fast_expf(x[k] - maxv);
        sum_x += x[k];
    }
    *max_out = maxv;
    *sum_exp_out = sum_exp;
    *sum_x_out = sum_x;
}

typedef struct cross_entropy_ctx {
    tensor *out, *logits;
    const tensor *labels;
    const float *class_weights; /* (K) or NULL: all 1 */
    float *lse;                 /* (N) logsumexp per row; ignored rows hold 0 */
    float smoothing;
    int N, K, n_valid;
} cross_entropy_ctx;

/* Rows whose label is not ignored; dies on a label outside [0, K). */
static int count_targets(const int32_t *labels, int N, int K) {
    int n = 0;
    for (int i = 0; i < N; i++) {
        HEED_ASSERT(labels[i] == LABEL_IGNORE || (labels[i] >= 0 && labels[i] < K));
        n += labels[i] != LABEL_IGNORE;
    }
    return n;
}

/* The weight of a row of class y: w[y], or 1 without weights. */
static inline float class_weight(const float *w, int y) {
    return w ? w[y] : 1.0f;
}

/* loss (1) = mean over rows with labels[n] != -1 of
 *     w[y] * ((1 - s) * (lse - x[y]) + s * (lse - mean_k x[k]))
 * which is w[y] * -sum_k q_k log p_k for q = (1 - s) onehot(y) + s / K, as
 * PyTorch's cross_entropy(label_smoothing=s, reduction='none') times w[y].
 * lse (N) is kept for backward. logits (N, K), labels (N), w (K) or NULL. */
static void cross_entropy_forward(float *loss, float *lse, const float *logits,
                                  const int32_t *labels, const float *w, float s, int N, int K,
                                  int n_valid) {
    double total = 0.0;
    float inv_K = 1.0f / (float)K;
    for (int n = 0; n < N; n++) {
        lse[n] = 0.0f;
        int y = labels[n];
        if (y == LABEL_IGNORE)
            continue;
        const float *x = logits + (size_t)n * K;
        float maxv, sum_exp, sum_x;
        row_stats(x, K, &maxv, &sum_exp, &sum_x);
        float l = maxv + logf(sum_exp);
        lse[n] = l;
        total += (double)(class_weight(w, y) * ((1.0f - s) * (l - x[y]) + s * (l - sum_x * inv_K)));
    }
    /* Every row ignored: the loss is 0, not 0/0, so a batch of padding
     * neither poisons the running loss nor moves the weights. */
    loss[0] = n_valid > 0 ? (float)(total / n_valid) : 0.0f;
}

/* dlogits (N, K) += dloss / n_valid * w[y] * (softmax(x) - q) on rows not
 * ignored */
static void cross_entropy_backward(float *dlogits, const float *dloss, const float *logits,
                                   const float *lse, const int32_t *labels, const float *w, float s,
                                   int N, int K, int n_valid) {
    if (n_valid == 0)
        return;
    float scale = dloss[0] / (float)n_valid;
    float smooth = s / (float)K;
    for (int n = 0; n < N; n++) {
        int y = labels[n];
        if (y == LABEL_IGNORE)
            continue;
        const float *x = logits + (size_t)n * K;
        float *d = dlogits + (size_t)n * K;
        float l = lse[n], sc = scale * class_weight(w, y);
        for (int k = 0; k < K; k++)
            d[k] += sc * (fast_expf(x[k] - l) - smooth);
        d[y] -= sc * (1.0f - s);
    }
}

static void cross_entropy_backward_entry(void *p) {
    cross_entropy_ctx *c = p;
    cross_entropy_backward(c->logits->grad, c->out->grad, c->logits->data, c->lse, c->labels->idata,
                           c->class_weights, c->smoothing, c->N, c->K, c->n_valid);
}

tensor *op_cross_entropy(graph *g, tensor *logits, const tensor *labels, float smoothing) {
    return op_cross_entropy_weighted(g, logits, labels, smoothing, NULL);
}

tensor *op_cross_entropy_weighted(graph *g, tensor *logits, const tensor *labels, float smoothing,
                                  const float *class_weights) {
    HEED_ASSERT(logits->dtype == DTYPE_F32 && logits->ndim >= 1 && labels->dtype == DTYPE_I32);
    HEED_ASSERT(smoothing >= 0.0f && smoothing <= 1.0f);
    /* (N, K) is the rows x columns view, so (B, T, V) logits with (B, T)
     * labels (masked language modelling) need no reshape. */
    int K = tensor_cols(logits), N = (int)tensor_rows(logits);
    HEED_ASSERT(K > 0 && labels->numel == N);
    int n_valid = count_targets(labels->idata, N, K);
    tensor *in[1] = {logits};
    bool grad = graph_wants_grad(g, 1, in);
    tensor *out = graph_new(g, DTYPE_F32, 1, (int[]){1}, grad);
    float *lse = arena_alloc(graph_arena(g), sizeof(float) * (size_t)(N > 0 ? N : 1));
    cross_entropy_forward(out->data, lse, logits->data, labels->idata, class_weights, smoothing, N,
                          K, n_valid);
    if (grad) {
        cross_entropy_ctx *c = graph_record(g, cross_entropy_backward_entry, sizeof *c, 1, in);
        *c = (cross_entropy_ctx){out, logits, labels, class_weights, lse, smoothing, N, K, n_valid};
    }
    return out;
}

/* Ties go to the first maximum, like torch.argmax. */
int64_t count_correct(const tensor *logits, const tensor *labels) {
    HEED_ASSERT(logits->dtype == DTYPE_F32 && labels->dtype == DTYPE_I32);
    int K = tensor_cols(logits);
    int64_t N = tensor_rows(logits);
    HEED_ASSERT(labels->numel == N);
    int64_t correct = 0;
    for (int64_t n = 0; n < N; n++) {
        int y = labels->idata[n];
        if (y == LABEL_IGNORE)
            continue;
        const float *x = logits->data + n * K;
        int best = 0;
        for (int k = 1; k < K; k++)
            if (x[k] > x[best])
                best = k;
        correct += best == y;
    }
    return correct;
}
