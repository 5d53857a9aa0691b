#include "app/trainer.h"

#include "core/check.h"
#include "core/ops.h"
#include "dist/check_dist.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void trainer_init(trainer *t, model *m, const comm *c, const adam_config *adam, bool zero,
                  bool exact, int micro_batch, float label_smoothing, uint64_t seed) {
    HEED_ASSERT(!exact || micro_batch > 0);
    memset(t, 0, sizeof *t);
    t->model = m;
    t->graph = graph_create(64u << 20, m->ps.count);
    graph_set_lazy_grads(t->graph, true); /* no zero-fill of overwritten gradients */
    t->adam = *adam;
    t->comm = c;
    t->micro_batch = micro_batch;
    t->label_smoothing = label_smoothing;
    t->seed = seed;
    t->exact = exact;
    grad_sync_init(&t->sync, c, m->ps.numel, zero, exact, 1u << 16);
    t->parts = xcalloc(c->size, sizeof *t->parts);
    buffer_sync_init(&t->buffers, c, &m->ps);
    trainer_set_comm(t, (size_t)BUCKET_KB_DEFAULT * 1024, true);
}

void trainer_set_comm(trainer *t, size_t bucket_bytes, bool overlap) {
    grad_sync_plan_buckets(&t->sync, &t->model->ps, bucket_bytes);
    t->overlap = overlap;
}

bool trainer_start_comm_thread(trainer *t) {
    HEED_ASSERT(!t->sync_bn); /* the BN sums call MPI from the main thread mid-backward */
    return grad_sync_start_thread(&t->sync);
}

void trainer_set_sync_bn(trainer *t) {
    if (t->sync_bn || t->comm->size == 1)
        return;
    batch_sum_init(&t->bn_sum, t->comm);
    graph_set_batch_sum(t->graph, batch_sum_fn, &t->bn_sum);
    t->sync_bn = true;
}

void trainer_set_class_weights(trainer *t, const float *w) {
    free(t->class_weights);
    t->class_weights = NULL;
    if (!w)
        return;
    size_t K = (size_t)t->model->shape.num_classes;
    t->class_weights = xmalloc(sizeof(float) * K);
    memcpy(t->class_weights, w, sizeof(float) * K);
}

void trainer_free(trainer *t) {
    free(t->class_weights);
    grad_sync_free(&t->sync);
    buffer_sync_free(&t->buffers);
    if (t->sync_bn)
        batch_sum_free(&t->bn_sum);
    graph_free(t->graph);
    free(t->parts);
}

/* The longest non-pad row of the n rows (at least 1). A micro-batch runs at
 * its own length, not the block's: the same samples then make the same
 * arithmetic whichever rank and block they land in (exact mode is bitwise
 * for text too), and short micro-batches do less work. */
static int micro_batch_length(const int32_t *rows, int n, int L, int32_t pad) {
    int T = 1;
    for (int i = 0; i < n; i++)
        for (int t = L - 1; t >= T; t--)
            if (rows[(int64_t)i * L + t] != pad) {
                T = t + 1;
                break;
            }
    return T;
}

/* rows (n, L) as (n, T): the same memory when T == L, else a copy in the
 * graph's arena. */
static int32_t *trimmed_rows(graph *g, const int32_t *rows, int n, int L, int T) {
    if (T == L)
        return (int32_t *)rows;
    int32_t *out = arena_alloc(graph_arena(g), sizeof *out * ((size_t)n * T + 1));
    for (int i = 0; i < n; i++)
        memcpy(out + (int64_t)i * T, rows + (int64_t)i * L, sizeof *out * T);
    return out;
}

void sample_block_views(graph *g, const model *m, const sample_block *blk, int r0, int n,
                        model_batch *mb, tensor **labels) {
    memset(mb, 0, sizeof *mb);
    mb->B = n;
    const data_shape *s = &m->shape;
    if (blk->images) {
        tensor *x = graph_new(g, DTYPE_F32, 0, NULL, false);
        x->ndim = 4;
        x->shape[0] = n;
        x->shape[1] = s->channels;
        x->shape[2] = s->height;
        x->shape[3] = s->width;
        x->numel = (int64_t)n * s->channels * s->height * s->width;
        x->data = (float *)blk->images + (int64_t)r0 * s->channels * s->height * s->width;
        mb->images = x;
    }
    if (blk->tokens) {
        const int32_t *rows = blk->tokens + (int64_t)r0 * blk->L;
        int T = blk->keep_length ? blk->L : micro_batch_length(rows, n, blk->L, s->pad_id);
        tensor *ids = graph_new(g, DTYPE_I32, 0, NULL, false);
        ids->ndim = 2;
        ids->shape[0] = n;
        ids->shape[1] = T;
        ids->numel = (int64_t)n * T;
        ids->idata = trimmed_rows(g, rows, n, blk->L, T);
        mb->tokens = ids;
        if (blk->segments) {
            tensor *seg = graph_new(g, DTYPE_I32, 0, NULL, false);
            *seg = *ids;
            seg->idata = trimmed_rows(g, blk->segments + (int64_t)r0 * blk->L, n, blk->L, T);
            mb->segments = seg;
        }
    }
    tensor *y = graph_new(g, DTYPE_I32, 0, NULL, false);
    y->ndim = 1;
    y->shape[0] = n;
    y->numel = n;
    y->idata = (int32_t *)blk->labels + r0;
    *labels = y;
}

/* x * 0 is NaN exactly for NaN and +-Inf; one vectorisable pass. */
static bool trainer_grads_finite(const float *g, int64_t n) {
    float acc = 0.0f;
    for (int64_t i = 0; i < n; i++)
        acc += g[i] * 0.0f;
    return acc == 0.0f;
}

step_result trainer_step(trainer *t, const sample_block *blk, int64_t global_batch, int64_t step,
                         float lr, float clip) {
    params *ps = &t->model->ps;
    graph *g = t->graph;
    params_zero_grad(ps);
    graph_set_training(g, true);
    int mb = t->micro_batch > 0 ? t->micro_batch : (blk->n > 0 ? blk->n : 1);
    double loss_sum = 0.0;
    bool in_range = true;
    for (int r0 = 0; r0 < blk->n; r0 += mb) {
        if (t->exact)
            params_zero_grad(ps);
        int n = blk->n - r0 < mb ? blk->n - r0 : mb;
        const bool last = r0 + n >= blk->n;
        graph_reset(g);
        graph_begin_step(g, t->seed, (uint64_t)step, blk->ids + r0, n);
        model_batch batch;
        tensor *labels;
        sample_block_views(g, t->model, blk, r0, n, &batch, &labels);
        tensor *loss =
            model_loss(t->model, g, &batch, labels, t->label_smoothing, t->class_weights, NULL);
        loss_sum += (double)loss->data[0] * n;
        /* Only the last micro-batch's backward overlaps the reduction: the
         * earlier ones still add to the gradients. */
        if (last)
            grad_sync_begin(&t->sync, ps, g, t->overlap);
        graph_backward(g, loss, (float)n / (float)global_batch);
        if (t->exact && !last)
            in_range &= grad_sync_accumulate_exact(&t->sync, ps->grad, ps->numel);
    }
    /* Every rank reduces every bucket, whatever its loss: the collectives
     * must match before anyone can give up on the step. */
    in_range &= grad_sync_finish(&t->sync, ps);
    /* Backward can overflow while the loss is finite. A NaN/Inf in any
     * rank's gradient reaches the reduced sum of its element, so the owner
     * of each reduced range checks it and votes below, before any update. */
    if (!t->exact)
        in_range &= trainer_grads_finite(ps->grad + t->sync.lo, t->sync.hi - t->sync.lo);
    /* before the step: ZeRO's parameter all-gather would stitch buffers
     * together from different ranks (dist/buffer_sync.h) */
    buffer_sync_average(&t->buffers, ps);
    step_result r;
    r.loss = comm_sum_ordered(t->comm, loss_sum, t->parts) / (double)global_batch;
    /* One verdict for all ranks: a rank whose gradient left the fixed-point
     * range counts as non-finite everywhere. */
    double bad = comm_sum_ordered(t->comm, in_range ? 0.0 : 1.0, t->parts);
    r.finite = isfinite(r.loss) && bad == 0.0;
    if (!r.finite) {
        grad_sync_discard(&t->sync);
        r.grad_norm = NAN;
        return r;
    }
    r.grad_norm = t->exact ? grad_sync_step_exact(&t->sync, ps, &t->adam, lr, clip)
                           : grad_sync_step(&t->sync, ps, &t->adam, lr, clip);
    r.finite = isfinite(r.grad_norm);
    return r;
}

void trainer_eval_block(trainer *t, const sample_block *blk, double *loss_sum, int64_t *confusion) {
    graph *g = t->graph;
    int K = t->model->shape.num_classes;
    int mb = t->micro_batch > 0 ? t->micro_batch : 256;
    graph_set_training(g, false);
    graph_set_grad(g, false);
    for (int r0 = 0; r0 < blk->n; r0 += mb) {
        int n = blk->n - r0 < mb ? blk->n - r0 : mb;
        graph_reset(g);
        graph_begin_step(g, t->seed, 0, blk->ids + r0, n);
        model_batch batch;
        tensor *labels;
        sample_block_views(g, t->model, blk, r0, n, &batch, &labels);
        if (t->model->kind->loss) {
            /* A model with its own objective (MLM) has no K-class logits:
             * its right/wrong counts go to row 0 of the confusion matrix,
             * so accuracy is its own (masked-token accuracy; macro-F1 then
             * means nothing). */
            model_loss_stats st = {0};
            tensor *loss = model_loss(t->model, g, &batch, labels, 0.0f, NULL, &st);
            *loss_sum += (double)loss->data[0] * n;
            confusion[0] += st.correct;
            confusion[K > 1 ? 1 : 0] += st.count - st.correct;
            continue;
        }
        tensor *logits = model_forward(t->model, g, &batch, NULL);
        tensor *loss = op_cross_entropy(g, logits, labels, 0.0f);
        *loss_sum += (double)loss->data[0] * n;
        for (int i = 0; i < n; i++) {
            const float *row = logits->data + (int64_t)i * K;
            int best = 0;
            for (int k = 1; k < K; k++)
                if (row[k] > row[best])
                    best = k;
            confusion[labels->idata[i] * K + best]++;
        }
    }
    graph_set_grad(g, true);
}
