#include "app/explain.h"

#include "app/explain_draw.h"
#include "app/explain_file.h"
#include "app/trainer.h"
#include "core/check.h"
#include "dist/dataset.h"
#include "models/attention_sink.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Samples per forward pass. */
enum { EXPLAIN_CHUNK = 32 };

typedef struct explain_run_state {
    model *m;
    const dataset *ds;
    const explain_request *rq;
    graph *g;
    explain_file *file;
    FILE *html;
    int64_t n;
    int L;             /* text: every chunk is padded to this many tokens */
    int32_t *tokens;   /* [EXPLAIN_CHUNK, L] padded copy */
    int32_t *segments; /* [EXPLAIN_CHUNK, L] or NULL */
    float *rollout;    /* [EXPLAIN_CHUNK, T] */
    float *scratch;    /* 3 T T for the rollout, and per-sample maps */
    float *valid;      /* [L] */
    float *probs;      /* [K] */
    int T;             /* rollout tokens (0: none) */
} explain_run_state;

static int64_t longest_row(const dataset *ds, dataset_split split, int64_t first, int64_t last) {
    const int32_t *lengths = ds->splits[split].lengths;
    if (!lengths)
        return ds->max_len;
    int64_t L = 1;
    for (int64_t i = first; i <= last; i++)
        if (lengths[i] > L)
            L = lengths[i];
    return L;
}

/* A copy of blk with its tokens padded to st->L columns, so every chunk's
 * maps have the same shape in the file. */
static sample_block pad_tokens(explain_run_state *st, const sample_block *blk) {
    sample_block out = *blk;
    if (!blk->tokens)
        return out;
    HEED_ASSERT(blk->L <= st->L);
    for (int i = 0; i < blk->n; i++) {
        int32_t *row = st->tokens + (int64_t)i * st->L;
        memcpy(row, blk->tokens + (int64_t)i * blk->L, sizeof *row * blk->L);
        for (int t = blk->L; t < st->L; t++)
            row[t] = st->ds->pad_id;
        if (blk->segments) {
            int32_t *seg = st->segments + (int64_t)i * st->L;
            memcpy(seg, blk->segments + (int64_t)i * blk->L, sizeof *seg * blk->L);
            for (int t = blk->L; t < st->L; t++)
                seg[t] = 0;
        }
    }
    out.tokens = st->tokens;
    out.segments = blk->segments ? st->segments : NULL;
    out.L = st->L;
    out.keep_length = true;
    return out;
}

static void write_maps(explain_run_state *st, const attention_sink *sink, int64_t row0, int n) {
    for (int i = 0; i < sink->count; i++) {
        const attention_map *am = &sink->maps[i];
        char name[128];
        snprintf(name, sizeof name, "attention/%s", am->name);
        explain_file_write_rows(st->file, name, attention_kind_name(am->kind), DTYPE_F32,
                                am->probs->ndim - 1, am->probs->shape + 1, row0, n,
                                am->probs->data);
    }
}

/* The per-sample heatmap over the image: the rollout's patch tokens for a
 * ViT, else the last spatial gate (CBAM), else the cross-attention of all
 * text queries over the image patches (fusion). NULL when there is none. */
static const float *image_heat(explain_run_state *st, const attention_sink *sink, int b, int *gh,
                               int *gw) {
    if (sink->input == ATTENTION_INPUT_PATCHES && st->T > 0) {
        *gh = sink->grid_h;
        *gw = sink->grid_w;
        return st->rollout + (int64_t)b * st->T + sink->first_patch;
    }
    for (int i = sink->count - 1; i >= 0; i--) {
        const attention_map *am = &sink->maps[i];
        if (am->kind == ATTENTION_SPATIAL) {
            *gh = am->probs->shape[1];
            *gw = am->probs->shape[2];
            return am->probs->data + (int64_t)b * *gh * *gw;
        }
    }
    return NULL;
}

/* Per-token weights for text: the rollout for Transformer models, else the
 * additive attention pooling weights. NULL when there is none. */
static const float *token_weights(explain_run_state *st, const attention_sink *sink, int b) {
    if (sink->input == ATTENTION_INPUT_TOKENS && st->T > 0)
        return st->rollout + (int64_t)b * st->T;
    for (int i = sink->count - 1; i >= 0; i--) {
        const attention_map *am = &sink->maps[i];
        if (am->kind == ATTENTION_ADDITIVE && am->probs->shape[1] == st->L)
            return am->probs->data + (int64_t)b * st->L;
    }
    return NULL;
}

static int draw_sample(explain_run_state *st, const attention_sink *sink, const sample_block *blk,
                       int b, const explain_caption *cap, char *err, size_t errlen) {
    const dataset *ds = st->ds;
    char name[64], path[4096];
    snprintf(name, sizeof name, "sample_%lld.png", cap->sample);
    snprintf(path, sizeof path, "%s/%s", st->rq->out_dir, name);
    int gh = 0, gw = 0;
    const float *heat = blk->images ? image_heat(st, sink, b, &gh, &gw) : NULL;
    const float *weights = blk->tokens ? token_weights(st, sink, b) : NULL;
    if (heat) {
        const float *img = blk->images + (int64_t)b * ds->channels * ds->height * ds->width;
        if (!explain_draw_image(path, img, ds->channels, ds->height, ds->width, heat, gh, gw,
                                cap)) {
            snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
            return HEED_EXIT_BAD_INPUT;
        }
        explain_html_image(st->html, name, cap);
    }
    if (weights) {
        const int32_t *ids = blk->tokens + (int64_t)b * blk->L;
        enum { MAX_WORDS = 4096 };
        const char *words[MAX_WORDS];
        float w[MAX_WORDS];
        int len = 0;
        /* [CLS] and [SEP] stay in the file but not in the picture: the token
         * the classifier reads takes most of its own rollout and would wash
         * out the shading of the words. */
        for (int t = 0; t < blk->L && len < MAX_WORDS; t++)
            if (ids[t] != ds->pad_id && ids[t] != ds->cls_id && ids[t] != ds->sep_id) {
                words[len] = ds->vocab[ids[t]];
                w[len++] = weights[t];
            }
        if (heat)
            snprintf(path, sizeof path, "%s/sample_%lld_text.png", st->rq->out_dir, cap->sample);
        if (!explain_draw_tokens(path, words, w, len, cap)) {
            snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
            return HEED_EXIT_BAD_INPUT;
        }
        explain_html_tokens(st->html, words, w, len, cap);
    }
    return 0;
}

static int explain_chunk(explain_run_state *st, const sample_block *raw, int64_t row0, char *err,
                         size_t errlen) {
    const sample_block blk = pad_tokens(st, raw);
    int n = blk.n, K = st->m->shape.num_classes;
    graph *g = st->g;
    graph_reset(g);
    graph_begin_step(g, st->rq->seed, 0, blk.ids, n);
    model_batch mb;
    tensor *labels;
    sample_block_views(g, st->m, &blk, 0, n, &mb, &labels);
    attention_sink sink;
    attention_sink_clear(&sink);
    tensor *logits = model_forward(st->m, g, &mb, &sink);
    if (sink.count == 0) {
        snprintf(err, errlen,
                 "model '%s' records no attention maps: heed explain needs a model with attention "
                 "(heed models lists them)",
                 st->m->kind->name);
        return HEED_EXIT_BAD_INPUT;
    }
    if (row0 == 0) {
        st->T = attention_rollout_tokens(&sink, "");
        if (st->T > 0) {
            st->rollout = xcalloc((size_t)EXPLAIN_CHUNK * st->T, sizeof *st->rollout);
            st->scratch = xcalloc((size_t)3 * st->T * st->T, sizeof *st->scratch);
        }
    }
    write_maps(st, &sink, row0, n);
    int32_t pred[EXPLAIN_CHUNK];
    for (int b = 0; b < n; b++) {
        if (st->T > 0) {
            const float *valid = NULL;
            if (blk.tokens && sink.input == ATTENTION_INPUT_TOKENS) {
                for (int t = 0; t < st->T; t++)
                    st->valid[t] = blk.tokens[(int64_t)b * blk.L + t] != st->ds->pad_id;
                valid = st->valid;
            }
            attention_rollout(&sink, "", b, valid, st->rollout + (int64_t)b * st->T, st->scratch);
        }
        const float *row = logits->data + (int64_t)b * K;
        int best = 0;
        for (int k = 1; k < K; k++)
            if (row[k] > row[best])
                best = k;
        double z = 0.0;
        for (int k = 0; k < K; k++)
            z += exp((double)row[k] - row[best]);
        for (int k = 0; k < K; k++)
            st->probs[k] = (float)(exp((double)row[k] - row[best]) / z);
        pred[b] = best;
        explain_file_write_rows(st->file, "probabilities", NULL, DTYPE_F32, 1, &K, row0 + b, 1,
                                st->probs);
        explain_caption cap = {.sample = (long long)blk.ids[b],
                               .predicted = st->ds->classes[best],
                               .truth = st->ds->classes[blk.labels[b]],
                               .confidence = st->probs[best]};
        int rc = draw_sample(st, &sink, &blk, b, &cap, err, errlen);
        if (rc)
            return rc;
    }
    explain_file_write_ids(st->file, row0, n, blk.ids);
    explain_file_write_rows(st->file, "labels", NULL, DTYPE_I32, 0, NULL, row0, n, blk.labels);
    explain_file_write_rows(st->file, "predictions", NULL, DTYPE_I32, 0, NULL, row0, n, pred);
    if (st->T > 0)
        explain_file_write_rows(st->file, "rollout", NULL, DTYPE_F32, 1, &st->T, row0, n,
                                st->rollout);
    if (blk.tokens)
        explain_file_write_rows(st->file, "tokens", NULL, DTYPE_I32, 1, &st->L, row0, n,
                                blk.tokens);
    return 0;
}

static void state_free(explain_run_state *st) {
    free(st->tokens);
    free(st->segments);
    free(st->rollout);
    free(st->scratch);
    free(st->valid);
    free(st->probs);
    if (st->g)
        graph_free(st->g);
}

int explain_run(model *m, data_feed *feed, const explain_request *rq, char *err, size_t errlen) {
    const dataset *ds = data_feed_dataset(feed);
    int split = dataset_split_parse(rq->split);
    if (split < 0) {
        snprintf(err, errlen, "--split must be train, val or test, got '%s'", rq->split);
        return HEED_EXIT_BAD_INPUT;
    }
    int64_t size = ds->splits[split].n;
    if (rq->first < 0 || rq->last < rq->first || rq->last >= size) {
        snprintf(err, errlen,
                 "--samples %lld..%lld is outside the %s split of %s, which has %lld samples "
                 "(valid: 0..%lld)",
                 (long long)rq->first, (long long)rq->last, rq->split, rq->data_path,
                 (long long)size, (long long)size - 1);
        return HEED_EXIT_BAD_INPUT;
    }
    if (strlen(rq->out_dir) > 3000) {
        snprintf(err, errlen, "--out: the directory name is too long");
        return HEED_EXIT_BAD_INPUT;
    }
    explain_run_state st = {.m = m, .ds = ds, .rq = rq, .n = rq->last - rq->first + 1};
    st.g = graph_create(16u << 20, m->ps.count);
    graph_set_training(st.g, false);
    graph_set_grad(st.g, false);
    if (ds->has_tokens) {
        st.L = (int)longest_row(ds, (dataset_split)split, rq->first, rq->last);
        st.tokens = xcalloc((size_t)EXPLAIN_CHUNK * st.L, sizeof *st.tokens);
        st.segments = xcalloc((size_t)EXPLAIN_CHUNK * st.L, sizeof *st.segments);
    }
    st.valid = xcalloc((size_t)(st.L > 0 ? st.L : 1) + 4096, sizeof *st.valid);
    st.probs = xcalloc((size_t)m->shape.num_classes, sizeof *st.probs);

    char h5_path[3100], html_path[3100], h5_tmp[3200], html_tmp[3200];
    snprintf(h5_path, sizeof h5_path, "%s/attention.h5", rq->out_dir);
    snprintf(h5_tmp, sizeof h5_tmp, "%s.tmp", h5_path);
    snprintf(html_path, sizeof html_path, "%s/index.html", rq->out_dir);
    snprintf(html_tmp, sizeof html_tmp, "%s.tmp", html_path);
    st.html = fopen(html_tmp, "w");
    if (!st.html) {
        snprintf(err, errlen, "cannot write %s: %s", html_tmp, strerror(errno));
        state_free(&st);
        return HEED_EXIT_BAD_INPUT;
    }
    st.file = explain_file_create(h5_tmp, st.n);
    explain_file_set_attr(st.file, "model", m->kind->name);
    explain_file_set_attr(st.file, "data", rq->data_path);
    explain_file_set_attr(st.file, "split", rq->split);
    explain_file_set_attr(st.file, "checkpoint", rq->ckpt_path ? rq->ckpt_path : "");
    explain_file_write_strings(st.file, "classes", ds->classes, ds->num_classes);
    char title[512];
    snprintf(title, sizeof title, "heed explain: %s on %s (%s split, samples %lld..%lld)",
             m->kind->name, rq->data_path, rq->split, (long long)rq->first, (long long)rq->last);
    explain_html_begin(st.html, title);

    int rc = 0;
    for (int64_t row0 = 0; row0 < st.n && rc == 0; row0 += EXPLAIN_CHUNK) {
        int n = (int)(st.n - row0 < EXPLAIN_CHUNK ? st.n - row0 : EXPLAIN_CHUNK);
        const sample_block *blk = data_feed_rows(feed, rq->split, rq->first + row0, n);
        rc = explain_chunk(&st, blk, row0, err, errlen);
    }
    explain_html_end(st.html);
    explain_file_close(st.file);
    bool html_ok = fclose(st.html) == 0;
    if (rc == 0 && !html_ok) {
        snprintf(err, errlen, "writing %s failed: %s", html_tmp, strerror(errno));
        rc = HEED_EXIT_BAD_INPUT;
    }
    if (rc == 0 && (rename(h5_tmp, h5_path) != 0 || rename(html_tmp, html_path) != 0)) {
        snprintf(err, errlen, "cannot rename the results into %s: %s", rq->out_dir,
                 strerror(errno));
        rc = HEED_EXIT_BAD_INPUT;
    }
    if (rc != 0) {
        remove(h5_tmp);
        remove(html_tmp);
    }
    state_free(&st);
    return rc;
}
