#!/usr/bin/python3
"""Convert Fashion-MNIST (Debian's dataset-fashion-mnist) to heed's HDF5 format.

Reads the four gzip IDX files from --source and writes one HDF5 file
(docs/data-format.md, kind "image"):

  train  the first 55,000 images of the official training set
  val    the last 5,000 images of the official training set
  test   the official 10,000 test images

images are uint8 [N, 1, 28, 28]; labels int32 [N]. The `mean` and `std`
attributes of every split's `images` are those of x/255 over the (kept) train
split, so val and test are normalised with training statistics.

The file is written under a temporary name in the same folder and renamed
when complete, so --out is never left half-written.

Example:
  /usr/bin/python3 scripts/prepare_fashion_mnist.py --out data/fashion_mnist.h5
  /usr/bin/python3 scripts/prepare_fashion_mnist.py --out tiny.h5 --limit 256 --compress
"""
import argparse
import gzip
import os
import struct
import sys

import h5py
import numpy as np

CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
IMAGES_MAGIC = 0x00000803  # unsigned byte, 3 dimensions
LABELS_MAGIC = 0x00000801  # unsigned byte, 1 dimension
N_VAL = 5000


class PrepError(Exception):
    pass


def read_idx(path, magic, ndim):
    """Read a gzip IDX file of unsigned bytes with the given magic number."""
    if not os.path.isfile(path):
        raise PrepError(f"{path}: no such file (install dataset-fashion-mnist: "
                        "apt-get install dataset-fashion-mnist, or pass --source DIR)")
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise PrepError(f"{path}: not a readable gzip file ({e})") from e
    if len(raw) < 4 + 4 * ndim:
        raise PrepError(f"{path}: {len(raw)} bytes, too short for an IDX header")
    (got,) = struct.unpack(">I", raw[:4])
    if got != magic:
        raise PrepError(f"{path}: IDX magic number 0x{got:08x}, expected 0x{magic:08x} "
                        f"(unsigned bytes, {ndim} dimension{'s' if ndim > 1 else ''})")
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    body = raw[4 + 4 * ndim:]
    if len(body) != int(np.prod(dims)):
        raise PrepError(f"{path}: header says {'x'.join(map(str, dims))} = {int(np.prod(dims))} "
                        f"bytes of data, the file has {len(body)}")
    return np.frombuffer(body, dtype=np.uint8).reshape(dims)


def load(source):
    out = {}
    for split in ("train", "test"):
        x = read_idx(os.path.join(source, FILES[f"{split}_images"]), IMAGES_MAGIC, 3)
        y = read_idx(os.path.join(source, FILES[f"{split}_labels"]), LABELS_MAGIC, 1)
        if x.shape[1:] != (28, 28):
            raise PrepError(f"{FILES[f'{split}_images']}: images are {x.shape[1]}x{x.shape[2]}, expected 28x28")
        if x.shape[0] != y.shape[0]:
            raise PrepError(f"{split}: {x.shape[0]} images but {y.shape[0]} labels")
        if y.size and y.max() >= len(CLASSES):
            raise PrepError(f"{FILES[f'{split}_labels']}: label {int(y.max())} outside [0, {len(CLASSES)})")
        out[split] = (x, y)
    return out


def write(path, splits, compress):
    """Write the splits to path (the caller renames it into place)."""
    xtr = splits["train"][0].astype(np.float64) / 255.0
    mean = np.array([xtr.mean()], dtype=np.float32)
    std = np.array([xtr.std()], dtype=np.float32)
    with h5py.File(path, "w") as f:
        f.attrs["format_version"] = np.int32(1)
        f.attrs["kind"] = "image"
        f.attrs["name"] = "fashion_mnist"
        f.attrs["num_classes"] = np.int32(len(CLASSES))
        f.create_dataset("classes", data=CLASSES, dtype=h5py.string_dtype("utf-8"))
        for name, (x, y) in splits.items():
            g = f.create_group(name)
            n = x.shape[0]
            opts = {}
            if compress and n > 0:
                opts = dict(compression="gzip", compression_opts=4)
            img = g.create_dataset("images", data=x.reshape(n, 1, 28, 28),
                                   chunks=(min(n, 1024), 1, 28, 28) if opts else None, **opts)
            img.attrs["mean"] = mean
            img.attrs["std"] = std
            g.create_dataset("labels", data=y.astype(np.int32),
                             chunks=(min(n, 65536),) if opts else None, **opts)
    return mean, std


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 epilog="See docs/data-format.md for the file layout.")
    ap.add_argument("--out", required=True, help="HDF5 file to write")
    ap.add_argument("--source", default="/usr/share/datasets/fashion-mnist",
                    help="folder with the gzip IDX files (default: %(default)s)")
    ap.add_argument("--compress", action="store_true",
                    help="gzip-compressed chunked datasets (smaller; slower to read)")
    ap.add_argument("--limit", type=int, default=0, metavar="N",
                    help="keep only the first N samples of each split (small files for tests)")
    args = ap.parse_args()
    if args.limit < 0:
        ap.error("--limit must be >= 0")

    try:
        data = load(args.source)
        xtr, ytr = data["train"]
        if xtr.shape[0] <= N_VAL:
            raise PrepError(f"training set has {xtr.shape[0]} images, need more than {N_VAL}")
        splits = {
            "train": (xtr[:-N_VAL], ytr[:-N_VAL]),
            "val": (xtr[-N_VAL:], ytr[-N_VAL:]),
            "test": data["test"],
        }
        if args.limit:
            splits = {k: (x[:args.limit], y[:args.limit]) for k, (x, y) in splits.items()}

        out = os.path.abspath(args.out)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        tmp = f"{out}.tmp{os.getpid()}"
        try:
            mean, std = write(tmp, splits, args.compress)
            os.replace(tmp, out)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except PrepError as e:
        sys.exit(f"prepare_fashion_mnist.py: error: {e}")
    except OSError as e:
        sys.exit(f"prepare_fashion_mnist.py: error: {e}")

    sizes = ", ".join(f"{k} {x.shape[0]}" for k, (x, _) in splits.items())
    print(f"wrote {args.out}: {sizes}; images uint8 [N,1,28,28]; "
          f"mean {mean[0]:.4f} std {std[0]:.4f} (train, x/255)")


if __name__ == "__main__":
    main()
