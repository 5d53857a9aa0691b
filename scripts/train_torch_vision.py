#!/usr/bin/python3
"""PyTorch reference training for heed's CNNs at the same budget.

Trains the PyTorch twin (scripts/torch_vision_models.py) of cbam_cnn,
resnet20, resnet56, resnet18 or vit on a heed HDF5 image dataset with the recipe
`heed train` uses by default, so the two accuracies compare:
  - images (x/255 - mean) / std with the file's train mean/std attributes;
  - augmentation (--augment): zero-padded random crop (--crop-pad) and a
    random horizontal flip, drawn per sample, applied AFTER normalisation
    (heed's op_augment_images pads the normalised image with zeros);
  - AdamW (decay on tensors of 2+ dims only, --weight-decay), global
    gradient-norm clipping (--clip), linear warmup then cosine decay per
    step (heed's lr_at), drop_last batches, shuffled per epoch;
  - test accuracy of the final weights (BN running statistics) at the end.
Prints one line per epoch and a last JSON line with the test accuracy, wall
time and budget. One process; --threads sets torch's intra-op threads;
--device cuda trains on a GPU where one exists (the budget is the same
epochs, batch and schedule, so the accuracy compares; the wall time does not).

  /usr/bin/python3 scripts/train_torch_vision.py --model cbam_cnn \
      --data data/fmnist.h5 --epochs 4 --batch-size 128 --lr 3e-3 --warmup 200 --augment
"""
import argparse
import json
import math
import os
import sys
import time

import h5py
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_vision_models  # noqa: E402


def load(path, split, mean, std):
    with h5py.File(path, "r") as f:
        x = torch.from_numpy(f[split + "/images"][()].astype(np.float32) / 255.0)
        y = torch.from_numpy(f[split + "/labels"][()].astype(np.int64))
    return (x - mean[None, :, None, None]) / std[None, :, None, None], y


def augment(x, pad, flip, gen):
    B, C, H, W = x.shape
    if pad > 0:
        xp = F.pad(x, (pad, pad, pad, pad))
        dy = torch.randint(0, 2 * pad + 1, (B,), generator=gen)
        dx = torch.randint(0, 2 * pad + 1, (B,), generator=gen)
        rows = (dy[:, None] + torch.arange(H)[None, :])  # B H
        cols = (dx[:, None] + torch.arange(W)[None, :])  # B W
        bi = torch.arange(B)[:, None, None]
        x = xp.permute(0, 2, 3, 1)[bi, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    if flip:
        f = torch.rand(B, generator=gen) < 0.5
        x = torch.where(f[:, None, None, None], x.flip(3), x)
    return x.contiguous()


def lr_at(step, base, warmup, total):
    if step < warmup:
        return base * (step + 1) / warmup
    span = total - warmup
    p = min((step - warmup) / span, 1.0) if span > 0 else 1.0
    return base * 0.5 * (1 + math.cos(math.pi * p))


def accuracy(m, x, y, batch=512):
    m.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(y), batch):
            correct += (m(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
    m.train()
    return correct / len(y)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="cbam_cnn")
    ap.add_argument("--data", required=True)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--width", type=int, default=0)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--cbam", action="store_true")
    ap.add_argument("--augment", action="store_true")
    ap.add_argument("--crop-pad", type=int, default=2)
    ap.add_argument("--no-flip", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--label-smoothing", type=float, default=0.0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--ffn", type=int, default=0)
    ap.add_argument("--patch", type=int, default=4)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    with h5py.File(a.data, "r") as f:
        mean = torch.tensor(f["train/images"].attrs["mean"], dtype=torch.float32)
        std = torch.tensor(f["train/images"].attrs["std"], dtype=torch.float32)
        classes = int(f.attrs["num_classes"])
    xtr, ytr = load(a.data, "train", mean, std)
    xte, yte = load(a.data, "test", mean, std)
    dev = torch.device(a.device)
    vit = dict(image=xtr.shape[2], dim=a.dim, depth=a.depth, heads=a.heads,
               ffn=a.ffn or 4 * a.dim, patch=a.patch)
    m = torch_vision_models.build(a.model, xtr.shape[1], classes, a.width, a.dropout, a.cbam,
                                  vit).to(dev)
    xte, yte = xte.to(dev), yte.to(dev)
    decay = [p for p in m.parameters() if p.dim() >= 2]
    other = [p for p in m.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay},
                             {"params": other, "weight_decay": 0.0}], lr=a.lr)
    per_epoch = len(ytr) // a.batch_size
    total = per_epoch * a.epochs
    step, t0 = 0, time.time()
    for epoch in range(a.epochs):
        order = torch.randperm(len(ytr), generator=gen)
        loss_sum = 0.0
        for i in range(per_epoch):
            idx = order[i * a.batch_size:(i + 1) * a.batch_size]
            x = xtr[idx]
            if a.augment:
                x = augment(x, a.crop_pad, not a.no_flip, gen)
            for group in opt.param_groups:
                group["lr"] = lr_at(step, a.lr, a.warmup, total)
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(m(x.to(dev)), ytr[idx].to(dev),
                                   label_smoothing=a.label_smoothing)
            loss.backward()
            if a.clip > 0:
                torch.nn.utils.clip_grad_norm_(m.parameters(), a.clip)
            opt.step()
            loss_sum += loss.item()
            step += 1
        print(f"epoch {epoch}: train loss {loss_sum / per_epoch:.4f} "
              f"({time.time() - t0:.0f} s)", flush=True)
    acc = accuracy(m, xte, yte)
    print(json.dumps({"impl": "pytorch", "model": a.model, "device": a.device, "epochs": a.epochs,
                      "batch_size": a.batch_size, "steps": total, "threads": a.threads,
                      "test_accuracy": round(acc, 4), "wall_s": round(time.time() - t0, 1)}))


if __name__ == "__main__":
    main()
