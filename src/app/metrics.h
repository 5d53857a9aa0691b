/*
 * metrics.h - metrics.jsonl (one JSON object per line) and the progress line.
 *
 * Only rank 0 writes. Train lines: kind "train", step, epoch, loss, lr,
 * samples_per_s, grad_norm, elapsed_s. Eval lines: kind "eval", step, epoch,
 * split, loss, accuracy, macro_f1, n and the confusion matrix.
 */
#ifndef HEED_APP_METRICS_H
#define HEED_APP_METRICS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct metrics {
    FILE *jsonl; /* NULL on ranks other than 0 */
    bool tty;    /* progress refreshed in place */
} metrics;

/* Opens (appends to) path; path NULL makes a metrics that writes nothing. */
void metrics_open(metrics *m, const char *path);
void metrics_close(metrics *m);

void metrics_train(metrics *m, int64_t step, int epoch, double loss, double lr,
                   double samples_per_s, double grad_norm, double elapsed_s);

typedef struct eval_result {
    double loss, accuracy, macro_f1;
    int64_t n;
    int num_classes;
    const int64_t *confusion; /* [K * K], row = true class, column = predicted */
} eval_result;

void metrics_eval(metrics *m, int64_t step, int epoch, const char *split, const eval_result *r);

/* "step 120/1000 (epoch 1) loss 0.4123 lr 9.8e-04 1234 samples/s ETA 3m12s" on
 * stderr: in place on a terminal, as plain lines otherwise. */
void progress_print(const metrics *m, int64_t step, int64_t total, int epoch, double loss,
                    double lr, double samples_per_s, double eta_s);
void progress_end(const metrics *m);

/* Macro-F1 and accuracy from a K x K confusion matrix. */
void confusion_scores(const int64_t *confusion, int K, double *accuracy, double *macro_f1);

#endif
