#include "dist/watchdog_fault.h"

#include "core/check.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

debug_fault debug_fault_from_env(void) {
    debug_fault f = {FAULT_NONE, -1, -1};
    const char *v = getenv("HEED_DEBUG_FAULT");
    if (!v || !*v)
        return f;
    char kind[16];
    long long rank, step;
    char tail;
    if (sscanf(v, "%15[a-z]:%lld:%lld%c", kind, &rank, &step, &tail) != 3 || rank < 0 || step < -1)
        HEED_DIE(HEED_EXIT_BAD_INPUT,
                 "HEED_DEBUG_FAULT='%s': expected KIND:RANK:STEP with KIND stall, kill, sleep, "
                 "skip or nan and STEP >= -1 (-1: during start-up)",
                 v);
    if (!strcmp(kind, "stall"))
        f.kind = FAULT_STALL;
    else if (!strcmp(kind, "kill"))
        f.kind = FAULT_KILL;
    else if (!strcmp(kind, "sleep"))
        f.kind = FAULT_SLEEP;
    else if (!strcmp(kind, "skip"))
        f.kind = FAULT_SKIP;
    else if (!strcmp(kind, "nan"))
        f.kind = FAULT_NAN;
    else
        HEED_DIE(HEED_EXIT_BAD_INPUT,
                 "HEED_DEBUG_FAULT='%s': unknown kind '%s' (stall, kill, sleep, skip, nan)", v,
                 kind);
    f.rank = (int)rank;
    f.step = step;
    return f;
}

fault_kind debug_fault_hit(const debug_fault *f, int rank, int64_t step) {
    if (f->kind == FAULT_NONE || f->rank != rank || f->step != step)
        return FAULT_NONE;
    fprintf(stderr, "heed: HEED_DEBUG_FAULT: rank %d %s at step %lld\n", rank,
            f->kind == FAULT_STALL   ? "stalls"
            : f->kind == FAULT_KILL  ? "kills itself (SIGKILL)"
            : f->kind == FAULT_SLEEP ? "sleeps 10 s"
            : f->kind == FAULT_SKIP  ? "skips the step"
                                     : "poisons its input with NaN",
            (long long)step);
    fflush(stderr);
    if (f->kind == FAULT_KILL)
        raise(SIGKILL);
    if (f->kind == FAULT_SLEEP) {
        struct timespec t = {10, 0};
        nanosleep(&t, NULL); /* EINTR: a signal (preemption) ends it early */
        return FAULT_NONE;
    }
    if (f->kind == FAULT_STALL)
        for (;;)
            pause(); /* until mpirun kills us */
    return f->kind;
}
