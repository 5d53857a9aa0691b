/*
 * bad_input.h - all ranks agree that the user's input is bad, then stop
 * together.
 *
 * A problem in a file, option or checkpoint the user gave is not a bug: it
 * gets one clear message and exit code HEED_EXIT_BAD_INPUT (2), not an abort
 * with a stack of MPI noise. The danger under MPI is that one rank finds the
 * problem and leaves while the others wait in the next collective forever.
 * So every check of user input ends in an agreement: an all-reduce of a
 * "failed" flag, after which every rank knows the same verdict and the same
 * message (that of the lowest failing rank), and they either all go on or
 * all stop.
 *
 *     char err[HEED_BAD_INPUT_MSG_MAX] = "";
 *     bool bad = parse_something(..., err, sizeof err) != 0;   // per rank
 *     bad_input_agree(MPI_COMM_WORLD, bad, err);              // collective
 *     // here no rank failed
 */
#ifndef HEED_DIST_BAD_INPUT_H
#define HEED_DIST_BAD_INPUT_H

#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/check.h" /* HEED_EXIT_BAD_INPUT */

/* Longest message carried between ranks, terminator included; longer ones
 * are cut. */
#define HEED_BAD_INPUT_MSG_MAX 2048

/* Agrees whether any rank of `comm` failed. Returns false when none did
 * (and leaves `out` alone). Otherwise copies the message of the lowest
 * failing rank into out[0..outlen) on every rank (cut to fit, always
 * terminated; `out` may be NULL) and returns true, the same on every rank.
 * `msg` is read only on a failing rank and may be NULL there too ("unknown
 * problem"). Collective: every rank of `comm` must call this. */
bool bad_input_any(MPI_Comm comm, bool failed, const char *msg, char *out, size_t outlen);

/* Stops every rank with HEED_EXIT_BAD_INPUT: rank 0 of `comm` prints
 * "heed: error: MSG" to stderr (once for the whole job), every rank calls
 * MPI_Finalize and exits with code 2, so mpirun returns 2. Every rank must
 * call this with the same verdict (typically after bad_input_any); `msg` is
 * used on rank 0 only. `comm` must contain every process of the job (it is
 * MPI_COMM_WORLD or a duplicate of it), because MPI_Finalize is collective
 * over all of them; when it does not, the job ends with MPI_Abort(comm, 2)
 * instead. Works without MPI initialised too (then it just prints and
 * exits). Collective. */
_Noreturn void bad_input_exit(MPI_Comm comm, const char *msg);

/* bad_input_any, then bad_input_exit with the agreed message when any rank
 * failed. Returns only when no rank failed. Collective. */
void bad_input_agree(MPI_Comm comm, bool failed, const char *msg);

#endif
