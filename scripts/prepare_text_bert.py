#!/usr/bin/python3
"""Turn TSV files of (text, label) into a heed text dataset tokenized for a
BERT vocabulary (docs/data-format.md), with `heed tokenize`'s WordPiece:

    /usr/bin/python3 scripts/prepare_text_bert.py --vocab HF_DIR/vocab.txt \
        --train train.tsv --val val.tsv --test test.tsv --max-len 128 --out data/x.h5

Each TSV line is `text<TAB>label` (a label is any string; classes are the
sorted labels of the train file) or, with --pair, `text_a<TAB>text_b<TAB>label`
(segment ids are then written too). Sequences are [CLS] pieces [SEP], padded
with [PAD] to --max-len. The file stores vocab.txt as its vocabulary and the
ids of [PAD] [UNK] [CLS] [SEP] [MASK] as they are in vocab.txt (BERT's are
0, 100, 101, 102, 103), so a model imported with scripts/convert_hf_bert.py
reads it directly. Written under a temporary name and renamed.
"""
import argparse
import os
import subprocess
import sys

import h5py
import numpy as np


def fail(msg):
    sys.stderr.write("prepare_text_bert.py: %s\n" % msg)
    sys.exit(2)


def read_tsv(path, pair):
    texts, labels = [], []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line:
                continue
            parts = line.split("\t")
            want = 3 if pair else 2
            if len(parts) != want:
                fail("%s:%d: expected %d tab-separated fields, found %d" %
                     (path, n, want, len(parts)))
            texts.append("\t".join(parts[:-1]) if pair else parts[0])
            labels.append(parts[-1])
    if not texts:
        fail("%s: no samples" % path)
    return texts, labels


def tokenize(heed, vocab, texts, max_len, pair):
    args = [heed, "tokenize", "--vocab", vocab, "--max-len", str(max_len)]
    if pair:
        args.append("--pair")
    # one text per line: newlines inside a text would split it
    data = "".join(t.replace("\n", " ").replace("\r", " ") + "\n" for t in texts)
    out = subprocess.run(args, input=data.encode("utf-8"), stdout=subprocess.PIPE, check=True)
    lines = out.stdout.decode().splitlines()
    step = 2 if pair else 1
    if len(lines) != step * len(texts):
        fail("heed tokenize returned %d lines for %d texts" % (len(lines), len(texts)))
    tokens = np.zeros((len(texts), max_len), np.int32)
    segments = np.zeros((len(texts), max_len), np.int32) if pair else None
    for i in range(len(texts)):
        ids = [int(x) for x in lines[step * i].split()]
        tokens[i, :len(ids)] = ids
        if pair:
            seg = [int(x) for x in lines[step * i + 1].split()]
            segments[i, :len(seg)] = seg
    return tokens, segments


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vocab", required=True)
    ap.add_argument("--train", required=True)
    ap.add_argument("--val", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--max-len", type=int, default=128)
    ap.add_argument("--pair", action="store_true")
    ap.add_argument("--name", default="bert_text")
    ap.add_argument("--heed", default=os.environ.get("HEED", "build/heed"))
    a = ap.parse_args()
    with open(a.vocab, encoding="utf-8") as f:
        vocab = [line.rstrip("\r\n") for line in f]
    index = {t: i for i, t in enumerate(vocab)}
    special = {}
    for name, tok in (("pad_id", "[PAD]"), ("unk_id", "[UNK]"), ("cls_id", "[CLS]"),
                      ("sep_id", "[SEP]"), ("mask_id", "[MASK]")):
        if tok not in index:
            fail("%s has no %s" % (a.vocab, tok))
        special[name] = index[tok]
    if special["pad_id"] != 0:
        fail("%s: [PAD] must be id 0 (padding is written as zeros)" % a.vocab)
    splits = {s: read_tsv(getattr(a, s), a.pair) for s in ("train", "val", "test")}
    classes = sorted(set(splits["train"][1]))
    cindex = {c: i for i, c in enumerate(classes)}
    tmp = a.out + ".tmp"
    S = h5py.string_dtype("utf-8")
    with h5py.File(tmp, "w") as f:
        f.attrs["format_version"] = np.int32(1)
        f.attrs["kind"] = "text"
        f.attrs["name"] = a.name
        f.attrs["num_classes"] = np.int32(len(classes))
        f.create_dataset("classes", data=classes, dtype=S)
        f.create_dataset("vocab", data=vocab, dtype=S)
        f.attrs["vocab_size"] = np.int32(len(vocab))
        for k, v in special.items():
            f.attrs[k] = np.int32(v)
        f.attrs["max_len"] = np.int32(a.max_len)
        for split, (texts, labels) in splits.items():
            unknown = sorted(set(labels) - set(classes))
            if unknown:
                fail("%s: labels not in the train file: %s" % (getattr(a, split), unknown[:5]))
            tokens, segments = tokenize(a.heed, a.vocab, texts, a.max_len, a.pair)
            g = f.create_group(split)
            g.create_dataset("tokens", data=tokens)
            if segments is not None:
                g.create_dataset("segments", data=segments)
            g.create_dataset("labels", data=np.array([cindex[y] for y in labels], np.int32))
    os.replace(tmp, a.out)
    print("wrote %s: %s samples, %d classes, V = %d" %
          (a.out, "/".join(str(len(splits[s][0])) for s in splits), len(classes), len(vocab)))


if __name__ == "__main__":
    main()
