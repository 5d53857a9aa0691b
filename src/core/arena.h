/*
 * arena.h - a bump allocator for one training step's activations.
 *
 * The arena owns a list of blocks. arena_alloc hands out 64-byte aligned
 * slices; arena_reset forgets them all but keeps the blocks, so after the
 * first step (which sizes the arena) the training loop allocates nothing.
 * When a step needs more than the arena holds, a new block is malloc'd and
 * arena_block_count() grows: tests use that to prove the loop is malloc-free.
 */
#ifndef HEED_CORE_ARENA_H
#define HEED_CORE_ARENA_H

#include <stddef.h>

typedef struct arena arena;

/* Creates an arena whose first block holds `bytes`. Free with arena_free. */
arena *arena_create(size_t bytes);
void arena_free(arena *a);

/* Uninitialised, 64-byte aligned memory that lives until arena_reset. */
void *arena_alloc(arena *a, size_t bytes);
/* Same, zero-filled. */
void *arena_calloc(arena *a, size_t bytes);

/* Forgets every allocation. When the last step spilled into extra blocks,
 * they are merged into one block big enough for the whole step. */
void arena_reset(arena *a);

size_t arena_used(const arena *a);       /* bytes handed out since the reset */
size_t arena_high_water(const arena *a); /* largest arena_used ever seen */
long arena_block_count(const arena *a);  /* blocks malloc'd over the arena's life */

#endif
