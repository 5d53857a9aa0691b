#include "app/metrics.h"

#include "core/check.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <unistd.h>

void metrics_open(metrics *m, const char *path) {
    m->jsonl = path ? xfopen(path, "a") : NULL;
    m->tty = isatty(STDERR_FILENO);
}

void metrics_close(metrics *m) {
    if (m->jsonl && fclose(m->jsonl) != 0)
        HEED_DIE(HEED_EXIT_INTERNAL, "closing metrics.jsonl failed");
    m->jsonl = NULL;
}

static void metrics_emit(metrics *m, cJSON *obj) {
    char *line = cJSON_PrintUnformatted(obj);
    HEED_ASSERT(line);
    fprintf(m->jsonl, "%s\n", line);
    fflush(m->jsonl);
    cJSON_free(line);
    cJSON_Delete(obj);
}

void metrics_train(metrics *m, int64_t step, int epoch, double loss, double lr,
                   double samples_per_s, double grad_norm, double elapsed_s) {
    if (!m->jsonl)
        return;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kind", "train");
    cJSON_AddNumberToObject(o, "step", (double)step);
    cJSON_AddNumberToObject(o, "epoch", epoch);
    cJSON_AddNumberToObject(o, "loss", loss);
    cJSON_AddNumberToObject(o, "lr", lr);
    cJSON_AddNumberToObject(o, "samples_per_s", samples_per_s);
    cJSON_AddNumberToObject(o, "grad_norm", grad_norm);
    cJSON_AddNumberToObject(o, "elapsed_s", elapsed_s);
    metrics_emit(m, o);
}

void metrics_eval(metrics *m, int64_t step, int epoch, const char *split, const eval_result *r) {
    if (!m->jsonl)
        return;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kind", "eval");
    cJSON_AddNumberToObject(o, "step", (double)step);
    cJSON_AddNumberToObject(o, "epoch", epoch);
    cJSON_AddStringToObject(o, "split", split);
    cJSON_AddNumberToObject(o, "loss", r->loss);
    cJSON_AddNumberToObject(o, "accuracy", r->accuracy);
    cJSON_AddNumberToObject(o, "macro_f1", r->macro_f1);
    cJSON_AddNumberToObject(o, "n", (double)r->n);
    cJSON *rows = cJSON_AddArrayToObject(o, "confusion");
    for (int i = 0; i < r->num_classes; i++) {
        cJSON *row = cJSON_CreateArray();
        for (int j = 0; j < r->num_classes; j++)
            cJSON_AddItemToArray(row,
                                 cJSON_CreateNumber((double)r->confusion[i * r->num_classes + j]));
        cJSON_AddItemToArray(rows, row);
    }
    metrics_emit(m, o);
}

static void format_duration(double s, char *buf, size_t n) {
    if (!(s >= 0) || s > 1e7) {
        snprintf(buf, n, "?");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, n, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else
        snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
}

void progress_print(const metrics *m, int64_t step, int64_t total, int epoch, double loss,
                    double lr, double samples_per_s, double eta_s) {
    char eta[32];
    format_duration(eta_s, eta, sizeof eta);
    fprintf(stderr, "%sstep %lld/%lld (epoch %d) loss %.4f lr %.2e %.0f samples/s ETA %s%s",
            m->tty ? "\r" : "", (long long)step, (long long)total, epoch, loss, lr, samples_per_s,
            eta, m->tty ? "\033[K" : "\n");
    fflush(stderr);
}

void progress_end(const metrics *m) {
    if (m->tty)
        fputc('\n', stderr);
}

void confusion_scores(const int64_t *confusion, int K, double *accuracy, double *macro_f1) {
    int64_t total = 0, correct = 0;
    double f1_sum = 0;
    for (int k = 0; k < K; k++) {
        int64_t tp = confusion[k * K + k], fn = 0, fp = 0;
        for (int j = 0; j < K; j++) {
            total += confusion[k * K + j];
            if (j != k) {
                fn += confusion[k * K + j];
                fp += confusion[j * K + k];
            }
        }
        correct += tp;
        double denom = 2.0 * tp + fp + fn;
        f1_sum += denom > 0 ? 2.0 * tp / denom : 0.0;
    }
    *accuracy = total ? (double)correct / total : 0.0;
    *macro_f1 = K ? f1_sum / K : 0.0;
}
