#!/usr/bin/python3
"""PyTorch reference fixtures for heed's C tests.

Writes (relative to the repository root, or --out DIR):
  tests/fixtures/blocks.h5       one group per op/block case, checked by
                                 tests/core/test_reference_blocks.c
  tests/fixtures/transformer.h5  the 2-layer Transformer classifier, checked
                                 by tests/models/test_reference_transformer.c

Every case group holds its inputs (float32, or int32 ids/labels/valid flags),
`params/<name>` under heed's parameter names with the block's own name
stripped ("q.weight", "ln1.bias", ...), the output `out`, a random upstream
gradient `grad_out`, and `grad/<name>` = d sum(out * grad_out) / d name for
every float input and parameter (extra outputs such as `probs` too).

The reference maths is written out in plain torch below (no nn.Linear,
nn.MultiheadAttention or nn.TransformerEncoderLayer), so every tensor maps
1:1 onto a heed parameter; a self-check compares it with torch's built-in
modules before anything is written.

Values are drawn as float32 (what the C test loads) and the reference is
computed in float64 from them, then stored as float32: the fixture's own
rounding error is then far below the tests' tolerances, and any difference
the tests see is heed's.

Deterministic (fixed seeds, no timestamps in the files); files are written
to a temporary name and renamed, so a failed run never leaves half a file.
Run with Debian's interpreter (it has torch, h5py, numpy):
    /usr/bin/python3 scripts/make_fixtures.py
"""
import argparse
import math
import os
import zlib

import h5py
import numpy as np
import torch
import torch.nn.functional as F

F64 = torch.float64


# ---- reference maths (float64, plain torch) ------------------------------


def linear(x, p, name, bias=True):
    """x (..., IN) @ weight^T + bias; weight (OUT, IN) as in nn.Linear."""
    y = x @ p[name + ".weight"].t()
    return y + p[name + ".bias"] if bias else y


def layer_norm(x, p, name, eps=1e-5):
    """Biased variance over the last dimension, as nn.LayerNorm."""
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * p[name + ".weight"] + p[name + ".bias"]


def gelu_erf(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def cross_entropy(logits, labels, smoothing=0.0, weights=None):
    """Mean over rows whose label is not -1 of w[y] * ((1-s) * nll + s * mean_k(-logp_k)),
    w = 1 without weights (heed's op_cross_entropy_weighted: the mean divides
    by the number of rows, not by the sum of their weights)."""
    logp = torch.log_softmax(logits, -1)
    keep = labels != -1
    lp = logp[keep]
    y = labels[keep].long()
    nll = -lp.gather(1, y[:, None])[:, 0]
    smooth = -lp.mean(-1)
    w = 1.0 if weights is None else weights[y]
    return (w * ((1.0 - smoothing) * nll + smoothing * smooth)).mean().reshape(1)


# The class weights of the weighted cross-entropy case (tests/core/test_reference_blocks.c).
CE_CLASS_WEIGHTS = [0.5, 2.0, 1.0, 0.25, 3.0]


def masked_mean(x, valid):
    """x (B, T, C), valid (B, T) 0/1 -> (B, C): the mean over valid tokens."""
    v = valid.to(x.dtype)[..., None]
    return (x * v).sum(1) / v.sum(1)


def mha(q_in, kv_in, mask, p, name, NH):
    """softmax(q k^T / sqrt(HS) + mask) v, then the output projection. Head h
    uses channels [h*HS, (h+1)*HS) of q, k and v. mask: additive (B, S).
    Returns (out (B, T, C), probs (B, NH, T, S))."""
    B, T, C = q_in.shape
    S = kv_in.shape[1]
    HS = C // NH
    q = linear(q_in, p, name + ".q").view(B, T, NH, HS).transpose(1, 2)
    k = linear(kv_in, p, name + ".k").view(B, S, NH, HS).transpose(1, 2)
    v = linear(kv_in, p, name + ".v").view(B, S, NH, HS).transpose(1, 2)
    scores = q @ k.transpose(-2, -1) / math.sqrt(HS)
    if mask is not None:
        scores = scores + mask[:, None, None, :]
    probs = torch.softmax(scores, -1)
    y = (probs @ v).transpose(1, 2).reshape(B, T, C)
    return linear(y, p, name + ".o"), probs


def encoder_block(x, mask, p, name, NH, pre_norm, eps=1e-5):
    """Pre-norm: x + attn(ln1(x)); x + ffn(ln2(x)). Post-norm (BERT):
    ln1(x + attn(x)); ln2(x + ffn(x)). FFN = fc2(gelu_erf(fc1(.)))."""

    def ffn(h):
        return linear(gelu_erf(linear(h, p, name + ".fc1")), p, name + ".fc2")

    if pre_norm:
        h = layer_norm(x, p, name + ".ln1", eps)
        a, probs = mha(h, h, mask, p, name + ".attn", NH)
        x = x + a
        return x + ffn(layer_norm(x, p, name + ".ln2", eps)), probs
    a, probs = mha(x, x, mask, p, name + ".attn", NH)
    x = layer_norm(x + a, p, name + ".ln1", eps)
    return layer_norm(x + ffn(x), p, name + ".ln2", eps), probs


def additive_attention(x, mask, p, name):
    """e_t = v . tanh(proj(h_t)), a = softmax_t(e + mask), out = sum_t a_t h_t."""
    e = linear(torch.tanh(linear(x, p, name + ".proj")), p, name + ".v", bias=False)[..., 0]
    if mask is not None:
        e = e + mask
    a = torch.softmax(e, -1)
    return (a[..., None] * x).sum(1), a


# ---- helpers ----------------------------------------------------------------


def randn(*shape, std=1.0):
    """float32 draws (the values the C test loads), promoted to float64."""
    return (torch.randn(*shape, dtype=torch.float32) * std).to(F64)


def additive_mask(valid):
    """valid (B, T) 0/1 -> 0 where valid, -inf where not (mask_from_valid)."""
    m = torch.zeros(valid.shape, dtype=F64)
    m[valid == 0] = -math.inf
    return m


def linear_params(p, name, IN, OUT, bias=True):
    p[name + ".weight"] = randn(OUT, IN, std=1.0 / math.sqrt(IN))
    if bias:
        p[name + ".bias"] = randn(OUT, std=0.1)


def ln_params(p, name, C):
    # Not ones/zeros: a gradient or scale bug must show in the values.
    p[name + ".weight"] = 1.0 + randn(C, std=0.1)
    p[name + ".bias"] = randn(C, std=0.1)


def mha_params(p, name, C):
    for s in ("q", "k", "v", "o"):
        linear_params(p, name + "." + s, C, C)


def encoder_params(p, name, C, FFN):
    ln_params(p, name + ".ln1", C)
    mha_params(p, name + ".attn", C)
    ln_params(p, name + ".ln2", C)
    linear_params(p, name + ".fc1", C, FFN)
    linear_params(p, name + ".fc2", FFN, C)


def strip(p, name):
    return {k[len(name) + 1 :]: v for k, v in p.items()}


def write(group, name, value):
    """float tensors as float32, integer tensors as int32, no timestamps."""
    if torch.is_tensor(value):
        value = value.detach().numpy()
    value = np.asarray(value)
    value = value.astype(np.int32 if value.dtype.kind in "iub" else np.float32)
    group.create_dataset(name, data=value, track_times=False)


def run_case(f, name, seed, build):
    """build() returns (inputs, params, fn, attrs): inputs and params are
    dicts of tensors (float ones get gradients), fn(inputs, params) returns
    (out, extras). Writes the group `name`."""
    torch.manual_seed(seed)
    inputs, params, fn, attrs = build()
    leaves = {}
    for k, v in list(inputs.items()) + [("params/" + k, v) for k, v in params.items()]:
        if v.is_floating_point() and not k.startswith("mask"):
            v.requires_grad_(True)
            leaves[k] = v
    out, extras = fn(inputs, params)
    grad_out = randn(*out.shape)
    wanted = list(leaves.values())
    grads = torch.autograd.grad((out * grad_out).sum(), wanted, allow_unused=True)
    g = f.create_group(name)
    for k, v in attrs.items():
        g.attrs[k] = v
    for k, v in inputs.items():
        write(g, k, v)
    for k, v in params.items():
        write(g, "params/" + k, v)
    write(g, "out", out)
    for k, v in extras.items():
        write(g, k, v)
    write(g, "grad_out", grad_out)
    for k, gr in zip(leaves, grads):
        if gr is None:
            gr = torch.zeros_like(leaves[k])
        write(g, "grad/" + k[len("params/") :] if k.startswith("params/") else "grad/" + k, gr)
    big = max(float(out.detach().abs().max()), 0.0)
    print(f"  {name:20s} out {tuple(out.shape)} max|out| {big:.3g}, {len(leaves)} grads")


# ---- the cases ----------------------------------------------------------------


def build_cases():
    """name -> build function (see run_case)."""
    cases = {}

    def add(fn):
        cases[fn.__name__[len("case_") :]] = fn
        return fn

    def pfx(p):
        # The helpers take dotted prefixes; "b" stands for the block's name.
        return {"b." + k: v for k, v in p.items()}

    @add
    def case_linear():
        p = {}
        linear_params(p, "b", 5, 4)
        fn = lambda i, q: (linear(i["x"], pfx(q), "b"), {})
        return {"x": randn(2, 3, 5)}, strip(p, "b"), fn, {"IN": 5, "OUT": 4}

    @add
    def case_layer_norm():
        p = {}
        ln_params(p, "b", 6)
        fn = lambda i, q: (layer_norm(i["x"], pfx(q), "b", 1e-5), {})
        return {"x": randn(2, 3, 6) * 2 + 0.5}, strip(p, "b"), fn, {"eps": 1e-5}

    @add
    def case_gelu_erf():
        return {"x": randn(3, 7, std=2.0)}, {}, lambda i, q: (gelu_erf(i["x"]), {}), {}

    @add
    def case_gelu_tanh():
        return {"x": randn(3, 7, std=2.0)}, {}, lambda i, q: (gelu_tanh(i["x"]), {}), {}

    @add
    def case_softmax():
        # x (B, T, S) with a (B, S) key-padding mask: row r uses mask row
        # r / T. Sample 1 masks its last 2 keys (partly masked rows).
        valid = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=torch.int32)
        x = randn(2, 3, 5, std=2.0)
        fn = lambda i, q: (torch.softmax(i["x"] + i["mask"][:, None, :], -1), {})
        return {"x": x, "mask": additive_mask(valid)}, {}, fn, {}

    @add
    def case_log_softmax():
        return {"x": randn(4, 6, std=2.0)}, {}, lambda i, q: (torch.log_softmax(i["x"], -1), {}), {}

    @add
    def case_cross_entropy():
        # 6 rows, K = 5, smoothing 0.1, row 2 ignored (label -1).
        labels = torch.tensor([0, 3, -1, 4, 1, 3], dtype=torch.int32)
        fn = lambda i, q: (cross_entropy(i["logits"], i["labels"], 0.1), {})
        return {"logits": randn(6, 5, std=2.0), "labels": labels}, {}, fn, {"smoothing": 0.1}

    @add
    def case_cross_entropy_weighted():
        # The same with class weights CE_CLASS_WEIGHTS (an attribute too).
        labels = torch.tensor([0, 3, -1, 4, 1, 3], dtype=torch.int32)
        w = torch.tensor(CE_CLASS_WEIGHTS, dtype=F64)
        fn = lambda i, q: (cross_entropy(i["logits"], i["labels"], 0.1, w), {})
        attrs = {"smoothing": 0.1, "class_weights": CE_CLASS_WEIGHTS}
        return {"logits": randn(6, 5, std=2.0), "labels": labels}, {}, fn, attrs

    @add
    def case_embedding():
        # Id 3 appears three times: its table row's gradient accumulates.
        ids = torch.tensor([[3, 0, 6, 3], [1, 3, 5, 2]], dtype=torch.int32)
        fn = lambda i, q: (q["weight"][i["ids"].long()], {})
        return {"ids": ids}, {"weight": randn(7, 3)}, fn, {}

    @add
    def case_masked_mean():
        valid = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]], dtype=torch.int32)
        fn = lambda i, q: (masked_mean(i["x"], i["valid"]), {})
        return {"x": randn(2, 4, 3), "valid": valid}, {}, fn, {}

    @add
    def case_mha_self():
        # B=2, T=5, C=8, NH=2; sample 1 has 2 pad positions (its pad
        # queries still attend to the valid keys).
        p = {}
        mha_params(p, "b", 8)
        valid = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=torch.int32)

        def fn(i, q):
            out, probs = mha(i["x"], i["x"], i["mask"], pfx(q), "b", 2)
            return out, {"probs": probs}

        inputs = {"x": randn(2, 5, 8), "mask": additive_mask(valid)}
        return inputs, strip(p, "b"), fn, {"NH": 2}

    @add
    def case_mha_cross():
        # T=4 queries, S=6 keys/values; sample 0 masks 1 key, sample 1 masks 3.
        p = {}
        mha_params(p, "b", 8)
        valid = torch.tensor([[1, 1, 1, 1, 1, 0], [1, 1, 1, 0, 0, 0]], dtype=torch.int32)

        def fn(i, q):
            out, probs = mha(i["q_in"], i["kv_in"], i["mask"], pfx(q), "b", 2)
            return out, {"probs": probs}

        inputs = {"q_in": randn(2, 4, 8), "kv_in": randn(2, 6, 8), "mask": additive_mask(valid)}
        return inputs, strip(p, "b"), fn, {"NH": 2}

    def encoder_case(pre_norm):
        p = {}
        encoder_params(p, "b", 8, 16)
        valid = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=torch.int32)

        def fn(i, q):
            out, probs = encoder_block(i["x"], i["mask"], pfx(q), "b", 2, pre_norm, 1e-5)
            return out, {"probs": probs}

        inputs = {"x": randn(2, 5, 8), "mask": additive_mask(valid)}
        attrs = {"NH": 2, "FFN": 16, "eps": 1e-5, "pre_norm": int(pre_norm)}
        return inputs, strip(p, "b"), fn, attrs

    cases["encoder_prenorm"] = lambda: encoder_case(True)
    cases["encoder_postnorm"] = lambda: encoder_case(False)

    @add
    def case_additive_attention():
        # C=8, A=6; sample 1 masks its last 2 tokens.
        p = {}
        linear_params(p, "b.proj", 8, 6)
        linear_params(p, "b.v", 6, 1, bias=False)
        valid = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=torch.int32)

        def fn(i, q):
            out, w = additive_attention(i["x"], i["mask"], pfx(q), "b")
            return out, {"weights": w}

        inputs = {"x": randn(2, 5, 8), "mask": additive_mask(valid)}
        return inputs, strip(p, "b"), fn, {"A": 6}

    return cases


# ---- the Transformer classifier -------------------------------------------------


class TransformerConfig:
    V, T, C, depth, NH, FFN, K, B, pad_id = 50, 12, 16, 2, 2, 32, 5, 4, 0
    lr, weight_decay, beta1, beta2, eps = 1e-3, 0.01, 0.9, 0.999, 1e-8
    steps = 10


def transformer_params(cfg):
    """heed's init: N(0, 0.02) weights and embeddings, zero biases, LN 1/0.
    Insertion order = heed's registration order (for readability only)."""
    p = {}
    p["tok_emb.weight"] = randn(cfg.V, cfg.C, std=0.02)
    p["pos_emb.weight"] = randn(cfg.T, cfg.C, std=0.02)

    def lin(name, IN, OUT):
        p[name + ".weight"] = randn(OUT, IN, std=0.02)
        p[name + ".bias"] = torch.zeros(OUT, dtype=F64)

    def ln(name):
        p[name + ".weight"] = torch.ones(cfg.C, dtype=F64)
        p[name + ".bias"] = torch.zeros(cfg.C, dtype=F64)

    for i in range(cfg.depth):
        b = f"blocks.{i}"
        ln(b + ".ln1")
        for s in ("q", "k", "v", "o"):
            lin(f"{b}.attn.{s}", cfg.C, cfg.C)
        ln(b + ".ln2")
        lin(b + ".fc1", cfg.C, cfg.FFN)
        lin(b + ".fc2", cfg.FFN, cfg.C)
    ln("ln_f")
    lin("head", cfg.C, cfg.K)
    return p


def transformer_forward(cfg, p, ids):
    valid = (ids != cfg.pad_id).to(torch.int32)
    mask = additive_mask(valid)
    T = ids.shape[1]
    x = p["tok_emb.weight"][ids.long()] + p["pos_emb.weight"][:T]
    for i in range(cfg.depth):
        x, _ = encoder_block(x, mask, p, f"blocks.{i}", cfg.NH, True, 1e-5)
    x = layer_norm(x, p, "ln_f", 1e-5)
    return linear(masked_mean(x, valid), p, "head")


def make_transformer(path, seed):
    cfg = TransformerConfig
    torch.manual_seed(seed)
    # Token 2 first in every sample; samples 1 and 3 end in 3 and 5 pads.
    ids = torch.randint(1, cfg.V, (cfg.B, cfg.T), dtype=torch.int32)
    ids[:, 0] = 2
    ids[1, cfg.T - 3 :] = cfg.pad_id
    ids[3, cfg.T - 5 :] = cfg.pad_id
    labels = torch.randint(0, cfg.K, (cfg.B,), dtype=torch.int32)
    p0 = transformer_params(cfg)

    p = {k: v.clone().requires_grad_(True) for k, v in p0.items()}
    logits = transformer_forward(cfg, p, ids)
    loss = cross_entropy(logits, labels)
    grads = torch.autograd.grad(loss.sum(), list(p.values()))

    # AdamW with two groups as heed's params_add decides: decay on ndim >= 2.
    q = {k: v.clone().requires_grad_(True) for k, v in p0.items()}
    groups = [
        {"params": [v for v in q.values() if v.ndim >= 2], "weight_decay": cfg.weight_decay},
        {"params": [v for v in q.values() if v.ndim < 2], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps)
    losses = []
    for _ in range(cfg.steps):
        opt.zero_grad()
        step_loss = cross_entropy(transformer_forward(cfg, q, ids), labels)
        losses.append(float(step_loss))  # before this step's update
        step_loss.sum().backward()
        opt.step()
    assert abs(losses[0] - float(loss)) < 1e-12

    def fill(f):
        for k in ("V", "T", "C", "depth", "NH", "FFN", "K", "B", "pad_id"):
            f.attrs[k] = getattr(cfg, k)
        f.attrs["max_len"] = cfg.T
        for k in ("lr", "weight_decay", "beta1", "beta2", "eps"):
            f.attrs[k] = float(getattr(cfg, k))
        write(f, "ids", ids)
        write(f, "labels", labels)
        for k, v in p0.items():
            write(f, "params/" + k, v)
        write(f, "logits", logits)
        write(f, "loss", loss)
        for k, gr in zip(p, grads):
            write(f, "grad/" + k, gr)
        write(f, "losses", torch.tensor(losses, dtype=F64))

    atomic_h5(path, fill)
    print(f"  transformer: loss {float(loss):.6f}, losses {losses[0]:.6f} -> {losses[-1]:.6f}")


# ---- self-check against torch's own modules --------------------------------------


def self_check():
    """The hand-written reference must agree with torch's modules."""
    torch.manual_seed(1)
    x = randn(3, 7, std=2.0)
    assert torch.allclose(gelu_erf(x), F.gelu(x), atol=1e-12)
    assert torch.allclose(gelu_tanh(x), F.gelu(x, approximate="tanh"), atol=1e-12)
    p = {}
    ln_params(p, "n", 7)
    want = F.layer_norm(x, (7,), p["n.weight"], p["n.bias"], 1e-5)
    assert torch.allclose(layer_norm(x, p, "n"), want, atol=1e-12)
    logits, labels = randn(6, 5), torch.tensor([0, 3, -1, 4, 1, 3])
    want = F.cross_entropy(logits, labels, ignore_index=-1, label_smoothing=0.1)
    assert torch.allclose(cross_entropy(logits, labels, 0.1), want.reshape(1), atol=1e-12)
    w = torch.tensor(CE_CLASS_WEIGHTS, dtype=F64)
    keep = labels != -1
    want = (w[labels[keep]] * F.cross_entropy(logits[keep], labels[keep], weight=None,
                                              reduction="none", label_smoothing=0.1)).mean()
    assert torch.allclose(cross_entropy(logits, labels, 0.1, w), want.reshape(1), atol=1e-12)

    B, T, S, C, NH = 2, 4, 6, 8, 2
    p = {}
    mha_params(p, "a", C)
    qx, kvx = randn(B, T, C), randn(B, S, C)
    valid = torch.tensor([[1, 1, 1, 1, 1, 0], [1, 1, 1, 0, 0, 0]])
    out, probs = mha(qx, kvx, additive_mask(valid), p, "a", NH)
    m = torch.nn.MultiheadAttention(C, NH, batch_first=True, dtype=F64)
    with torch.no_grad():
        m.in_proj_weight.copy_(torch.cat([p["a.q.weight"], p["a.k.weight"], p["a.v.weight"]]))
        m.in_proj_bias.copy_(torch.cat([p["a.q.bias"], p["a.k.bias"], p["a.v.bias"]]))
        m.out_proj.weight.copy_(p["a.o.weight"])
        m.out_proj.bias.copy_(p["a.o.bias"])
        want, want_probs = m(qx, kvx, kvx, key_padding_mask=valid == 0, average_attn_weights=False)
    assert torch.allclose(out, want, atol=1e-12)
    assert torch.allclose(probs, want_probs, atol=1e-12)


# ---- output ---------------------------------------------------------------------


def atomic_h5(path, fill):
    tmp = path + ".tmp"
    with h5py.File(tmp, "w", libver="earliest") as f:
        fill(f)
    os.replace(tmp, path)


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(root, "tests", "fixtures"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)
    self_check()

    cases = build_cases()

    def fill(f):
        f.attrs["cases"] = ",".join(cases)
        for name, build in cases.items():
            # A seed per case from its name: adding a case changes no other.
            run_case(f, name, zlib.crc32(name.encode()), build)

    print("blocks.h5:")
    atomic_h5(os.path.join(args.out, "blocks.h5"), fill)
    print("transformer.h5:")
    make_transformer(os.path.join(args.out, "transformer.h5"), 2024)


if __name__ == "__main__":
    main()
