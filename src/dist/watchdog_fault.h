/*
 * watchdog_fault.h - faults on purpose, for the tests of the watchdog and of
 * the NaN/Inf policy. Off unless the environment asks for one:
 *
 *   HEED_DEBUG_FAULT=KIND:RANK:STEP   KIND is one of
 *     stall   rank RANK sleeps forever at the start of step STEP (a stuck rank)
 *     kill    rank RANK sends itself SIGKILL there (a dead rank)
 *     sleep   rank RANK sleeps 10 s there, or until a signal arrives (a slow
 *             rank: gives a test time to preempt the job at a known step)
 *     skip    rank RANK skips step STEP (diverged control flow: it reaches
 *             step STEP + 1 while the others are at STEP)
 *     nan     rank RANK's input of step STEP becomes NaN (a non-finite loss on
 *             one rank only: tests that all ranks reach one verdict)
 *
 * STEP -1 is start-up: after the dataset is open, before the first step
 * (stall, kill and sleep only).
 *
 * Not an option of `heed train`: nobody should find it in --help.
 */
#ifndef HEED_DIST_WATCHDOG_FAULT_H
#define HEED_DIST_WATCHDOG_FAULT_H

#include <stdint.h>

typedef enum fault_kind {
    FAULT_NONE,
    FAULT_STALL,
    FAULT_KILL,
    FAULT_SLEEP,
    FAULT_SKIP,
    FAULT_NAN
} fault_kind;

typedef struct debug_fault {
    fault_kind kind;
    int rank;
    int64_t step;
} debug_fault;

/* Reads HEED_DEBUG_FAULT; a malformed value exits with HEED_EXIT_BAD_INPUT. */
debug_fault debug_fault_from_env(void);

/* At the start of `step` on `rank`: stalls, kills or sleeps when the fault says so;
 * returns FAULT_NAN when the caller must poison its input, FAULT_SKIP when
 * it must skip the step, else FAULT_NONE. */
fault_kind debug_fault_hit(const debug_fault *f, int rank, int64_t step);

#endif
