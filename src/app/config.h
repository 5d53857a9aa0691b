/*
 * config.h - the run configuration of `heed train`, from an INI file and
 * long flags through one table of options.
 *
 * Every option has one name, used as `--name value` on the command line and
 * as `name = value` in the INI file (any section; sections are for people).
 * Flags override the file. Unknown names and unparsable values are errors
 * that name the option and what was expected; every effective value is
 * printed once (config_print) and saved in the run directory as config.ini.
 */
#ifndef HEED_APP_CONFIG_H
#define HEED_APP_CONFIG_H

#include "models/model.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum { CONFIG_STR = 256 };

typedef struct run_config {
    char model[64];
    char data[CONFIG_STR];
    char out[CONFIG_STR];
    char config_file[CONFIG_STR];
    int epochs;
    int64_t steps;   /* 0: from epochs */
    int batch_size;  /* global */
    int micro_batch; /* 0: the whole per-rank batch */
    float lr;
    char schedule[16];
    int warmup;
    float weight_decay;
    float clip;
    float label_smoothing;
    float class_balance; /* class weights (n / (K n_k))^P from the train labels; 0: off */
    uint64_t seed;
    int eval_every; /* steps; 0: once per epoch */
    int log_every;
    bool exact_reduce;
    int threads;     /* 0: cores of the node / ranks of the node */
    bool zero;       /* ZeRO-1 (sharded Adam) when ranks > 1 */
    bool check_sync; /* compare a parameter hash across ranks every step */
    bool in_memory;  /* load the whole split instead of streaming */
    bool drop_last;
    int length_buckets;       /* text: global batches per length-sorting window (0: off) */
    int max_eval;             /* evaluate at most this many samples (0: all) */
    float collective_timeout; /* seconds before a stuck collective ends the job (0: off) */
    char on_nonfinite[8];     /* NaN/Inf in loss or gradients: "stop" or "skip" the step */
    int ckpt_every;           /* checkpoint every N steps (0: only at the end and on preemption) */
    int keep;                 /* keep the newest K checkpoints */
    int keep_every; /* also keep every checkpoint whose step is a multiple of N (0: none) */
    char resume[CONFIG_STR]; /* "", "auto" or a checkpoint path */
    model_config mc;
    int bucket_kb;                    /* gradient bucket size in KiB (0: one bucket) */
    bool overlap;                     /* reduce buckets during backward (--no-overlap: after) */
    char comm_thread[8];              /* progress thread for the overlap: "auto", "on" or "off" */
    bool sync_bn;                     /* batch-norm statistics over all ranks (SyncBatchNorm) */
    char init_image_from[CONFIG_STR]; /* fusion: image tower from a vit params file/checkpoint */
    char init_text_from[CONFIG_STR];  /* fusion: text tower from a transformer one */
    char init_from[CONFIG_STR];       /* start from the same-named tensors of a params file */
} run_config;

void run_config_default(run_config *rc);

/* Applies one option; false with a message in err for an unknown name or a
 * bad value. `source` ("--flag" or "file.ini:12") is only for the message. */
bool run_config_set(run_config *rc, const char *name, const char *value, const char *source,
                    char *err, size_t errlen);

/* Reads an INI file into rc; false with a message naming the file and line. */
bool run_config_load_ini(run_config *rc, const char *path, char *err, size_t errlen);

/* Reads INI text (e.g. the configuration saved in a checkpoint) into rc;
 * `name` is only for messages. */
bool run_config_load_ini_text(run_config *rc, const char *text, const char *name, char *err,
                              size_t errlen);

/* Parses argv (after the subcommand): first --config FILE, then every other
 * --name value (or --flag for booleans, --no-flag to turn one off). */
bool run_config_parse_args(run_config *rc, int argc, char **argv, char *err, size_t errlen);

/* Cross-option checks (required options present, ranges). */
bool run_config_check(const run_config *rc, char *err, size_t errlen);

/* Writes the options as `name = value` lines (INI format): every option
 * with `all` (config.ini, checkpoints: what a resume compares), else
 * without the fusion-only ones unless the model is fusion (the start-up
 * printout). */
void run_config_print(const run_config *rc, bool all, FILE *out);

/* Prints the option table with help texts. */
void run_config_print_help(FILE *out);

#endif
