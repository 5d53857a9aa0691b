/*
 * watchdog.h - no hangs: a collective that does not complete in time, or a
 * rank that stops taking part, ends the job with HEED_EXIT_HANG (4) and a
 * message naming the collective, the step and, where it can be known, the
 * rank that stopped.
 *
 * Two mechanisms, one API:
 *
 *   arrival   watchdog_arrive(w, step, what) is called by every rank at the
 *             same points of the program (start of a training step, before
 *             the evaluation reductions). Non-root ranks send rank 0 a small
 *             message (step, what); rank 0 waits for all of them, polling
 *             with short sleeps, for at most the timeout. A rank that has not
 *             arrived is named ("rank 2 has not reached ..."); a rank that
 *             arrived somewhere else (diverged control flow) is named with
 *             where it is. Runs on the main thread, on the watchdog's own
 *             communicator, so it never matches heed's other messages.
 *
 *   monitor   watchdog_arm(w, step, what) ... watchdog_disarm(w) around a
 *             region of collectives. A monitor thread (no MPI calls: heed
 *             runs at MPI_THREAD_FUNNELED) sleeps until the deadline; if the
 *             region is still armed then, it prints the collective and the
 *             step and calls _exit(4). Under mpirun a rank exiting non-zero
 *             takes the whole job down. Non-root ranks wait a short grace
 *             before exiting so that rank 0's arrival report (the one that
 *             names the rank) is printed first.
 *
 *   watchdog *w = watchdog_create(&comm, 300.0);   // every rank; 0 s: off
 *   for (step ...) {
 *       watchdog_arrive(w, step, "train step");
 *       watchdog_arm(w, step, "train step (loss and gradient all-reduce)");
 *       trainer_step(...);
 *       watchdog_disarm(w);
 *   }
 *   watchdog_free(w);                               // every rank
 *
 * A rank killed outright (SIGKILL, the OOM killer) is noticed by mpirun,
 * which ends the job; if the launcher does not, the survivors' monitors do.
 * With one rank or a timeout of 0 every call is a no-op.
 */
#ifndef HEED_DIST_WATCHDOG_H
#define HEED_DIST_WATCHDOG_H

#include "dist/comm.h"

#include <stdint.h>

typedef struct watchdog watchdog;

/* Collective: every rank of `c` must call this with the same timeout.
 * timeout_s <= 0 disables the watchdog (a valid handle whose calls do
 * nothing). `c` must outlive the watchdog. */
watchdog *watchdog_create(const comm *c, double timeout_s);

/* Collective; NULL is a no-op. Stops the monitor thread. */
void watchdog_free(watchdog *w);

/* Collective (see above). `what` is a short static string naming the
 * point, at most 47 characters; all ranks must pass the same one. */
void watchdog_arrive(watchdog *w, int64_t step, const char *what);

/* Local. `what` must stay valid until watchdog_disarm. A step below 0
 * means the region comes before the first step (reported as such). */
void watchdog_arm(watchdog *w, int64_t step, const char *what);
/* The same with a limit of factor x the timeout, for regions that do more
 * than collectives (start-up reads the dataset and checkpoints). */
void watchdog_arm_scaled(watchdog *w, int64_t step, const char *what, double factor);
void watchdog_disarm(watchdog *w);

#endif
