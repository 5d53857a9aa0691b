#include "core/arena.h"

#include "core/check.h"

#include <stdlib.h>
#include <string.h>

enum { ARENA_ALIGN = 64 };

typedef struct arena_block {
    struct arena_block *next;
    size_t size, used;
    unsigned char *mem;
} arena_block;

struct arena {
    arena_block *head; /* the block being filled */
    arena_block *first;
    size_t used, high_water;
    long blocks_made;
};

static arena_block *arena_block_create(size_t bytes) {
    arena_block *b = xmalloc(sizeof *b);
    b->next = NULL;
    b->size = bytes;
    b->used = 0;
    b->mem = xaligned_alloc(ARENA_ALIGN, bytes);
    return b;
}

arena *arena_create(size_t bytes) {
    arena *a = xcalloc(1, sizeof *a);
    a->first = a->head = arena_block_create(bytes < 4096 ? 4096 : bytes);
    a->blocks_made = 1;
    return a;
}

static void arena_blocks_free(arena_block *b) {
    while (b) {
        arena_block *next = b->next;
        free(b->mem);
        free(b);
        b = next;
    }
}

void arena_free(arena *a) {
    if (!a)
        return;
    arena_blocks_free(a->first);
    free(a);
}

void *arena_alloc(arena *a, size_t bytes) {
    size_t need = (bytes + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (a->head->used + need > a->head->size) {
        size_t size = a->head->size * 2;
        if (size < need)
            size = need;
        arena_block *b = arena_block_create(size);
        a->head->next = b;
        a->head = b;
        a->blocks_made++;
    }
    void *p = a->head->mem + a->head->used;
    a->head->used += need;
    a->used += need;
    if (a->used > a->high_water)
        a->high_water = a->used;
    return p;
}

void *arena_calloc(arena *a, size_t bytes) {
    void *p = arena_alloc(a, bytes);
    memset(p, 0, bytes);
    return p;
}

void arena_reset(arena *a) {
    if (a->first->next) {
        /* The step spilled: replace all blocks by one that fits it. */
        arena_blocks_free(a->first);
        a->first = arena_block_create(a->high_water + a->high_water / 8);
        a->blocks_made++;
    }
    a->head = a->first;
    a->head->used = 0;
    a->used = 0;
}

size_t arena_used(const arena *a) {
    return a->used;
}

size_t arena_high_water(const arena *a) {
    return a->high_water;
}

long arena_block_count(const arena *a) {
    return a->blocks_made;
}
