#include "dist/watchdog.h"

#include "dist/check_dist.h"
#include "dist/monotonic.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { WHAT_LEN = 48, ARRIVE_TAG = 7001 };

/* What a rank sends rank 0 at each arrival point. */
typedef struct arrival {
    int64_t step;
    char what[WHAT_LEN];
} arrival;

struct watchdog {
    MPI_Comm mpi; /* private duplicate: arrival messages match nothing else */
    int rank, size;
    double timeout_s;
    bool enabled;
    /* arrival */
    arrival mine;      /* non-root: the message in flight */
    MPI_Request send;  /* non-root: MPI_REQUEST_NULL when none */
    arrival *from;     /* root: one slot per rank */
    MPI_Request *recv; /* root: one per rank (slot 0 unused) */
    /* monitor: everything below is shared with the thread, under `lock` */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stop, armed;
    double armed_s; /* the limit of the armed region */
    struct timespec deadline;
    int64_t step;
    const char *what;
};

/* Leaves without MPI_Finalize (a peer is gone, finalising would hang) and
 * without atexit handlers; mpirun sees the non-zero status and ends the job. */
static _Noreturn void hang_exit(void) {
    fflush(stdout);
    fflush(stderr);
    _exit(HEED_EXIT_HANG);
}

/* The monitor wakes every `period` seconds and looks at the deadline, so
 * arming and disarming are a locked store with no wake-up: they cost the
 * training loop nothing measurable. A hang is reported between timeout and
 * timeout + period after it began. */
static void *monitor_main(void *arg) {
    watchdog *w = arg;
    double period = w->timeout_s / 8 < 1.0 ? w->timeout_s / 8 : 1.0;
    if (period < 0.05)
        period = 0.05;
    HEED_PTHREAD_CHECK(pthread_mutex_lock(&w->lock));
    while (!w->stop) {
        struct timespec tick = monotonic_after(period);
        monotonic_cond_wait_until(&w->wake, &w->lock, &tick);
        if (w->stop || !w->armed || !monotonic_passed(&w->deadline))
            continue;
        char at[48] = "before the first step";
        if (w->step >= 0)
            snprintf(at, sizeof at, "at step %lld", (long long)w->step);
        fprintf(stderr,
                "\nheed: watchdog: rank %d: '%s' %s has not completed after %g s "
                "(--collective-timeout): another rank is dead, stuck or on another path%s; "
                "exiting with code %d\n",
                w->rank, w->what, at, w->armed_s,
                w->rank != 0 && w->step >= 0
                    ? " (rank 0 names it; if it names none, rank 0 itself stopped)"
                    : "",
                HEED_EXIT_HANG);
        pthread_mutex_unlock(&w->lock);
        if (w->rank != 0) {
            /* Let rank 0's report, which names the rank, get out first. */
            double grace = w->timeout_s / 2 < 2.0 ? w->timeout_s / 2 : 2.0;
            struct timespec g = {(time_t)grace, (long)((grace - (double)(time_t)grace) * 1e9)};
            nanosleep(&g, NULL);
        }
        hang_exit();
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

watchdog *watchdog_create(const comm *c, double timeout_s) {
    watchdog *w = xcalloc(1, sizeof *w);
    w->rank = c->rank;
    w->size = c->size;
    w->timeout_s = timeout_s;
    w->enabled = timeout_s > 0 && c->size > 1;
    w->send = MPI_REQUEST_NULL;
    w->mpi = MPI_COMM_NULL;
    if (!w->enabled)
        return w;
    HEED_MPI_CHECK(MPI_Comm_dup(c->mpi, &w->mpi));
    if (w->rank == 0) {
        w->from = xcalloc((size_t)w->size, sizeof *w->from);
        w->recv = xcalloc((size_t)w->size, sizeof *w->recv);
        for (int r = 0; r < w->size; r++)
            w->recv[r] = MPI_REQUEST_NULL;
    }
    monotonic_cond_init(&w->wake);
    HEED_PTHREAD_CHECK(pthread_mutex_init(&w->lock, NULL));
    HEED_PTHREAD_CHECK(pthread_create(&w->thread, NULL, monitor_main, w));
    return w;
}

void watchdog_free(watchdog *w) {
    if (!w)
        return;
    if (w->enabled) {
        pthread_mutex_lock(&w->lock);
        w->stop = true;
        pthread_cond_signal(&w->wake);
        pthread_mutex_unlock(&w->lock);
        HEED_PTHREAD_CHECK(pthread_join(w->thread, NULL));
        pthread_cond_destroy(&w->wake);
        pthread_mutex_destroy(&w->lock);
        if (w->send != MPI_REQUEST_NULL)
            HEED_MPI_CHECK(MPI_Wait(&w->send, MPI_STATUS_IGNORE));
        HEED_MPI_CHECK(MPI_Comm_free(&w->mpi));
    }
    free(w->from);
    free(w->recv);
    free(w);
}

void watchdog_arm(watchdog *w, int64_t step, const char *what) {
    watchdog_arm_scaled(w, step, what, 1.0);
}

void watchdog_arm_scaled(watchdog *w, int64_t step, const char *what, double factor) {
    if (!w->enabled)
        return;
    pthread_mutex_lock(&w->lock);
    w->armed = true;
    w->armed_s = w->timeout_s * factor;
    w->deadline = monotonic_after(w->armed_s);
    w->step = step;
    w->what = what;
    pthread_mutex_unlock(&w->lock);
}

void watchdog_disarm(watchdog *w) {
    if (!w->enabled)
        return;
    pthread_mutex_lock(&w->lock);
    w->armed = false;
    pthread_mutex_unlock(&w->lock);
}

/* Rank 0 names every rank that is missing or elsewhere, then exits 4. */
static _Noreturn void report_arrivals(const watchdog *w, int64_t step, const char *what) {
    fprintf(stderr, "\nheed: watchdog: at '%s', step %lld, after %g s (--collective-timeout):\n",
            what, (long long)step, w->timeout_s);
    for (int r = 1; r < w->size; r++) {
        if (w->recv[r] != MPI_REQUEST_NULL)
            fprintf(stderr,
                    "heed: watchdog:   rank %d has not arrived (dead, stuck or on another "
                    "path)\n",
                    r);
        else if (w->from[r].step != step || strcmp(w->from[r].what, what) != 0)
            fprintf(stderr, "heed: watchdog:   rank %d is at '%s', step %lld (diverged)\n", r,
                    w->from[r].what, (long long)w->from[r].step);
    }
    fprintf(stderr, "heed: watchdog: exiting with code %d\n", HEED_EXIT_HANG);
    hang_exit();
}

void watchdog_arrive(watchdog *w, int64_t step, const char *what) {
    if (!w->enabled)
        return;
    HEED_ASSERT(strlen(what) < WHAT_LEN);
    if (w->rank != 0) {
        /* The previous message is long delivered (rank 0 received it before
         * the collectives that followed it); this wait never blocks. */
        if (w->send != MPI_REQUEST_NULL)
            HEED_MPI_CHECK(MPI_Wait(&w->send, MPI_STATUS_IGNORE));
        memset(&w->mine, 0, sizeof w->mine);
        w->mine.step = step;
        snprintf(w->mine.what, sizeof w->mine.what, "%s", what);
        HEED_MPI_CHECK(
            MPI_Isend(&w->mine, sizeof w->mine, MPI_BYTE, 0, ARRIVE_TAG, w->mpi, &w->send));
        return;
    }
    for (int r = 1; r < w->size; r++)
        HEED_MPI_CHECK(MPI_Irecv(&w->from[r], sizeof w->from[r], MPI_BYTE, r, ARRIVE_TAG, w->mpi,
                                 &w->recv[r]));
    struct timespec deadline = monotonic_after(w->timeout_s);
    /* Spin for the first half millisecond (ranks usually arrive together),
     * then nap: 50 us for 50 ms, then 1 ms, so a waiting rank 0 does not
     * take a core from the ranks it waits for. */
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        /* MPI_Test per rank (not MPI_Testall, which frees nothing until all
         * are done) so that a timeout knows exactly who is missing. */
        int pending = 0;
        for (int r = 1; r < w->size; r++) {
            if (w->recv[r] == MPI_REQUEST_NULL)
                continue;
            int done = 0;
            HEED_MPI_CHECK(MPI_Test(&w->recv[r], &done, MPI_STATUS_IGNORE));
            pending += !done;
        }
        if (!pending)
            break;
        if (monotonic_passed(&deadline))
            report_arrivals(w, step, what);
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        double waited =
            (double)(now.tv_sec - t0.tv_sec) + 1e-9 * (double)(now.tv_nsec - t0.tv_nsec);
        if (waited > 0.0005) {
            struct timespec nap = {0, waited > 0.05 ? 1000000L : 50000L};
            nanosleep(&nap, NULL);
        }
    }
    for (int r = 1; r < w->size; r++)
        if (w->from[r].step != step || strcmp(w->from[r].what, what) != 0)
            report_arrivals(w, step, what);
}
