/*
 * grad_sync_thread.h - the progress thread of grad_sync (grad_sync.h), for
 * grad_sync.c only.
 *
 * Why a thread: driven from the backward hook, a bucket in flight moves one
 * ring step per tape entry of each rank, and at 16 ranks a bucket's 15
 * steps can outlast the whole backward. The thread polls the ring every few
 * tens of microseconds instead, on the rank's own core (the scheduler
 * interleaves it with the training thread; it sleeps between polls).
 *
 * MPI sees one caller at a time (MPI_THREAD_SERIALIZED): between
 * grad_sync_begin and grad_sync_finish only the thread calls MPI; the hook
 * just publishes how far backward has got; finish parks the thread (a
 * mutex handoff) before it touches MPI again. The thread runs exactly the
 * hook's schedule (grad_sync_advance), so results are bitwise the same.
 */
#ifndef HEED_DIST_GRAD_SYNC_THREAD_H
#define HEED_DIST_GRAD_SYNC_THREAD_H

#include "dist/grad_sync.h"

/* Starts the thread, parked. Returns NULL (and starts nothing) when MPI's
 * thread level is below MPI_THREAD_SERIALIZED. */
grad_sync_thread *grad_sync_thread_create(grad_sync *s);

/* Wakes the thread to drive s until grad_sync_thread_park. */
void grad_sync_thread_run(grad_sync_thread *t);

/* Backward has finished tape entry `entry` (called from the hook). */
void grad_sync_thread_note_entry(grad_sync_thread *t, int entry);

/* Stops driving and returns once the thread is parked: MPI and s are the
 * caller's again. */
void grad_sync_thread_park(grad_sync_thread *t);

/* Ends and joins the thread (parked or not). */
void grad_sync_thread_free(grad_sync_thread *t);

#endif
