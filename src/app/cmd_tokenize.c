/*
 * cmd_tokenize.c - `heed tokenize --vocab vocab.txt [--max-len L]
 * [--no-special]`: BERT's uncased WordPiece tokenizer (wordpiece.h) as a
 * filter. Every line of stdin (UTF-8 text) becomes one line of
 * space-separated token ids on stdout: [CLS] pieces [SEP], cut so that the
 * whole fits in L ids ([SEP] kept last), no padding. A line "A<TAB>B" is a
 * sentence pair with --pair: [CLS] A [SEP] B [SEP], and a second line of
 * segment ids (0 for A, 1 for B) follows each. scripts/prepare_text_bert.py
 * turns a TSV of (text, label) into a heed dataset with it.
 */
#include "app/commands.h"
#include "app/wordpiece.h"

#include "core/check.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out) {
    fprintf(out, "usage: heed tokenize --vocab vocab.txt [--max-len L (512)] [--no-special] "
                 "[--pair] < text > ids\n");
}

static int special_id(const wordpiece *w, const char *tok, const char *vocab) {
    int id = wordpiece_id(w, tok);
    if (id < 0)
        HEED_DIE(HEED_EXIT_BAD_INPUT, "heed tokenize: %s has no %s token", vocab, tok);
    return id;
}

int cmd_tokenize(int argc, char **argv) {
    const char *vocab = NULL;
    int max_len = 512;
    bool special = true, pair = false;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--vocab") && i + 1 < argc) {
            vocab = argv[++i];
        } else if (!strcmp(argv[i], "--max-len") && i + 1 < argc) {
            max_len = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--no-special")) {
            special = false;
        } else if (!strcmp(argv[i], "--pair")) {
            pair = true;
        } else if (!strcmp(argv[i], "--help")) {
            usage(stdout);
            return HEED_EXIT_OK;
        } else {
            fprintf(stderr, "heed tokenize: unknown or incomplete option '%s'\n", argv[i]);
            usage(stderr);
            return HEED_EXIT_BAD_INPUT;
        }
    }
    if (!vocab || max_len < (special ? 3 : 1)) {
        fprintf(stderr, "heed tokenize: --vocab FILE is required and --max-len must be >= %d\n",
                special ? 3 : 1);
        return HEED_EXIT_BAD_INPUT;
    }
    char err[1024];
    wordpiece *w = wordpiece_load(vocab, err, sizeof err);
    if (!w) {
        fprintf(stderr, "heed tokenize: %s\n", err);
        return HEED_EXIT_BAD_INPUT;
    }
    int cls = special ? special_id(w, "[CLS]", vocab) : -1;
    int sep = special ? special_id(w, "[SEP]", vocab) : -1;
    int32_t *a = xmalloc(sizeof(int32_t) * max_len), *b = xmalloc(sizeof(int32_t) * max_len);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, stdin)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        char *second = NULL;
        if (pair && (second = strchr(line, '\t')))
            *second++ = 0;
        int room = max_len - (special ? (second ? 3 : 2) : 0);
        int na = wordpiece_encode(w, line, a, max_len);
        int nb = second ? wordpiece_encode(w, second, b, max_len) : 0;
        na = na < max_len ? na : max_len;
        nb = nb < max_len ? nb : max_len;
        /* Longest-first truncation, as HF does for pairs. */
        while (na + nb > room) {
            if (na >= nb)
                na--;
            else
                nb--;
        }
        if (special)
            printf("%d ", cls);
        for (int i = 0; i < na; i++)
            printf("%d ", a[i]);
        if (special)
            printf("%d", sep);
        for (int i = 0; i < nb; i++)
            printf(" %d", b[i]);
        if (second && special)
            printf(" %d", sep);
        printf("\n");
        if (pair) {
            int n0 = na + (special ? 2 : 0), n1 = nb + (second && special ? 1 : 0);
            for (int i = 0; i < n0 + n1; i++)
                printf(i ? " %d" : "%d", i < n0 ? 0 : 1);
            printf("\n");
        }
    }
    free(line);
    free(a);
    free(b);
    wordpiece_free(w);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "heed tokenize: writing the output failed\n");
        return HEED_EXIT_INTERNAL;
    }
    return HEED_EXIT_OK;
}
