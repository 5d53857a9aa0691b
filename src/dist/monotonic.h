/*
 * monotonic.h - CLOCK_MONOTONIC deadlines and condition variables that wait
 * on them, for heed's helper threads (the watchdog's monitor, grad_sync's
 * progress thread). A wall-clock step (NTP, a suspended VM) must not wake
 * or starve them, so every condition variable here uses the monotonic
 * clock.
 */
#ifndef HEED_DIST_MONOTONIC_H
#define HEED_DIST_MONOTONIC_H

#include <pthread.h>
#include <stdbool.h>
#include <time.h>

/* Now plus `seconds` on CLOCK_MONOTONIC. */
struct timespec monotonic_after(double seconds);

/* Whether CLOCK_MONOTONIC has reached `deadline`. */
bool monotonic_passed(const struct timespec *deadline);

/* pthread_cond_init of a condition variable on CLOCK_MONOTONIC; dies on
 * failure. */
void monotonic_cond_init(pthread_cond_t *cv);

/* pthread_cond_timedwait until `deadline` (mu held); false on timeout. Dies
 * on any other error. */
bool monotonic_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu,
                               const struct timespec *deadline);

#endif
