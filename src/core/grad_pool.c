#include "core/grad_pool.h"

#include <stdlib.h>

enum { POOL_ALIGN = 64 };

typedef struct segment {
    size_t offset, bytes;
} segment;

/* Free memory below the pool's end, sorted by offset, never touching. */
typedef struct free_list {
    segment *seg;
    int n;
    size_t end; /* the pool's size so far */
} free_list;

static size_t take(free_list *f, size_t bytes) {
    for (int i = 0; i < f->n; i++) {
        segment *s = &f->seg[i];
        if (s->bytes < bytes)
            continue;
        size_t at = s->offset;
        s->offset += bytes;
        s->bytes -= bytes;
        if (s->bytes == 0) {
            for (int j = i + 1; j < f->n; j++)
                f->seg[j - 1] = f->seg[j];
            f->n--;
        }
        return at;
    }
    /* Grow the pool, starting inside a free tail if there is one. */
    size_t at = f->end;
    if (f->n > 0 && f->seg[f->n - 1].offset + f->seg[f->n - 1].bytes == f->end) {
        at = f->seg[f->n - 1].offset;
        f->n--;
    }
    f->end = at + bytes;
    return at;
}

static void give_back(free_list *f, size_t offset, size_t bytes) {
    int i = 0;
    while (i < f->n && f->seg[i].offset < offset)
        i++;
    for (int j = f->n; j > i; j--)
        f->seg[j] = f->seg[j - 1];
    f->seg[i] = (segment){offset, bytes};
    f->n++;
    if (i + 1 < f->n && f->seg[i].offset + f->seg[i].bytes == f->seg[i + 1].offset) {
        f->seg[i].bytes += f->seg[i + 1].bytes;
        for (int j = i + 2; j < f->n; j++)
            f->seg[j - 1] = f->seg[j];
        f->n--;
    }
    if (i > 0 && f->seg[i - 1].offset + f->seg[i - 1].bytes == f->seg[i].offset) {
        f->seg[i - 1].bytes += f->seg[i].bytes;
        for (int j = i + 1; j < f->n; j++)
            f->seg[j - 1] = f->seg[j];
        f->n--;
    }
}

/* An event of the sweep: a span placed (at its hi) or freed (at its lo). */
typedef struct event {
    int at, span;
} event;

/* Latest first; ties by span, so the plan does not depend on qsort. */
static int latest_first(const void *a, const void *b) {
    const event *x = a, *y = b;
    if (x->at != y->at)
        return (x->at < y->at) - (x->at > y->at);
    return (x->span > y->span) - (x->span < y->span);
}

static size_t padded(size_t bytes) {
    size_t p = (bytes + POOL_ALIGN - 1) & ~(size_t)(POOL_ALIGN - 1);
    return p ? p : POOL_ALIGN;
}

size_t grad_pool_plan(grad_span *spans, int n, arena *scratch) {
    if (n == 0)
        return 0;
    event *born = arena_alloc(scratch, sizeof *born * (size_t)n);
    event *dies = arena_alloc(scratch, sizeof *dies * (size_t)n);
    for (int i = 0; i < n; i++) {
        born[i] = (event){spans[i].hi, i};
        dies[i] = (event){spans[i].lo, i};
    }
    qsort(born, (size_t)n, sizeof *born, latest_first);
    qsort(dies, (size_t)n, sizeof *dies, latest_first);
    free_list f = {arena_alloc(scratch, sizeof(segment) * (size_t)(n + 1)), 0, 0};
    int a = 0, d = 0;
    /* Entry t needs its spans before it runs and frees those ending at it
     * after: at one index, placing comes first. A span is placed before it
     * is freed, since lo <= hi. */
    while (a < n) {
        if (born[a].at >= dies[d].at) {
            grad_span *s = &spans[born[a++].span];
            s->offset = take(&f, padded(s->bytes));
        } else {
            grad_span *s = &spans[dies[d++].span];
            give_back(&f, s->offset, padded(s->bytes));
        }
    }
    return f.end;
}
