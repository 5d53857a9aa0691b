/*
 * checkpoint.h - collective checkpoints in one parallel HDF5 file.
 *
 * A checkpoint holds everything a run needs to continue as if it had never
 * stopped (docs/checkpoint-format.md is the contract):
 *
 *   /params/<name>    float32, the tensor's shape: every parameter (and any
 *                     non-trainable buffer registered in the params set)
 *   /optim/adam_m     float32 [numel]: Adam's first moment over the flat
 *   /optim/adam_v     parameter buffer (padding included), second moment
 *   root attributes   format, step, sampler cursor, world size, model, the
 *                     full configuration, heed version (ckpt_meta below)
 *
 * Every dataset carries a `checksum` attribute (ckpt_checksum) that loading
 * verifies, so a corrupt file is refused rather than trained on.
 *
 * Writing is collective and gather-free: each rank writes its rows of every
 * parameter and its own ZeRO shard of the moments as hyperslabs through the
 * MPI-IO driver with collective transfers. The file is written under a
 * temporary name, closed, fsynced, renamed by rank 0 and the directory
 * fsynced (redis's rdbSave), so a crash at any moment leaves the previous
 * checkpoint intact. Reading works at any rank count: every rank reads all
 * parameters and the moment range [lo, hi) it owns now.
 *
 * Parameter initial values, sample order and dropout masks are pure
 * functions of (seed, step, ...), so (seed, step) is all the RNG state heed
 * has; it is saved as such.
 */
#ifndef HEED_DIST_CHECKPOINT_H
#define HEED_DIST_CHECKPOINT_H

#include "core/optim.h"
#include "core/params.h"
#include "dist/comm.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef HEED_VERSION
#define HEED_VERSION "0.1.0"
#endif

enum { CKPT_FORMAT_VERSION = 1, CKPT_STR = 512, CKPT_PATH = 1024 };

/* What a checkpoint says about the run, besides the tensors. */
typedef struct ckpt_meta {
    char model[64];              /* registry name */
    char arch[CKPT_STR];         /* canonical model options; must match to resume */
    char heed_version[32];       /* of the writer (filled in by ckpt_write_file) */
    int world_size;              /* ranks that wrote it */
    int64_t step;                /* optimizer steps completed = the next step to run */
    int64_t epoch;               /* sampler cursor of the next step: epoch, */
    int64_t step_in_epoch;       /* global batch within it, */
    int64_t global_batch;        /* and the global batch size B */
    int64_t train_size;          /* samples of the train split (the cursor's meaning) */
    int64_t steps_per_epoch;     /* global batches per epoch */
    uint64_t seed;               /* with step: the whole RNG state */
    int64_t adam_t;              /* Adam's step count (bias correction) */
    char schedule[16];           /* LR schedule state: kind, */
    float base_lr, lr;           /* peak LR and the LR of the last step, */
    int64_t warmup, total_steps; /* warmup and total steps */
    char *config;                /* the full INI text; borrowed on write, owned after a read */
} ckpt_meta;

/* Frees what ckpt_read_meta allocated (config) and zeroes it. */
void ckpt_meta_free(ckpt_meta *m);

/* Position-keyed, order-independent 64-bit checksum of x[0, n), whose
 * elements sit at flat positions first, first + 1, ... of a dataset:
 * sum over i of mix((pos_i << 32) ^ bits(x_i)) mod 2^64, mix = SplitMix64's
 * finaliser (a bijection, so any single changed element changes the sum). Sums of parts computed on
 * different ranks add up to the checksum of the whole, at any rank count. Not collective. */
uint64_t ckpt_checksum(const float *x, int64_t first, int64_t n);
/* The plain loop that ckpt_checksum's vector path must equal (tests). */
uint64_t ckpt_checksum_reference(const float *x, int64_t first, int64_t n);

/* Collective: every rank of c must call this with identical ps->data and
 * meta. Writes `path` atomically (path.tmp, fsync, rename, fsync dir):
 * parameters split by rows over the ranks, moments from each rank's
 * adam->[lo, hi) (ZeRO shards), or from chunk r of [0, numel) when every
 * rank holds all of them (replicated Adam). A failure aborts the job with a
 * message naming the stage; the previous checkpoint is untouched.
 *
 * For crash tests, HEED_CKPT_CRASH=STAGE[:STEP] makes every rank kill itself
 * (SIGKILL) after STAGE of the write of step STEP (any step if omitted):
 * created, params, moments, closed, renamed. */
void ckpt_write_file(const comm *c, const char *path, const ckpt_meta *meta, const params *ps,
                     const adam_state *adam);

/* Collective. Opens `path` and reads its root attributes into meta (which
 * the caller frees with ckpt_meta_free). false, with the same message in
 * err on every rank, for a missing, truncated or foreign file. */
bool ckpt_read_meta(const comm *c, const char *path, ckpt_meta *meta, char *err, size_t errlen);

/* Collective. Loads every parameter of ps (names and shapes must match the
 * file exactly) and the moments adam->[lo, hi), verifying every checksum;
 * sets adam->t from the file. false, with the same message on every rank,
 * on any mismatch; ps and adam are then partly overwritten. */
bool ckpt_read_state(const comm *c, const char *path, params *ps, adam_state *adam, char *err,
                     size_t errlen);

/* ---- the checkpoint directory (checkpoint_dir.c) ---------------------- */

/* dir/ckpt-<step, 8 digits>.h5. Not collective. */
void ckpt_path_for_step(char *out, size_t len, const char *dir, int64_t step);

/* The complete (renamed) checkpoints in dir, newest first: *paths is an
 * array of malloc'd strings (free with ckpt_list_free). Returns the count (0
 * for a missing directory). Not collective; *.tmp files are ignored. */
int ckpt_list(const char *dir, char ***paths, int64_t **steps);
void ckpt_list_free(char **paths, int64_t *steps, int n);

/* Removes all but the newest `keep` checkpoints of dir, sparing those whose
 * step is a multiple of keep_every (> 0), and stale *.tmp files. Not
 * collective: rank 0 calls it after a write. Returns how many were removed. */
int ckpt_retain(const char *dir, int keep, int64_t keep_every);

/* ---- preemption signals (checkpoint_signal.c) ------------------------- */

/* Installs handlers for SIGTERM and SIGUSR1 that only set a flag. Not
 * collective; call once per process. */
void ckpt_signal_install(void);

/* Collective: true on every rank when any rank has received a signal. */
bool ckpt_signal_agree(const comm *c);

/* Sets the flag as the handler would (tests, HEED_DEBUG_SIGNAL_STEP). */
void ckpt_signal_raise(void);

#endif
