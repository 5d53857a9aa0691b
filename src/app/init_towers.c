#include "app/init_towers.h"

#include "core/check.h"
#include "dist/params_file.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool init_towers_load(params *ps, const char *prefix, const char *path, int *loaded, char *err,
                      size_t errlen) {
    size_t plen = strlen(prefix);
    /* A view of ps holding only the prefixed tensors, under their names
     * without the prefix, pointing at the same values: params_file_read then
     * fills them in place. */
    params view;
    memset(&view, 0, sizeof view);
    tensor *renamed = xcalloc((size_t)ps->count + 1, sizeof *renamed);
    view.tensors = xcalloc((size_t)ps->count + 1, sizeof *view.tensors);
    view.offset = xcalloc((size_t)ps->count + 1, sizeof *view.offset);
    for (int i = 0; i < ps->count; i++) {
        const tensor *t = ps->tensors[i];
        if (strncmp(t->name, prefix, plen) != 0)
            continue;
        renamed[view.count] = *t;
        renamed[view.count].name = t->name + plen;
        view.tensors[view.count] = &renamed[view.count];
        view.offset[view.count] = ps->offset[i];
        view.count++;
    }
    view.cap = view.count;
    view.data = ps->data;
    view.grad = ps->grad;
    view.numel = ps->numel;
    bool ok = view.count > 0;
    params_file_report rep;
    if (!ok)
        snprintf(err, errlen, "the model has no parameters named '%s*' to load from %s", prefix,
                 path);
    else
        ok = params_file_read(path, &view, true, &rep, err, errlen);
    *loaded = ok ? rep.loaded : 0;
    free(renamed);
    free(view.tensors);
    free(view.offset);
    return ok;
}
