/*
 * grad_sync_thread.c - the progress thread of grad_sync_thread.h.
 */
#include "dist/grad_sync_thread.h"

#include "dist/check_dist.h"
#include "dist/monotonic.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

/* Sleep between polls that found nothing to do: from POLL_MIN_NS, doubling
 * up to POLL_MAX_NS while nothing changes. Every wake-up takes the core from
 * the training thread (two context switches and some of its cache), so the
 * thread backs off; even the longest sleep is short next to a backward
 * pass: a 16-rank ring of 15 steps at one step per poll takes 15 ms. */
enum { POLL_MIN_NS = 50 * 1000, POLL_MAX_NS = 1000 * 1000 };

typedef enum { PARKED, RUNNING, PARK_REQUESTED, EXITING } thread_state;

struct grad_sync_thread {
    grad_sync *s;
    pthread_t tid;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    _Atomic int state; /* thread_state; changed under mu */
    _Atomic int entry; /* the last tape entry backward has finished (INT32_MAX: none) */
};

static void drive(grad_sync_thread *t) {
    long sleep_ns = POLL_MIN_NS;
    while (atomic_load_explicit(&t->state, memory_order_acquire) == RUNNING) {
        /* acquire: the gradients of entries up to `entry` are final */
        int entry = atomic_load_explicit(&t->entry, memory_order_acquire);
        if (grad_sync_advance(t->s, entry)) {
            sleep_ns = POLL_MIN_NS;
            continue;
        }
        /* a timed wait, not a sleep: park wakes it at once */
        struct timespec until = monotonic_after((double)sleep_ns * 1e-9);
        HEED_PTHREAD_CHECK(pthread_mutex_lock(&t->mu));
        if (atomic_load(&t->state) == RUNNING)
            monotonic_cond_wait_until(&t->cv, &t->mu, &until);
        HEED_PTHREAD_CHECK(pthread_mutex_unlock(&t->mu));
        sleep_ns = sleep_ns * 2 < POLL_MAX_NS ? sleep_ns * 2 : POLL_MAX_NS;
    }
}

static void *thread_main(void *arg) {
    grad_sync_thread *t = arg;
    HEED_PTHREAD_CHECK(pthread_mutex_lock(&t->mu));
    for (;;) {
        while (atomic_load(&t->state) == PARKED)
            HEED_PTHREAD_CHECK(pthread_cond_wait(&t->cv, &t->mu));
        if (atomic_load(&t->state) == EXITING)
            break;
        HEED_PTHREAD_CHECK(pthread_mutex_unlock(&t->mu));
        drive(t);
        HEED_PTHREAD_CHECK(pthread_mutex_lock(&t->mu));
        if (atomic_load(&t->state) == PARK_REQUESTED) {
            atomic_store(&t->state, PARKED);
            HEED_PTHREAD_CHECK(pthread_cond_broadcast(&t->cv));
        }
    }
    HEED_PTHREAD_CHECK(pthread_mutex_unlock(&t->mu));
    return NULL;
}

grad_sync_thread *grad_sync_thread_create(grad_sync *s) {
    int level = MPI_THREAD_SINGLE;
    HEED_MPI_CHECK(MPI_Query_thread(&level));
    if (level < MPI_THREAD_SERIALIZED)
        return NULL;
    grad_sync_thread *t = xcalloc(1, sizeof *t);
    t->s = s;
    atomic_init(&t->state, PARKED);
    atomic_init(&t->entry, INT32_MAX);
    HEED_PTHREAD_CHECK(pthread_mutex_init(&t->mu, NULL));
    monotonic_cond_init(&t->cv);
    HEED_PTHREAD_CHECK(pthread_create(&t->tid, NULL, thread_main, t));
    return t;
}

static void set_state(grad_sync_thread *t, thread_state st) {
    HEED_PTHREAD_CHECK(pthread_mutex_lock(&t->mu));
    atomic_store(&t->state, st);
    HEED_PTHREAD_CHECK(pthread_cond_broadcast(&t->cv));
    HEED_PTHREAD_CHECK(pthread_mutex_unlock(&t->mu));
}

void grad_sync_thread_run(grad_sync_thread *t) {
    /* backward runs from the last entry down: nothing has finished yet */
    atomic_store_explicit(&t->entry, INT32_MAX, memory_order_relaxed);
    set_state(t, RUNNING);
}

void grad_sync_thread_note_entry(grad_sync_thread *t, int entry) {
    atomic_store_explicit(&t->entry, entry, memory_order_release);
}

void grad_sync_thread_park(grad_sync_thread *t) {
    HEED_PTHREAD_CHECK(pthread_mutex_lock(&t->mu));
    if (atomic_load(&t->state) == RUNNING) {
        atomic_store(&t->state, PARK_REQUESTED);
        HEED_PTHREAD_CHECK(pthread_cond_broadcast(&t->cv));
        while (atomic_load(&t->state) != PARKED)
            HEED_PTHREAD_CHECK(pthread_cond_wait(&t->cv, &t->mu));
    }
    HEED_PTHREAD_CHECK(pthread_mutex_unlock(&t->mu));
}

void grad_sync_thread_free(grad_sync_thread *t) {
    if (!t)
        return;
    grad_sync_thread_park(t);
    set_state(t, EXITING);
    HEED_PTHREAD_CHECK(pthread_join(t->tid, NULL));
    HEED_PTHREAD_CHECK(pthread_cond_destroy(&t->cv));
    HEED_PTHREAD_CHECK(pthread_mutex_destroy(&t->mu));
    free(t);
}
