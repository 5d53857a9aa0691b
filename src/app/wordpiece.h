/*
 * wordpiece.h - BERT's uncased tokenizer: Hugging Face's BasicTokenizer
 * (do_lower_case=True) followed by its WordpieceTokenizer, on a vocab.txt.
 *
 *   wordpiece *wp = wordpiece_load("vocab.txt", err, sizeof err);
 *   int n = wordpiece_encode(wp, "Héllo, world!", ids, max);   // hello , world !
 *   wordpiece_free(wp);
 *
 * Basic tokenization: drop NUL, U+FFFD and control characters; every
 * whitespace character becomes a space; CJK ideographs become words of
 * their own; lower-case; strip accents (NFD, then drop combining marks);
 * every punctuation character becomes a word of its own. WordPiece: greedy
 * longest match first, continuation pieces prefixed "##"; a word longer
 * than 100 characters, or one that cannot be covered by pieces, is [UNK].
 *
 * Limits (heed carries no Unicode database): lower-casing knows ASCII,
 * Latin-1, Latin Extended-A, Greek and Cyrillic capitals; accent stripping
 * decomposes Latin-1 and Latin Extended-A letters and drops the combining
 * marks of U+0300-036F, 1AB0-1AFF, 1DC0-1DFF, 20D0-20FF and FE20-FE2F;
 * punctuation is ASCII, Latin-1's, General Punctuation (U+2010-205E), CJK
 * Symbols and Punctuation and the fullwidth forms. Text outside these (e.g.
 * Vietnamese letters with two accents) may tokenize differently from HF.
 * Pure C, no MPI; not thread-safe per object only in the sense that encode
 * keeps no state: several threads may share one wordpiece.
 */
#ifndef HEED_APP_WORDPIECE_H
#define HEED_APP_WORDPIECE_H

#include <stddef.h>
#include <stdint.h>

typedef struct wordpiece wordpiece;

/* Reads vocab.txt (one token per line, id = line number, UTF-8). NULL with
 * a message naming the file when it cannot be read, is empty, or lacks
 * [UNK]. */
wordpiece *wordpiece_load(const char *vocab_path, char *err, size_t errlen);
void wordpiece_free(wordpiece *w);

int wordpiece_vocab_size(const wordpiece *w);
/* Id of `token`, or -1. */
int wordpiece_id(const wordpiece *w, const char *token);
/* Token of `id` (owned by w), or NULL when out of range. */
const char *wordpiece_token(const wordpiece *w, int id);

/* Tokenizes the UTF-8 text (invalid bytes count as U+FFFD and are
 * dropped) and writes the first `max` ids to ids. Returns the number of
 * ids the whole text gives (> max when it was cut). */
int wordpiece_encode(const wordpiece *w, const char *text, int32_t *ids, int max);

#endif
