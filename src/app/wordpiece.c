/*
 * wordpiece.c - BERT's uncased tokenizer (wordpiece.h): vocabulary hash
 * table, UTF-8, the character classes of HF's BasicTokenizer for the
 * blocks heed knows, and greedy longest-match-first WordPiece.
 */
#include "app/wordpiece.h"

#include "core/check.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { WORDPIECE_MAX_WORD_CHARS = 100 }; /* HF max_input_chars_per_word */

struct wordpiece {
    char **tokens; /* [n] owned */
    int n;
    int *slots; /* open addressing: token id or -1, cap a power of two */
    size_t cap;
    int unk;
};

static uint64_t fnv1a(const char *s, size_t len) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

/* Id of the token s[0, len), or -1. */
static int vocab_lookup(const wordpiece *w, const char *s, size_t len) {
    for (size_t i = fnv1a(s, len) & (w->cap - 1);; i = (i + 1) & (w->cap - 1)) {
        int id = w->slots[i];
        if (id < 0)
            return -1;
        if (strlen(w->tokens[id]) == len && memcmp(w->tokens[id], s, len) == 0)
            return id;
    }
}

wordpiece *wordpiece_load(const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot open vocabulary '%s': %s", path, strerror(errno));
        return NULL;
    }
    wordpiece *w = xcalloc(1, sizeof *w);
    int cap = 0;
    char *line = NULL;
    size_t linecap = 0;
    ssize_t len;
    while ((len = getline(&line, &linecap, f)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        if (w->n == cap) {
            cap = cap ? 2 * cap : 1024;
            w->tokens = xrealloc(w->tokens, sizeof *w->tokens * cap);
        }
        w->tokens[w->n++] = xstrdup(line);
    }
    free(line);
    bool read_error = ferror(f);
    fclose(f);
    if (read_error || w->n == 0) {
        snprintf(err, errlen, "vocabulary '%s' %s", path,
                 read_error ? "could not be read" : "is empty (expected one token a line)");
        wordpiece_free(w);
        return NULL;
    }
    for (w->cap = 16; w->cap < 2 * (size_t)w->n; w->cap *= 2)
        ;
    w->slots = xmalloc(sizeof *w->slots * w->cap);
    for (size_t i = 0; i < w->cap; i++)
        w->slots[i] = -1;
    for (int id = 0; id < w->n; id++) {
        size_t l = strlen(w->tokens[id]);
        size_t i = fnv1a(w->tokens[id], l) & (w->cap - 1);
        /* A repeated line takes over its earlier slot: the last id wins, as
         * in HF's load_vocab. */
        while (w->slots[i] >= 0 && strcmp(w->tokens[w->slots[i]], w->tokens[id]) != 0)
            i = (i + 1) & (w->cap - 1);
        w->slots[i] = id;
    }
    w->unk = vocab_lookup(w, "[UNK]", 5);
    if (w->unk < 0) {
        snprintf(err, errlen, "vocabulary '%s' has no [UNK] token", path);
        wordpiece_free(w);
        return NULL;
    }
    return w;
}

void wordpiece_free(wordpiece *w) {
    if (!w)
        return;
    for (int i = 0; i < w->n; i++)
        free(w->tokens[i]);
    free(w->tokens);
    free(w->slots);
    free(w);
}

int wordpiece_vocab_size(const wordpiece *w) {
    return w->n;
}

int wordpiece_id(const wordpiece *w, const char *token) {
    return vocab_lookup(w, token, strlen(token));
}

const char *wordpiece_token(const wordpiece *w, int id) {
    return id >= 0 && id < w->n ? w->tokens[id] : NULL;
}

/* ---- UTF-8 ------------------------------------------------------------ */

/* The code point at s (advancing *s); malformed or overlong sequences
 * give U+FFFD and consume one byte. */
static uint32_t utf8_next(const unsigned char **s) {
    const unsigned char *p = *s;
    uint32_t c = p[0];
    int n = c < 0x80             ? 0
            : (c & 0xE0) == 0xC0 ? 1
            : (c & 0xF0) == 0xE0 ? 2
            : (c & 0xF8) == 0xF0 ? 3
                                 : -1;
    if (n < 0) {
        *s = p + 1;
        return 0xFFFD;
    }
    c = n == 0 ? c : n == 1 ? c & 0x1F : n == 2 ? c & 0x0F : c & 0x07;
    for (int i = 1; i <= n; i++) {
        if ((p[i] & 0xC0) != 0x80) {
            *s = p + 1;
            return 0xFFFD;
        }
        c = (c << 6) | (p[i] & 0x3F);
    }
    static const uint32_t min[4] = {0, 0x80, 0x800, 0x10000};
    if (c < min[n] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
        *s = p + 1;
        return 0xFFFD;
    }
    *s = p + n + 1;
    return c;
}

static int utf8_put(char *out, uint32_t c) {
    if (c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (char)(0xC0 | (c >> 6));
        out[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        out[0] = (char)(0xE0 | (c >> 12));
        out[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        out[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (c >> 18));
    out[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((c >> 6) & 0x3F));
    out[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

/* ---- character classes (HF BasicTokenizer) --------------------------- */

static bool in_range(uint32_t c, uint32_t lo, uint32_t hi) {
    return c >= lo && c <= hi;
}

/* Space, \t, \n, \r and the Zs space separators. */
static bool is_whitespace(uint32_t c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == 0xA0 || c == 0x1680 ||
           in_range(c, 0x2000, 0x200A) || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* Categories Cc, Cf, Cs, Co (but not \t \n \r, which are whitespace). */
static bool is_control(uint32_t c) {
    if (c == '\t' || c == '\n' || c == '\r')
        return false;
    return c < 0x20 || in_range(c, 0x7F, 0x9F) || c == 0xAD || in_range(c, 0x600, 0x605) ||
           c == 0x61C || c == 0x6DD || c == 0x70F || c == 0x180E || in_range(c, 0x200B, 0x200F) ||
           in_range(c, 0x202A, 0x202E) || in_range(c, 0x2060, 0x2064) ||
           in_range(c, 0x2066, 0x206F) || in_range(c, 0xD800, 0xF8FF) || c == 0xFEFF ||
           in_range(c, 0xFFF9, 0xFFFB) || in_range(c, 0xF0000, 0x10FFFF);
}

/* HF counts every non-alphanumeric ASCII character as punctuation, plus
 * Unicode category P. */
static bool is_punctuation(uint32_t c) {
    if (in_range(c, 33, 47) || in_range(c, 58, 64) || in_range(c, 91, 96) || in_range(c, 123, 126))
        return true;
    switch (c) {
    case 0xA1:
    case 0xA7:
    case 0xAB:
    case 0xB6:
    case 0xB7:
    case 0xBB:
    case 0xBF:
    case 0x3030:
    case 0x303D:
    case 0x30A0:
    case 0x30FB:
    case 0xFF1A:
    case 0xFF1B:
    case 0xFF1F:
    case 0xFF20:
    case 0xFF3F:
    case 0xFF5B:
    case 0xFF5D:
        return true;
    default:
        break;
    }
    return in_range(c, 0x2010, 0x2027) ||
           (in_range(c, 0x2030, 0x205E) && c != 0x2044 && c != 0x2052) ||
           in_range(c, 0x3001, 0x3003) || in_range(c, 0x3008, 0x3011) ||
           in_range(c, 0x3014, 0x301F) || in_range(c, 0xFF01, 0xFF03) ||
           in_range(c, 0xFF05, 0xFF0A) || in_range(c, 0xFF0C, 0xFF0F) ||
           in_range(c, 0xFF3B, 0xFF3D) || in_range(c, 0xFF5F, 0xFF65);
}

/* The CJK Unified Ideographs blocks BERT splits into single characters. */
static bool is_cjk(uint32_t c) {
    return in_range(c, 0x4E00, 0x9FFF) || in_range(c, 0x3400, 0x4DBF) ||
           in_range(c, 0x20000, 0x2A6DF) || in_range(c, 0x2A700, 0x2B73F) ||
           in_range(c, 0x2B740, 0x2B81F) || in_range(c, 0x2B820, 0x2CEAF) ||
           in_range(c, 0xF900, 0xFAFF) || in_range(c, 0x2F800, 0x2FA1F);
}

/* Combining marks (category Mn) that NFD splits off and strip_accents drops. */
static bool is_combining(uint32_t c) {
    return in_range(c, 0x300, 0x36F) || in_range(c, 0x1AB0, 0x1AFF) ||
           in_range(c, 0x1DC0, 0x1DFF) || in_range(c, 0x20D0, 0x20FF) ||
           in_range(c, 0xFE20, 0xFE2F);
}

/* str.lower() for ASCII, Latin-1, Latin Extended-A, Greek and Cyrillic. */
static uint32_t to_lower(uint32_t c) {
    if (in_range(c, 'A', 'Z') || (in_range(c, 0xC0, 0xDE) && c != 0xD7))
        return c + 0x20;
    if (c == 0x130)
        return 'i'; /* İ -> i + U+0307, whose mark strip_accents drops */
    if ((in_range(c, 0x100, 0x137) || in_range(c, 0x14A, 0x177)) && c % 2 == 0)
        return c + 1;
    if ((in_range(c, 0x139, 0x148) || in_range(c, 0x179, 0x17E)) && c % 2 == 1)
        return c + 1;
    if (c == 0x178)
        return 0xFF;
    if (in_range(c, 0x391, 0x3A9) && c != 0x3A2)
        return c + 0x20;
    if (in_range(c, 0x410, 0x42F))
        return c + 0x20;
    if (in_range(c, 0x400, 0x40F))
        return c + 0x50;
    return c;
}

/* Base letter of the NFD decomposition of a Latin-1 / Latin Extended-A
 * letter (and a few Cyrillic ones), or c itself when it has none. */
static uint32_t strip_accent(uint32_t c) {
    static const char latin1[64 + 1] =
        "AAAAAA_CEEEEIIII_NOOOOO__UUUUY__aaaaaa_ceeeeiiii_nooooo__uuuuy_y";
    static const char ext_a[128 + 1] =
        "AaAaAaCcCcCcCcDd__EeEeEeEeEeGgGgGgGgHh__IiIiIiIiI___JjKk_LlLlLl__"
        "__NnNnNn___OoOoOo__RrRrRrSsSsSsSsTtTt__UuUuUuUuUuUuWwYyYZzZzZz_";
    if (in_range(c, 0xC0, 0xFF) && latin1[c - 0xC0] != '_')
        return (uint32_t)latin1[c - 0xC0];
    if (in_range(c, 0x100, 0x17F) && ext_a[c - 0x100] != '_')
        return (uint32_t)ext_a[c - 0x100];
    switch (c) {
    case 0x439:
        return 0x438; /* й */
    case 0x451:
    case 0x450:
        return 0x435; /* ё ѐ */
    case 0x45D:
        return 0x438; /* ѝ */
    case 0x457:
        return 0x456; /* ї */
    case 0x45E:
        return 0x443; /* ў */
    case 0x453:
        return 0x433; /* ѓ */
    case 0x45C:
        return 0x43A; /* ќ */
    default:
        return c;
    }
}

/* ---- WordPiece -------------------------------------------------------- */

typedef struct id_sink {
    int32_t *ids;
    int max, n;
} id_sink;

static void sink_put(id_sink *s, int id) {
    if (s->n < s->max)
        s->ids[s->n] = id;
    s->n++;
}

/* Greedy longest match of the word s[0, len) (nchars code points), with
 * "##" before every piece but the first; [UNK] for the whole word when it
 * is too long or some rest has no piece. buf has room for len + 3 bytes. */
static void wordpiece_word(const wordpiece *w, const char *s, size_t len, int nchars, char *buf,
                           id_sink *out) {
    if (nchars > WORDPIECE_MAX_WORD_CHARS) {
        sink_put(out, w->unk);
        return;
    }
    int first = out->n;
    size_t start = 0;
    while (start < len) {
        size_t end = len;
        int found = -1;
        while (end > start) {
            size_t l = 0;
            if (start > 0) {
                memcpy(buf, "##", 2);
                l = 2;
            }
            memcpy(buf + l, s + start, end - start);
            found = vocab_lookup(w, buf, l + end - start);
            if (found >= 0)
                break;
            do /* back one code point */
                end--;
            while (end > start && ((unsigned char)s[end] & 0xC0) == 0x80);
        }
        if (found < 0) {
            out->n = first; /* forget the pieces so far */
            sink_put(out, w->unk);
            return;
        }
        sink_put(out, found);
        start = end;
    }
}

int wordpiece_encode(const wordpiece *w, const char *text, int32_t *ids, int max) {
    size_t n = strlen(text);
    /* Worst case per input byte: a CJK character (3 bytes) becomes itself
     * between spaces; every other rule shrinks or keeps the length. */
    char *word = xmalloc(2 * n + 8);
    char *buf = xmalloc(2 * n + 8);
    id_sink out = {ids, max, 0};
    const unsigned char *p = (const unsigned char *)text;
    size_t wl = 0;
    int wc = 0;
    while (1) {
        bool end = !*p;
        uint32_t c = end ? 0 : utf8_next(&p);
        if (!end && (c == 0xFFFD || is_control(c)))
            continue;
        bool space = end || is_whitespace(c) || c == 0x2028 || c == 0x2029;
        bool alone = !space && (is_cjk(c) || is_punctuation(to_lower(c)));
        if (space || alone) {
            if (wl > 0)
                wordpiece_word(w, word, wl, wc, buf, &out);
            wl = 0;
            wc = 0;
            if (alone) {
                char one[4];
                int l = utf8_put(one, c);
                wordpiece_word(w, one, (size_t)l, 1, buf, &out);
            }
            if (end)
                break;
            continue;
        }
        c = strip_accent(to_lower(c));
        if (is_combining(c))
            continue;
        wl += (size_t)utf8_put(word + wl, c);
        wc++;
    }
    free(word);
    free(buf);
    return out.n;
}
