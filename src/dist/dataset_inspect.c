/*
 * dataset_inspect.c - `heed inspect`: runs the validator of dataset_check.c
 * over a whole file (no MPI) and prints what it found and every problem.
 */
#include "dist/dataset.h"

#include <stdio.h>

#include "dist/dataset_check.h"
#include "dist/dataset_h5.h"

static void print_string_list(FILE *out, char **s, int n, int show) {
    for (int i = 0; i < n && i < show; i++)
        fprintf(out, "%s\"%s\"", i ? ", " : "", s[i]);
    if (n > show)
        fprintf(out, ", ... (%d more)", n - show);
}

int dataset_inspect(const char *path, FILE *out) {
    dataset *ds = dataset_alloc(path);
    checker c = {.pr = {.path = path}, .ds = ds, .file = -1, .scan = true, .scan_size = 1};
    h5_quiet q = checker_quiet_begin();
    bool opened = checker_open_file(&c, path);
    if (opened)
        checker_run(&c);
    checker_quiet_end(q);
    ds->h5->file = c.file;

    fprintf(out, "file        %s\n", path);
    if (opened) {
        fprintf(out, "kind        %s%s\n", dataset_kind_name(ds->kind),
                c.kind_known ? "" : " (guessed from /train)");
        fprintf(out, "name        %s\n", ds->name);
        fprintf(out, "classes     %d", ds->num_classes);
        if (ds->classes) {
            fprintf(out, ": ");
            print_string_list(out, ds->classes, ds->num_classes, 12);
        }
        fprintf(out, "\n");
        if (ds->has_images && ds->channels > 0)
            fprintf(out, "images      C x H x W = %d x %d x %d\n", ds->channels, ds->height,
                    ds->width);
        if (ds->has_tokens) {
            fprintf(out,
                    "vocabulary  %d tokens, max_len %d, ids pad %d unk %d cls %d sep %d mask %d",
                    ds->vocab_size, ds->max_len, ds->pad_id, ds->unk_id, ds->cls_id, ds->sep_id,
                    ds->mask_id);
            if (ds->vocab) {
                fprintf(out, "\n            first: ");
                print_string_list(out, ds->vocab, ds->vocab_size, 8);
            }
            fprintf(out, "\n");
        }
        fprintf(out, "%-6s %-9s %-9s %-22s %s\n", "split", "dataset", "dtype", "shape", "storage");
        for (int s = 0; s < DATASET_SPLIT_COUNT; s++) {
            if (!c.split_present[s]) {
                fprintf(out, "%-6s (missing)\n", dataset_split_name((dataset_split)s));
                continue;
            }
            bool first = true;
            for (int m = 0; m < DS_COUNT; m++) {
                member_facts *f = &c.facts[s][m];
                if (!f->present)
                    continue;
                char dt[96];
                checker_dims_text(f->ndim, f->dims, dt, sizeof dt);
                fprintf(out, "%-6s %-9s %-9s %-22s %s",
                        first ? dataset_split_name((dataset_split)s) : "", dataset_member_names[m],
                        f->dtype, dt, f->storage);
                dataset_split_info *si = &ds->splits[s];
                if (m == DS_IMAGES && si->mean) {
                    fprintf(out, "  mean");
                    for (int i = 0; i < ds->channels && i < 4; i++)
                        fprintf(out, " %.4g", si->mean[i]);
                    fprintf(out, " std");
                    for (int i = 0; i < ds->channels && i < 4; i++)
                        fprintf(out, " %.4g", si->std[i]);
                }
                if (m == DS_TOKENS && si->lengths && si->n > 0)
                    fprintf(out, "  length mean %.1f max %d", c.length_sum[s] / (double)si->n,
                            c.length_max[s]);
                fprintf(out, "\n");
                first = false;
            }
        }
    }
    int count = c.pr.count;
    if (count == 0)
        fprintf(out, "problems    none: the file is valid\n");
    else
        fprintf(out, "problems    %d\n", count);
    for (int i = 0; i < count; i++)
        fprintf(out, "  %s\n", c.pr.msg[i]);
    checker_problems_free(&c.pr);
    dataset_close(ds);
    return count;
}
