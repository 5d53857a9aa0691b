#!/usr/bin/python3
"""A tiny learnable image dataset for the cluster tests (docs/data-format.md):
2 classes of 1x8x8 float32 images; class 1 is brighter in its top half.
Usage: make_tiny_data.py OUT.h5 (written under a temporary name, renamed)."""
import os
import sys

import h5py
import numpy as np

out = sys.argv[1]
rng = np.random.default_rng(0)
tmp = out + ".tmp"
with h5py.File(tmp, "w") as f:
    f.attrs["format_version"] = np.int32(1)
    f.attrs["kind"] = "image"
    f.attrs["name"] = "tiny_cluster"
    f.attrs["num_classes"] = np.int32(2)
    f.create_dataset("classes", data=["dark", "bright"], dtype=h5py.string_dtype("utf-8"))
    for split, n in (("train", 256), ("val", 64), ("test", 64)):
        y = rng.integers(0, 2, size=n).astype(np.int32)
        x = rng.normal(0.0, 1.0, size=(n, 1, 8, 8)).astype(np.float32)
        x[:, :, :4, :] += 1.5 * y[:, None, None, None]
        g = f.create_group(split)
        g.create_dataset("images", data=x)
        g.create_dataset("labels", data=y)
os.replace(tmp, out)
