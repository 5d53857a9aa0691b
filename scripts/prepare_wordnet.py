#!/usr/bin/python3
"""Build the WordNet supersense dataset (heed's HDF5 format, kind "text").

Task: given the gloss (definition and examples) of a WordNet 3.0 synset,
predict its supersense, i.e. its lexicographer file (noun.animal, verb.motion,
adj.all, ...): 45 classes.

Source: data.noun, data.verb, data.adj, data.adv of Debian's wordnet-base
(/usr/share/wordnet). Every synset line is one sample (the license header
lines, which start with two spaces, are skipped):
  text  = the gloss, everything after the first " | "
  label = lex_filenum, field 2 of the line (0..44; names in CLASSES below,
          which is the order of lexnames(5WN))

Tokenisation: the text is lower-cased; a token is either a maximal run of
[a-z0-9] or any other single non-space character (so punctuation such as
; , ( ) " ' - is a token of its own, and "don't" is don ' t). Regex:
[a-z0-9]+|[^\\sa-z0-9].

Split: deterministic and stable, by a seeded hash of the synset's identity:
h = first 8 bytes of sha256(f"{seed}:{offset}{pos}") as a big-endian integer,
pos one of n v a r (the data file); h % 100 < 80 -> train, < 90 -> val,
else test. Adding or removing synsets does not move the others.

Vocabulary: [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4, then the --vocab-size
most frequent tokens of the train split (ties broken alphabetically), so the
stored vocab_size is 5 + --vocab-size when the train split has that many
distinct tokens. Tokens not in it map to [UNK].

Sequences: [CLS] + token ids, truncated to --max-len, right-padded with [PAD].

The file is written under a temporary name in the same folder and renamed
when complete.

Example:
  /usr/bin/python3 scripts/prepare_wordnet.py --out data/wordnet.h5
"""
import argparse
import collections
import hashlib
import os
import re
import sys

import h5py
import numpy as np

CLASSES = (
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact "
    "noun.attribute noun.body noun.cognition noun.communication noun.event "
    "noun.feeling noun.food noun.group noun.location noun.motive noun.object "
    "noun.person noun.phenomenon noun.plant noun.possession noun.process "
    "noun.quantity noun.relation noun.shape noun.state noun.substance noun.time "
    "verb.body verb.change verb.cognition verb.communication verb.competition "
    "verb.consumption verb.contact verb.creation verb.emotion verb.motion "
    "verb.perception verb.possession verb.social verb.stative verb.weather adj.ppl"
).split()
assert len(CLASSES) == 45
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PAD, UNK, CLS, SEP, MASK = range(5)
DATA_FILES = [("noun", "n"), ("verb", "v"), ("adj", "a"), ("adv", "r")]
TOKEN_RE = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")
SPLITS = ("train", "val", "test")


class PrepError(Exception):
    pass


def tokenize(text):
    return TOKEN_RE.findall(text.lower())


def split_of(seed, offset, pos):
    h = int.from_bytes(hashlib.sha256(f"{seed}:{offset}{pos}".encode()).digest()[:8], "big")
    r = h % 100
    return "train" if r < 80 else ("val" if r < 90 else "test")


def read_synsets(wordnet_dir):
    """Yield (offset, pos, lex_filenum, gloss) for every synset line."""
    for name, pos in DATA_FILES:
        path = os.path.join(wordnet_dir, f"data.{name}")
        if not os.path.isfile(path):
            raise PrepError(f"{path}: no such file (install wordnet-base: "
                            "apt-get install wordnet-base, or pass --wordnet-dir DIR)")
        with open(path, encoding="utf-8", errors="replace") as f:
            for lineno, line in enumerate(f, 1):
                if line.startswith("  "):
                    continue  # license header
                line = line.rstrip("\n")
                if not line.strip():
                    continue
                head, sep, gloss = line.partition(" | ")
                fields = head.split()
                if len(fields) < 4 or not fields[0].isdigit() or not fields[1].isdigit():
                    raise PrepError(f"{path}:{lineno}: not a WordNet data line: {line[:60]!r}")
                lex = int(fields[1])
                if not 0 <= lex < len(CLASSES):
                    raise PrepError(f"{path}:{lineno}: lex_filenum {lex} outside [0, {len(CLASSES)})")
                yield fields[0], pos, lex, gloss.strip() if sep else ""


def build_vocab(token_lists, size):
    counts = collections.Counter()
    for toks in token_lists:
        counts.update(toks)
    words = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:size]
    return SPECIALS + [w for w, _ in words], len(counts)


def encode(token_lists, index, max_len):
    ids = np.full((len(token_lists), max_len), PAD, dtype=np.int32)
    truncated = 0
    for i, toks in enumerate(token_lists):
        seq = [CLS] + [index.get(t, UNK) for t in toks]
        if len(seq) > max_len:
            truncated += 1
            seq = seq[:max_len]
        ids[i, :len(seq)] = seq
    return ids, truncated


def write(path, data, vocab, max_len):
    s = h5py.string_dtype("utf-8")
    with h5py.File(path, "w") as f:
        f.attrs["format_version"] = np.int32(1)
        f.attrs["kind"] = "text"
        f.attrs["name"] = "wordnet_supersense"
        f.attrs["num_classes"] = np.int32(len(CLASSES))
        f.attrs["vocab_size"] = np.int32(len(vocab))
        f.attrs["pad_id"] = np.int32(PAD)
        f.attrs["unk_id"] = np.int32(UNK)
        f.attrs["cls_id"] = np.int32(CLS)
        f.attrs["sep_id"] = np.int32(SEP)
        f.attrs["mask_id"] = np.int32(MASK)
        f.attrs["max_len"] = np.int32(max_len)
        f.create_dataset("classes", data=CLASSES, dtype=s)
        f.create_dataset("vocab", data=vocab, dtype=s)
        for name in SPLITS:
            ids, labels = data[name]
            g = f.create_group(name)
            g.create_dataset("tokens", data=ids)
            g.create_dataset("labels", data=labels)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 epilog="See the top of this file and docs/data-format.md.")
    ap.add_argument("--out", required=True, help="HDF5 file to write")
    ap.add_argument("--wordnet-dir", default="/usr/share/wordnet",
                    help="folder with data.noun etc. (default: %(default)s)")
    ap.add_argument("--max-len", type=int, default=64, help="sequence length L, [CLS] included (default: 64)")
    ap.add_argument("--vocab-size", type=int, default=20000,
                    help="number of words after the 5 special tokens (default: 20000)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the split hash (default: 0)")
    args = ap.parse_args()
    if args.max_len < 2:
        ap.error("--max-len must be at least 2 ([CLS] and one token)")
    if args.vocab_size < 1:
        ap.error("--vocab-size must be at least 1")

    try:
        texts = {k: [] for k in SPLITS}
        labels = {k: [] for k in SPLITS}
        for offset, pos, lex, gloss in read_synsets(args.wordnet_dir):
            k = split_of(args.seed, offset, pos)
            texts[k].append(tokenize(gloss))
            labels[k].append(lex)
        if any(not texts[k] for k in SPLITS):
            raise PrepError(f"{args.wordnet_dir}: an empty split: " +
                            ", ".join(f"{k} {len(texts[k])}" for k in SPLITS))
        vocab, distinct = build_vocab(texts["train"], args.vocab_size)
        index = {w: i for i, w in enumerate(vocab)}
        data, stats = {}, {}
        for k in SPLITS:
            ids, truncated = encode(texts[k], index, args.max_len)
            data[k] = (ids, np.asarray(labels[k], dtype=np.int32))
            n_tok = sum(len(t) for t in texts[k])
            n_unk = int(sum(index.get(t, UNK) == UNK for toks in texts[k] for t in toks))
            stats[k] = (truncated, n_tok, n_unk)

        out = os.path.abspath(args.out)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        tmp = f"{out}.tmp{os.getpid()}"
        try:
            write(tmp, data, vocab, args.max_len)
            os.replace(tmp, out)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except (PrepError, OSError) as e:
        sys.exit(f"prepare_wordnet.py: error: {e}")

    print(f"wrote {args.out}: vocab_size {len(vocab)} ({distinct} distinct train tokens), "
          f"max_len {args.max_len}, {len(CLASSES)} classes")
    for k in SPLITS:
        truncated, n_tok, n_unk = stats[k]
        print(f"  {k:5s} {len(data[k][1]):6d} samples, {truncated} truncated, "
              f"{100.0 * n_unk / max(n_tok, 1):.2f}% [UNK] tokens")
    counts = np.stack([np.bincount(data[k][1], minlength=len(CLASSES)) for k in SPLITS])
    print(f"  {'class':22s} {'train':>6s} {'val':>6s} {'test':>6s}")
    for c, name in enumerate(CLASSES):
        print(f"  {c:2d} {name:19s} {counts[0, c]:6d} {counts[1, c]:6d} {counts[2, c]:6d}")


if __name__ == "__main__":
    main()
