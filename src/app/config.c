#include "app/config.h"

#include "core/check.h"
#include "dist/bucket.h"

#include <errno.h>
#include <ini.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef enum opt_type { OPT_INT, OPT_I64, OPT_U64, OPT_FLOAT, OPT_BOOL, OPT_STR } opt_type;

typedef struct opt {
    const char *name;
    opt_type type;
    size_t offset;
    size_t size; /* strings: buffer size */
    const char *help;
} opt;

#define RC(field) offsetof(run_config, field), sizeof(((run_config *)0)->field)

static const opt options[] = {
    {"model", OPT_STR, RC(model), "model name (heed models lists them)"},
    {"data", OPT_STR, RC(data), "dataset file (HDF5, docs/data-format.md)"},
    {"out", OPT_STR, RC(out), "run directory (config.ini, metrics.jsonl, curves.png)"},
    {"config", OPT_STR, RC(config_file), "INI file with any of these options"},
    {"epochs", OPT_INT, RC(epochs), "epochs to train (unless --steps)"},
    {"steps", OPT_I64, RC(steps), "optimizer steps to train (overrides --epochs)"},
    {"batch-size", OPT_INT, RC(batch_size), "global batch size, split over the ranks"},
    {"micro-batch", OPT_INT, RC(micro_batch), "samples per forward/backward (accumulation)"},
    {"lr", OPT_FLOAT, RC(lr), "peak learning rate"},
    {"schedule", OPT_STR, RC(schedule), "constant, cosine or linear (after warmup)"},
    {"warmup", OPT_INT, RC(warmup), "linear warmup steps"},
    {"weight-decay", OPT_FLOAT, RC(weight_decay), "AdamW decoupled weight decay (matrices)"},
    {"clip", OPT_FLOAT, RC(clip), "clip the global gradient norm to this (0: off)"},
    {"label-smoothing", OPT_FLOAT, RC(label_smoothing), "cross-entropy label smoothing"},
    {"class-balance", OPT_FLOAT, RC(class_balance),
     "weigh class k's loss by (n / (K n_k))^P, n_k its train count (0: off, 1: balanced)"},
    {"seed", OPT_U64, RC(seed), "seed of weights, sample order and dropout"},
    {"eval-every", OPT_INT, RC(eval_every), "evaluate every N steps (0: each epoch)"},
    {"log-every", OPT_INT, RC(log_every), "log training metrics every N steps"},
    {"exact-reduce", OPT_BOOL, RC(exact_reduce), "order-independent exact gradient sums"},
    {"threads", OPT_INT, RC(threads), "BLAS threads per rank (0: cores per rank)"},
    {"zero", OPT_BOOL, RC(zero), "ZeRO-1: shard Adam state over ranks"},
    {"check-sync", OPT_BOOL, RC(check_sync), "verify identical parameters on all ranks each step"},
    {"in-memory", OPT_BOOL, RC(in_memory), "load the whole split into memory"},
    {"drop-last", OPT_BOOL, RC(drop_last), "drop the last incomplete batch of an epoch"},
    {"length-buckets", OPT_INT, RC(length_buckets),
     "text: sort by length within windows of N global batches (0: off)"},
    {"max-eval", OPT_INT, RC(max_eval),
     "evaluate on at most N samples, evenly spaced over the split (0: all)"},
    {"collective-timeout", OPT_FLOAT, RC(collective_timeout),
     "seconds a rank waits for the others before the job exits 4 (0: off)"},
    {"on-nonfinite", OPT_STR, RC(on_nonfinite),
     "NaN/Inf in the loss or gradients: stop (exit 5) or skip the step"},
    {"dim", OPT_INT, RC(mc.dim), "model width"},
    {"depth", OPT_INT, RC(mc.depth), "encoder blocks"},
    {"heads", OPT_INT, RC(mc.heads), "attention heads"},
    {"ffn", OPT_INT, RC(mc.ffn), "feed-forward width (0: 4 * dim)"},
    {"patch", OPT_INT, RC(mc.patch), "ViT patch size"},
    {"max-len", OPT_INT, RC(mc.max_len), "text: longest sequence (0: the dataset's)"},
    {"dropout", OPT_FLOAT, RC(mc.dropout), "dropout rate"},
    {"pool", OPT_STR, RC(mc.pool),
     "mean or cls pooling (default: the model's, BERT cls, others mean)"},
    {"width", OPT_INT, RC(mc.width), "CNN base channels (0: the model's default)"},
    {"cbam", OPT_BOOL, RC(mc.cbam), "resnet: CBAM attention in every residual block"},
    {"stem", OPT_STR, RC(mc.stem), "resnet18: small (3x3/1) or imagenet (7x7/2 + max pool)"},
    {"block", OPT_STR, RC(mc.block), "resnet: basic or bottleneck residual blocks"},
    {"augment", OPT_BOOL, RC(mc.augment), "images: random crop + horizontal flip in training"},
    {"crop-pad", OPT_INT, RC(mc.crop_pad), "augmentation: zero padding of the random crop"},
    {"flip", OPT_BOOL, RC(mc.flip), "augmentation: random horizontal flips"},
    {"bn-momentum", OPT_FLOAT, RC(mc.bn_momentum), "batch-norm running-statistics momentum"},
    {"sync-bn", OPT_BOOL, RC(sync_bn),
     "batch norm: statistics of the global batch over all ranks (as SyncBatchNorm)"},
    {"bucket-kb", OPT_INT, RC(bucket_kb), "gradient bucket size in KiB (0: one bucket)"},
    {"overlap", OPT_BOOL, RC(overlap), "reduce gradient buckets during backward"},
    {"comm-thread", OPT_STR, RC(comm_thread),
     "drive the overlapped reduction from a progress thread: auto (from 8 ranks up), on, off"},
    {"embed-dim", OPT_INT, RC(mc.embed_dim), "bilstm/bigru: embedding width (0: dim)"},
    {"fusion", OPT_STR, RC(mc.fusion),
     "fusion: concat (pooled features) or xattn (cross-attention)"},
    {"xattn-depth", OPT_INT, RC(mc.xattn_depth), "fusion: cross-attention blocks"},
    {"xattn-reverse", OPT_BOOL, RC(mc.xattn_reverse), "fusion: image tokens also attend to text"},
    {"freeze-image", OPT_BOOL, RC(mc.freeze_image), "fusion: do not train the image tower"},
    {"freeze-text", OPT_BOOL, RC(mc.freeze_text), "fusion: do not train the text tower"},
    {"image-tower", OPT_STR, RC(mc.image_tower), "fusion: image tower kind (vit)"},
    {"text-tower", OPT_STR, RC(mc.text_tower), "fusion: text tower kind (transformer)"},
    {"ckpt-every", OPT_INT, RC(ckpt_every),
     "checkpoint every N steps (0: only at the end and on SIGTERM/SIGUSR1)"},
    {"keep", OPT_INT, RC(keep), "keep the newest K checkpoints in RUNDIR/checkpoints"},
    {"keep-every", OPT_INT, RC(keep_every), "also keep checkpoints at multiples of N steps"},
    {"resume", OPT_STR, RC(resume), "auto (newest valid checkpoint of --out, if any) or a path"},
    {"init-image-from", OPT_STR, RC(init_image_from),
     "fusion: image tower from a vit params file or checkpoint"},
    {"init-text-from", OPT_STR, RC(init_text_from),
     "fusion: text tower from a transformer params file or checkpoint"},
    {"init-from", OPT_STR, RC(init_from),
     "start from the same-named tensors of a params file or checkpoint (fine-tuning)"},
};

enum { OPTION_COUNT = sizeof options / sizeof options[0] };

void run_config_default(run_config *rc) {
    memset(rc, 0, sizeof *rc);
    rc->epochs = 1;
    rc->batch_size = 64;
    rc->lr = 1e-3f;
    strcpy(rc->schedule, "cosine");
    rc->weight_decay = 0.01f;
    rc->clip = 1.0f;
    rc->seed = 0;
    rc->log_every = 50;
    rc->zero = true;
    rc->drop_last = true;
    rc->mc = model_config_default();
    rc->collective_timeout = 300.0f;
    strcpy(rc->on_nonfinite, "stop");
    rc->bucket_kb = BUCKET_KB_DEFAULT;
    rc->overlap = true;
    strcpy(rc->comm_thread, "auto");
    rc->keep = 3;
}

static const opt *opt_find(const char *name) {
    for (int i = 0; i < OPTION_COUNT; i++)
        if (strcmp(options[i].name, name) == 0)
            return &options[i];
    return NULL;
}

static bool parse_bool(const char *v, bool *out) {
    if (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on")) {
        *out = true;
        return true;
    }
    if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off")) {
        *out = false;
        return true;
    }
    return false;
}

bool run_config_set(run_config *rc, const char *name, const char *value, const char *source,
                    char *err, size_t errlen) {
    const opt *o = opt_find(name);
    if (!o) {
        snprintf(err, errlen, "%s: unknown option '%s' (heed train --help lists them)", source,
                 name);
        return false;
    }
    char *p = (char *)rc + o->offset;
    char *end = NULL;
    errno = 0;
    switch (o->type) {
    case OPT_INT: {
        long v = strtol(value, &end, 10);
        if (errno || end == value || *end || v < -2147483647L || v > 2147483647L)
            goto bad_number;
        *(int *)p = (int)v;
        return true;
    }
    case OPT_I64:
    case OPT_U64: {
        long long v = strtoll(value, &end, 10);
        if (errno || end == value || *end || v < 0)
            goto bad_number;
        if (o->type == OPT_I64)
            *(int64_t *)p = v;
        else
            *(uint64_t *)p = (uint64_t)v;
        return true;
    }
    case OPT_FLOAT: {
        float v = strtof(value, &end);
        if (errno || end == value || *end)
            goto bad_number;
        *(float *)p = v;
        return true;
    }
    case OPT_BOOL:
        if (!parse_bool(value, (bool *)p)) {
            snprintf(err, errlen, "%s: option '%s' expects true or false, got '%s'", source, name,
                     value);
            return false;
        }
        return true;
    case OPT_STR:
        if (strlen(value) >= o->size) {
            snprintf(err, errlen, "%s: value of '%s' is longer than %zu characters", source, name,
                     o->size - 1);
            return false;
        }
        strcpy(p, value);
        return true;
    }
bad_number:
    snprintf(err, errlen, "%s: option '%s' expects a%s number, got '%s'", source, name,
             o->type == OPT_FLOAT ? "" : "n integer", value);
    return false;
}

typedef struct ini_ctx {
    run_config *rc;
    const char *path;
    char *err;
    size_t errlen;
    bool failed;
} ini_ctx;

static int config_ini_entry(void *user, const char *section, const char *name, const char *value) {
    ini_ctx *c = user;
    char source[CONFIG_STR + 32];
    snprintf(source, sizeof source, "%s [%s]", c->path, section);
    if (!run_config_set(c->rc, name, value, source, c->err, c->errlen)) {
        c->failed = true;
        return 0;
    }
    return 1;
}

bool run_config_load_ini(run_config *rc, const char *path, char *err, size_t errlen) {
    ini_ctx c = {rc, path, err, errlen, false};
    int rv = ini_parse(path, config_ini_entry, &c);
    if (c.failed)
        return false;
    if (rv == -1) {
        snprintf(err, errlen, "cannot open config file '%s': %s", path, strerror(errno));
        return false;
    }
    if (rv != 0) {
        snprintf(err, errlen, "%s:%d: syntax error (expected 'name = value')", path, rv);
        return false;
    }
    return true;
}

bool run_config_load_ini_text(run_config *rc, const char *text, const char *name, char *err,
                              size_t errlen) {
    ini_ctx c = {rc, name, err, errlen, false};
    int rv = ini_parse_string(text, config_ini_entry, &c);
    if (c.failed)
        return false;
    if (rv != 0) {
        snprintf(err, errlen, "%s:%d: syntax error (expected 'name = value')", name, rv);
        return false;
    }
    return true;
}

bool run_config_parse_args(run_config *rc, int argc, char **argv, char *err, size_t errlen) {
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--config")) {
            if (i + 1 >= argc) {
                snprintf(err, errlen, "--config needs a file name");
                return false;
            }
            if (!run_config_load_ini(rc, argv[i + 1], err, errlen))
                return false;
            snprintf(rc->config_file, sizeof rc->config_file, "%s", argv[i + 1]);
        }
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0) {
            snprintf(err, errlen, "unexpected argument '%s' (options are --name value)", a);
            return false;
        }
        const char *name = a + 2;
        char source[80];
        snprintf(source, sizeof source, "--%s", name);
        const opt *o = opt_find(name);
        if (o && o->type == OPT_BOOL) {
            /* --flag alone, or --flag true/false */
            bool v;
            if (i + 1 < argc && parse_bool(argv[i + 1], &v)) {
                *(bool *)((char *)rc + o->offset) = v;
                i++;
            } else {
                *(bool *)((char *)rc + o->offset) = true;
            }
            continue;
        }
        if (!o && !strncmp(name, "no-", 3) && (o = opt_find(name + 3)) && o->type == OPT_BOOL) {
            *(bool *)((char *)rc + o->offset) = false;
            continue;
        }
        if (i + 1 >= argc) {
            snprintf(err, errlen, "%s needs a value", a);
            return false;
        }
        if (!strcmp(name, "config")) {
            i++;
            continue;
        }
        if (!run_config_set(rc, name, argv[i + 1], source, err, errlen))
            return false;
        i++;
    }
    return true;
}

bool run_config_check(const run_config *rc, char *err, size_t errlen) {
    if (!rc->model[0]) {
        snprintf(err, errlen, "--model is required (heed models lists them)");
        return false;
    }
    if (!rc->data[0]) {
        snprintf(err, errlen, "--data FILE.h5 is required");
        return false;
    }
    if (rc->batch_size <= 0) {
        snprintf(err, errlen, "--batch-size must be positive, got %d", rc->batch_size);
        return false;
    }
    if (rc->micro_batch < 0) {
        snprintf(err, errlen, "--micro-batch must not be negative, got %d", rc->micro_batch);
        return false;
    }
    if (rc->epochs <= 0 && rc->steps <= 0) {
        snprintf(err, errlen, "--epochs or --steps must be positive");
        return false;
    }
    if (!(rc->lr > 0.0f)) {
        snprintf(err, errlen, "--lr must be positive, got %g", rc->lr);
        return false;
    }
    if (strcmp(rc->schedule, "constant") && strcmp(rc->schedule, "cosine") &&
        strcmp(rc->schedule, "linear")) {
        snprintf(err, errlen, "--schedule must be constant, cosine or linear, got '%s'",
                 rc->schedule);
        return false;
    }
    if (rc->warmup < 0 || rc->log_every < 0 || rc->eval_every < 0 || rc->threads < 0 ||
        rc->length_buckets < 0) {
        snprintf(err, errlen,
                 "--warmup, --log-every, --eval-every, --threads and --length-buckets must not be "
                 "negative");
        return false;
    }
    if (strcmp(rc->on_nonfinite, "stop") && strcmp(rc->on_nonfinite, "skip")) {
        snprintf(err, errlen, "--on-nonfinite must be stop or skip, got '%s'", rc->on_nonfinite);
        return false;
    }
    if (strcmp(rc->comm_thread, "auto") && strcmp(rc->comm_thread, "on") &&
        strcmp(rc->comm_thread, "off")) {
        snprintf(err, errlen, "--comm-thread must be auto, on or off, got '%s'", rc->comm_thread);
        return false;
    }
    if (rc->sync_bn && !strcmp(rc->comm_thread, "on")) {
        snprintf(err, errlen,
                 "--sync-bn and --comm-thread on do not go together: the batch-norm sums are "
                 "collectives inside the backward (use --comm-thread auto or off)");
        return false;
    }
    if (!(rc->collective_timeout >= 0.0f)) {
        snprintf(err, errlen, "--collective-timeout must be 0 (off) or a number of seconds, got %g",
                 rc->collective_timeout);
        return false;
    }
    if (rc->ckpt_every < 0 || rc->keep < 1 || rc->keep_every < 0) {
        snprintf(err, errlen,
                 "--ckpt-every and --keep-every must not be negative, --keep must be "
                 "at least 1");
        return false;
    }
    if (rc->label_smoothing < 0.0f || rc->label_smoothing >= 1.0f) {
        snprintf(err, errlen, "--label-smoothing must be in [0, 1)");
        return false;
    }
    if (!(rc->class_balance >= 0.0f && rc->class_balance <= 2.0f)) {
        snprintf(err, errlen,
                 "--class-balance must be in [0, 2] (0: off, 1: inverse class frequency), got %g",
                 rc->class_balance);
        return false;
    }
    if (rc->bucket_kb < 0 || rc->bucket_kb > (1 << 21)) {
        snprintf(err, errlen, "--bucket-kb must be in [0, 2097152] (0: one bucket), got %d",
                 rc->bucket_kb);
        return false;
    }
    return true;
}

/* The options whose help says "fusion:" mean nothing to other models. */
static bool option_is_fusion_only(const opt *o) {
    return strncmp(o->help, "fusion:", 7) == 0;
}

void run_config_print(const run_config *rc, bool all, FILE *out) {
    bool fusion = strcmp(rc->model, "fusion") == 0;
    for (int i = 0; i < OPTION_COUNT; i++) {
        const opt *o = &options[i];
        const char *p = (const char *)rc + o->offset;
        if (!strcmp(o->name, "config") || (!all && !fusion && option_is_fusion_only(o)))
            continue;
        fprintf(out, "%s = ", o->name);
        switch (o->type) {
        case OPT_INT:
            fprintf(out, "%d\n", *(const int *)p);
            break;
        case OPT_I64:
            fprintf(out, "%lld\n", (long long)*(const int64_t *)p);
            break;
        case OPT_U64:
            fprintf(out, "%llu\n", (unsigned long long)*(const uint64_t *)p);
            break;
        case OPT_FLOAT:
            fprintf(out, "%g\n", *(const float *)p);
            break;
        case OPT_BOOL:
            fprintf(out, "%s\n", *(const bool *)p ? "true" : "false");
            break;
        case OPT_STR:
            fprintf(out, "%s\n", p);
            break;
        }
    }
}

void run_config_print_help(FILE *out) {
    for (int i = 0; i < OPTION_COUNT; i++)
        fprintf(out, "  --%-20s %s\n", options[i].name, options[i].help);
}
