#!/usr/bin/python3
"""Build Fashion-VQA, a paired image+question task, in heed's HDF5 format.

Every sample is a Fashion-MNIST image and a short question about it; the
label is the answer. The file is kind "image_text" (docs/data-format.md):
images uint8 [N, 1, 28, 28] and tokens int32 [N, L] paired row by row.

Images come from Debian's dataset-fashion-mnist, read with the code of
scripts/prepare_fashion_mnist.py (same split: train = the first 55,000
official training images, val = the last 5,000, test = the official 10,000
test images), so no image of one split appears in another.

Question types (each with several phrasings):

  what        "what is this ?"                  -> one of the 10 class names
  footwear    "is this footwear ?"              -> yes for sandal, sneaker, ankle boot
  upper_body  "is it worn on the upper body ?"  -> yes for t-shirt, pullover, coat, shirt
  clothing    "is this a piece of clothing ?"   -> yes for the 6 garments (not shoes, bag)
  is_<class>  "is this a bag ?" (10 types)      -> yes for that class only

Answers (labels): 0 "no", 1 "yes", 2 + c the name of Fashion-MNIST class c.

Balance, so that neither modality alone solves the task:
  * The number of questions of each type is fixed (weights below); within a
    yes/no type exactly half the answers are yes. The image is drawn after
    the answer, from the images for which that answer is right. So the text
    alone gives chance per type: 50% on yes/no, 10% on "what" (the classes
    are balanced).
  * The image alone does not say which question was asked; the best it can
    do is the most frequent answer for its class, about 50% (printed below
    as the image-only bound).

Besides images, tokens and labels every split holds `qtype` (int32, the
index into the root dataset `question_types`) and `image_label` (the
Fashion-MNIST class of the image); heed ignores both, they are for analysis.

Example:
  /usr/bin/python3 scripts/prepare_fashion_vqa.py --out data/fashion_vqa.h5
  /usr/bin/python3 scripts/prepare_fashion_vqa.py --out small.h5 --limit 4000
"""
import argparse
import os
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import prepare_fashion_mnist as fmnist  # noqa: E402  (reuse its IDX reader and split)

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# Answer names of the 10 Fashion-MNIST classes, in label order.
CLASS_ANSWERS = ["t-shirt/top", "trouser", "pullover", "dress", "coat",
                 "sandal", "shirt", "sneaker", "bag", "ankle boot"]
ANSWERS = ["no", "yes"] + CLASS_ANSWERS
# How the class is named inside a question.
CLASS_PHRASES = ["a t-shirt", "a pair of trousers", "a pullover", "a dress", "a coat",
                 "a sandal", "a shirt", "a sneaker", "a bag", "an ankle boot"]
GROUPS = {
    "footwear": ({5, 7, 9}, ["is this footwear ?", "is it worn on the feet ?",
                             "is this a kind of shoe ?"]),
    "upper_body": ({0, 2, 4, 6}, ["is it worn on the upper body ?", "is this a top ?",
                                  "would you wear this above the waist ?"]),
    "clothing": ({0, 1, 2, 3, 4, 6}, ["is this a piece of clothing ?", "is it a garment ?",
                                      "is this something you wear on your body ?"]),
}
WHAT = ["what is this ?", "what kind of item is this ?", "what is shown in the picture ?",
        "name this item ."]
IS_CLASS = ["is this {} ?", "is it {} ?", "does the picture show {} ?"]
# Share of the questions of each kind: "what", the three groups, the ten
# is_<class> types together.
W_WHAT, W_GROUP, W_IS_CLASS = 0.25, 0.10, 0.45


def question_types():
    """[(name, positive class set or None for "what", phrasings, weight)]."""
    types = [("what", None, WHAT, W_WHAT)]
    for name, (pos, phrasings) in GROUPS.items():
        types.append((name, pos, phrasings, W_GROUP))
    for c, phrase in enumerate(CLASS_PHRASES):
        types.append((f"is_{CLASS_ANSWERS[c].split('/')[0].replace(' ', '_')}", {c},
                      [t.format(phrase) for t in IS_CLASS], W_IS_CLASS / len(CLASS_PHRASES)))
    return types


def build_vocab(types):
    words = sorted({w for _, _, phrasings, _ in types for p in phrasings for w in p.split()})
    vocab = SPECIALS + words
    max_len = 1 + max(len(p.split()) for _, _, phrasings, _ in types for p in phrasings)
    return vocab, {w: i for i, w in enumerate(vocab)}, max_len


class Pool:
    """Draws indices from a fixed set in shuffled order, reshuffling when spent,
    so every image of the set is used about equally often."""

    def __init__(self, idx, rng):
        self.idx, self.rng, self.order, self.pos = np.asarray(idx), rng, None, 0

    def draw(self):
        if self.order is None or self.pos == len(self.order):
            self.order, self.pos = self.rng.permutation(self.idx), 0
        self.pos += 1
        return int(self.order[self.pos - 1])


def make_split(x, y, n, types, index, max_len, rng):
    """n questions about the images x (labels y): images, tokens, labels, qtype."""
    if n <= 0:
        raise fmnist.PrepError("a split would have no questions")
    # Exact counts per type; yes/no types get exactly half yes (odd: one more no).
    counts = np.floor(np.array([t[3] for t in types]) * n).astype(int)
    counts[0] += n - counts.sum()
    plan = []
    for q, (_, pos, _, _) in enumerate(types):
        if pos is None:
            plan += [(q, None)] * counts[q]
        else:
            plan += [(q, 1)] * (counts[q] // 2) + [(q, 0)] * (counts[q] - counts[q] // 2)
    plan = [plan[i] for i in rng.permutation(len(plan))]
    pools = {None: Pool(np.arange(len(y)), rng)}
    for q, (_, pos, _, _) in enumerate(types):
        if pos is not None:
            member = np.isin(y, sorted(pos))
            if not member.any() or member.all():
                raise fmnist.PrepError(f"question type {types[q][0]}: no images for one answer")
            pools[(q, 1)] = Pool(np.flatnonzero(member), rng)
            pools[(q, 0)] = Pool(np.flatnonzero(~member), rng)
    images = np.empty((n, 1, 28, 28), dtype=np.uint8)
    tokens = np.zeros((n, max_len), dtype=np.int32)  # [PAD] = 0
    labels = np.empty(n, dtype=np.int32)
    qtype = np.empty(n, dtype=np.int32)
    image_label = np.empty(n, dtype=np.int32)
    for i, (q, ans) in enumerate(plan):
        j = pools[None].draw() if ans is None else pools[(q, ans)].draw()
        phrasings = types[q][2]
        words = phrasings[rng.integers(len(phrasings))].split()
        tokens[i, :1 + len(words)] = [index["[CLS]"]] + [index[w] for w in words]
        images[i, 0] = x[j]
        labels[i] = 2 + int(y[j]) if ans is None else ans
        qtype[i] = q
        image_label[i] = y[j]
    return images, tokens, labels, qtype, image_label


def single_modality_bounds(train, test, n_types):
    """Accuracy on test of the best text-only rule (majority answer per
    question type, learned on train) and of the best image-only rule
    (majority answer per image class, i.e. a perfect image classifier that
    never sees the question)."""
    out = {}
    for name, key in (("text_only", 3), ("image_only", 4)):
        k_tr, k_te = train[key], test[key]
        n_keys = n_types if key == 3 else 10
        table = np.zeros((n_keys, len(ANSWERS)), dtype=np.int64)
        np.add.at(table, (k_tr, train[2]), 1)
        out[name] = float((table.argmax(1)[k_te] == test[2]).mean())
    return out


def write(path, splits, vocab, max_len, types, mean, std):
    S = h5py.string_dtype("utf-8")
    with h5py.File(path, "w") as f:
        f.attrs["format_version"] = np.int32(1)
        f.attrs["kind"] = "image_text"
        f.attrs["name"] = "fashion_vqa"
        f.attrs["num_classes"] = np.int32(len(ANSWERS))
        f.create_dataset("classes", data=ANSWERS, dtype=S)
        f.create_dataset("vocab", data=vocab, dtype=S)
        f.create_dataset("question_types", data=[t[0] for t in types], dtype=S)
        f.attrs["vocab_size"] = np.int32(len(vocab))
        for i, name in enumerate(("pad_id", "unk_id", "cls_id", "sep_id", "mask_id")):
            f.attrs[name] = np.int32(i)
        f.attrs["max_len"] = np.int32(max_len)
        for name, (images, tokens, labels, qtype, image_label) in splits.items():
            g = f.create_group(name)
            d = g.create_dataset("images", data=images)
            d.attrs["mean"] = mean
            d.attrs["std"] = std
            g.create_dataset("tokens", data=tokens)
            g.create_dataset("labels", data=labels)
            g.create_dataset("qtype", data=qtype)
            g.create_dataset("image_label", data=image_label)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 epilog="See docs/fusion.md for the task and docs/data-format.md "
                                        "for the file layout.")
    ap.add_argument("--out", required=True, help="HDF5 file to write")
    ap.add_argument("--source", default="/usr/share/datasets/fashion-mnist",
                    help="folder with the gzip IDX files (default: %(default)s)")
    ap.add_argument("--per-image", type=float, default=1.0, metavar="R",
                    help="questions per image of each split (default: %(default)s)")
    ap.add_argument("--limit", type=int, default=0, metavar="N",
                    help="use only the first N images of each split (small files for tests)")
    ap.add_argument("--seed", type=int, default=0, help="question sampling seed")
    args = ap.parse_args()
    if args.limit < 0 or not args.per_image > 0:
        ap.error("--limit must be >= 0 and --per-image > 0")
    try:
        data = fmnist.load(args.source)
        xtr, ytr = data["train"]
        nv = fmnist.N_VAL
        images = {"train": (xtr[:-nv], ytr[:-nv]), "val": (xtr[-nv:], ytr[-nv:]),
                  "test": data["test"]}
        if args.limit:
            images = {k: (x[:args.limit], y[:args.limit]) for k, (x, y) in images.items()}
        xt = images["train"][0].astype(np.float64) / 255.0
        mean = np.array([xt.mean()], dtype=np.float32)
        std = np.array([xt.std()], dtype=np.float32)
        types = question_types()
        vocab, index, max_len = build_vocab(types)
        splits = {}
        for s, (name, (x, y)) in enumerate(images.items()):
            rng = np.random.default_rng([args.seed, s])
            splits[name] = make_split(x, y, int(round(len(y) * args.per_image)), types, index,
                                      max_len, rng)
        out = os.path.abspath(args.out)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        tmp = f"{out}.tmp{os.getpid()}"
        try:
            write(tmp, splits, vocab, max_len, types, mean, std)
            os.replace(tmp, out)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except (fmnist.PrepError, OSError) as e:
        sys.exit(f"prepare_fashion_vqa.py: error: {e}")

    sizes = ", ".join(f"{k} {v[2].shape[0]}" for k, v in splits.items())
    bounds = single_modality_bounds(splits["train"], splits["test"], len(types))
    print(f"wrote {args.out}: {sizes}; {len(types)} question types, {len(ANSWERS)} answers, "
          f"vocabulary {len(vocab)}, max_len {max_len}")
    print(f"test accuracy bounds: text only {bounds['text_only']:.4f} (majority answer per "
          f"question type), image only {bounds['image_only']:.4f} (majority answer per true "
          f"image class)")


if __name__ == "__main__":
    main()
