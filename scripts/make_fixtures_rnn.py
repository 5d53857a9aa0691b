#!/usr/bin/python3
"""PyTorch reference fixtures for heed's recurrent layers and models.

Writes tests/fixtures/rnn.h5 (relative to the repository root, or --out DIR),
checked by tests/core/test_reference_rnn.c and
tests/models/test_reference_birnn.c:

  lstm/, gru/      torch.nn.LSTM / torch.nn.GRU (2 layers, bidirectional,
                   batch_first) over a right-padded batch packed with
                   pack_padded_sequence: inputs `x` (B,T,C, padded positions
                   hold noise the packed run never reads), `lengths` (B),
                   `params/<torch name>`, `out` (B,T,2H) from pad_packed_sequence
                   (zeros at padding), `grad_out`, and `grad/x`, `grad/<name>`
                   = d sum(out * grad_out) / d name.
  bilstm/, bigru/  the classifiers of src/models/birnn.c: embedding, the
                   same stack, additive attention pooling (proj: Linear(2H, A),
                   v: Linear(A, 1, bias=False), masked softmax over tokens), a
                   linear head; `ids`, `labels`, `params/<heed name>`, `logits`,
                   `loss` (mean cross-entropy), `attn` (B,T) pooling weights,
                   `grad/<heed name>`.

Values are drawn as float32 (what the C tests load) and the reference runs
in float64 from them, so the fixture's own rounding is far below the tests'
tolerances. Deterministic (fixed seeds, no timestamps); written to a
temporary name and renamed. Run with Debian's interpreter (torch, h5py):
    /usr/bin/python3 scripts/make_fixtures_rnn.py
"""
import argparse
import os

import h5py
import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

B, T, C, H, LAYERS = 4, 6, 5, 4, 2
LENGTHS = [6, 4, 1, 3]


def put(group, name, value):
    group.create_dataset(name, data=value, track_times=False)


def f32(t):
    return t.detach().to(torch.float32).numpy()


def make_rnn(cls, in_size, seed):
    torch.manual_seed(seed)
    rnn = cls(in_size, H, num_layers=LAYERS, batch_first=True, bidirectional=True)
    with torch.no_grad():
        for p in rnn.parameters():  # round to float32 once, then work in float64
            p.copy_(p.to(torch.float32))
    return rnn.double()


def run_rnn(rnn, x, lengths):
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, _ = rnn(packed)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return out


def write_layer_case(f, name, cls, seed):
    g = f.create_group(name)
    rnn = make_rnn(cls, C, seed)
    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.rand(B, T, C, generator=gen, dtype=torch.float32).mul(2).sub(1).double()
    x.requires_grad_(True)
    lengths = torch.tensor(LENGTHS)
    out = run_rnn(rnn, x, lengths)
    grad_out = torch.rand(out.shape, generator=gen, dtype=torch.float32).mul(2).sub(1).double()
    (out * grad_out).sum().backward()
    put(g, "x", f32(x))
    put(g, "lengths", lengths.to(torch.int32).numpy())
    put(g, "out", f32(out))
    put(g, "grad_out", f32(grad_out))
    put(g, "grad/x", f32(x.grad))
    for pname, p in rnn.named_parameters():
        put(g, "params/" + pname, f32(p))
        put(g, "grad/" + pname, f32(p.grad))
    for k, v in {"B": B, "T": T, "C": C, "H": H, "layers": LAYERS}.items():
        g.attrs[k] = v


class Classifier(torch.nn.Module):
    """The model of src/models/birnn.c, with heed's parameter names."""

    def __init__(self, cls, V, E, A, K, pad_id):
        super().__init__()
        self.pad_id = pad_id
        self.tok_emb = torch.nn.Embedding(V, E)
        self.rnn = cls(E, H, num_layers=LAYERS, batch_first=True, bidirectional=True)
        self.proj = torch.nn.Linear(2 * H, A)
        self.v = torch.nn.Linear(A, 1, bias=False)
        self.head = torch.nn.Linear(2 * H, K)

    def forward(self, ids):
        valid = ids != self.pad_id
        lengths = valid.sum(1)
        h = run_rnn(self.rnn, self.tok_emb(ids), lengths)
        e = self.v(torch.tanh(self.proj(h))).squeeze(-1)
        a = torch.softmax(e.masked_fill(~valid, float("-inf")), dim=1)
        pooled = (a.unsqueeze(-1) * h).sum(1)
        return self.head(pooled), a

    def heed_names(self):
        names = {"tok_emb.weight": self.tok_emb.weight, "attn.proj.weight": self.proj.weight,
                 "attn.proj.bias": self.proj.bias, "attn.v.weight": self.v.weight,
                 "head.weight": self.head.weight, "head.bias": self.head.bias}
        for pname, p in self.rnn.named_parameters():
            names["rnn." + pname] = p
        return names


def write_model_case(f, name, cls, seed):
    V, E, A, K, pad_id = 11, 6, H, 3, 0
    g = f.create_group(name)
    torch.manual_seed(seed)
    m = Classifier(cls, V, E, A, K, pad_id)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(p.to(torch.float32))
    m = m.double()
    gen = torch.Generator().manual_seed(seed + 1)
    ids = torch.randint(1, V, (B, T), generator=gen)
    for b, n in enumerate(LENGTHS):
        ids[b, n:] = pad_id
    labels = torch.randint(0, K, (B,), generator=gen)
    logits, a = m(ids)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    put(g, "ids", ids.to(torch.int32).numpy())
    put(g, "labels", labels.to(torch.int32).numpy())
    put(g, "logits", f32(logits))
    put(g, "loss", f32(loss.reshape(1)))
    put(g, "attn", f32(a))
    for hname, p in m.heed_names().items():
        put(g, "params/" + hname, f32(p))
        put(g, "grad/" + hname, f32(p.grad))
    for k, v in {"B": B, "T": T, "V": V, "E": E, "H": H, "A": A, "K": K, "layers": LAYERS,
                 "pad_id": pad_id}.items():
        g.attrs[k] = v


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="tests/fixtures", help="output directory")
    args = ap.parse_args()
    path = os.path.join(args.out, "rnn.h5")
    tmp = path + ".tmp"
    with h5py.File(tmp, "w", track_order=True) as f:
        write_layer_case(f, "lstm", torch.nn.LSTM, 10)
        write_layer_case(f, "gru", torch.nn.GRU, 20)
        write_model_case(f, "bilstm", torch.nn.LSTM, 30)
        write_model_case(f, "bigru", torch.nn.GRU, 40)
        for k, v in f["bilstm"].attrs.items():  # the C tests read sizes from the root
            f.attrs[k] = v
        f.attrs["C"] = C
    os.replace(tmp, path)
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
