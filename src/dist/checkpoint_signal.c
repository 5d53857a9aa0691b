/*
 * checkpoint_signal.c - preemption: SIGTERM or SIGUSR1 (Slurm's --signal)
 * asks the run to checkpoint and exit HEED_EXIT_PREEMPTED.
 *
 * The handler only sets a flag (the one thing async-signal-safe code may
 * do); the ranks agree on it once per step with an MPI_Allreduce (MAX), so
 * a signal that reached one rank stops all of them after the same step.
 * The flag is the one mutable global of src/: a signal handler has no
 * context argument to carry it.
 */
#include "dist/check_dist.h"
#include "dist/checkpoint.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t ckpt_signal_flag;

static void on_signal(int sig) {
    (void)sig;
    ckpt_signal_flag = 1;
}

void ckpt_signal_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    if (sigemptyset(&sa.sa_mask) != 0)
        HEED_DIE(HEED_EXIT_INTERNAL, "sigemptyset failed");
    sa.sa_flags = SA_RESTART; /* MPI and HDF5 calls resume after the handler */
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGUSR1, &sa, NULL) != 0)
        HEED_DIE(HEED_EXIT_INTERNAL, "sigaction(SIGTERM/SIGUSR1) failed");
}

void ckpt_signal_raise(void) {
    ckpt_signal_flag = 1;
}

bool ckpt_signal_agree(const comm *c) {
    int mine = ckpt_signal_flag ? 1 : 0, any = 0;
    HEED_MPI_CHECK(MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, c->mpi));
    return any != 0;
}
