/* heed's WordPiece tokenizer against HF BertTokenizer's algorithm
 * (scripts/wordpiece_ref.py wrote the expected ids of hand-written cases:
 * punctuation, accents, CJK, control characters, unknown and long words,
 * empty input) on tests/fixtures/bert_vocab.txt; plus vocabulary loading,
 * truncation and bad vocabularies. */
#include "testutil.h"

#include "app/wordpiece.h"
#include "wordpiece_cases.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static wordpiece *load(void) {
    char err[512];
    wordpiece *w = wordpiece_load(tu_fixture("bert_vocab.txt"), err, sizeof err);
    if (!w)
        fail_msg("%s", err);
    return w;
}

static void test_cases_match_reference(void **state) {
    wordpiece *w = load();
    int failed = 0;
    for (size_t i = 0; i < sizeof wordpiece_cases / sizeof wordpiece_cases[0]; i++) {
        const wordpiece_case *c = &wordpiece_cases[i];
        int32_t ids[256];
        int n = wordpiece_encode(w, c->text, ids, 256);
        bool same = n == c->n;
        for (int k = 0; same && k < n; k++)
            same = ids[k] == c->ids[k];
        if (!same) {
            failed++;
            fprintf(stderr, "case %zu '%s': got %d ids:", i, c->text, n);
            for (int k = 0; k < n && k < 256; k++)
                fprintf(stderr, " %d", ids[k]);
            fprintf(stderr, "; want %d:", c->n);
            for (int k = 0; k < c->n; k++)
                fprintf(stderr, " %d", c->ids[k]);
            fprintf(stderr, "\n");
        }
    }
    assert_int_equal(failed, 0);
    wordpiece_free(w);
}

static void test_vocab_lookup_and_truncation(void **state) {
    wordpiece *w = load();
    assert_int_equal(wordpiece_id(w, "[UNK]"), 2);
    assert_int_equal(wordpiece_id(w, "##aff"), 25);
    assert_int_equal(wordpiece_id(w, "nope"), -1);
    assert_string_equal(wordpiece_token(w, 3), "[CLS]");
    assert_null(wordpiece_token(w, wordpiece_vocab_size(w)));
    int32_t ids[2] = {-7, -7};
    /* the count is the whole text's; only max ids are written */
    assert_int_equal(wordpiece_encode(w, "the cat sat", ids, 1), 3);
    assert_int_equal(ids[0], 6);
    assert_int_equal(ids[1], -7);
    /* invalid UTF-8 bytes are dropped like U+FFFD */
    assert_int_equal(wordpiece_encode(w, "cat\xff\xfe", ids, 2), 1);
    assert_int_equal(ids[0], 7);
    wordpiece_free(w);
}

static void test_bad_vocab(void **state) {
    char err[512];
    assert_null(wordpiece_load("/nonexistent/vocab.txt", err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/vocab.txt"));
    char path[] = "/tmp/heed_vocab_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("[PAD]\nhello\n", f);
    fclose(f);
    assert_null(wordpiece_load(path, err, sizeof err));
    assert_non_null(strstr(err, "[UNK]"));
    remove(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases_match_reference),
        cmocka_unit_test(test_vocab_lookup_and_truncation),
        cmocka_unit_test(test_bad_vocab),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
