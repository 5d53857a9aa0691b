/*
 * monotonic.c - the deadlines and waits of monotonic.h.
 */
#include "dist/monotonic.h"

#include "dist/check_dist.h"

#include <errno.h>

struct timespec monotonic_after(double seconds) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    time_t whole = (time_t)seconds;
    long nanos = (long)((seconds - (double)whole) * 1e9);
    t.tv_sec += whole;
    t.tv_nsec += nanos;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

bool monotonic_passed(const struct timespec *deadline) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > deadline->tv_sec ||
           (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec);
}

void monotonic_cond_init(pthread_cond_t *cv) {
    pthread_condattr_t attr;
    HEED_PTHREAD_CHECK(pthread_condattr_init(&attr));
    HEED_PTHREAD_CHECK(pthread_condattr_setclock(&attr, CLOCK_MONOTONIC));
    HEED_PTHREAD_CHECK(pthread_cond_init(cv, &attr));
    HEED_PTHREAD_CHECK(pthread_condattr_destroy(&attr));
}

bool monotonic_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu,
                               const struct timespec *deadline) {
    int rc = pthread_cond_timedwait(cv, mu, deadline);
    if (rc == ETIMEDOUT)
        return false;
    if (rc != 0)
        HEED_DIE(HEED_EXIT_INTERNAL, "pthread_cond_timedwait failed: %s", strerror(rc));
    return true;
}
