#!/usr/bin/python3
"""PyTorch reference fixtures for heed's BERT (no downloads).

Builds a tiny random BERT state dict under Hugging Face's key names (with
the "bert." prefix, a classifier, the MLM head with its tied decoder and the
NSP head), writes it as a fake HF directory (config.json, model.safetensors,
pytorch_model.bin, vocab.txt), converts it with scripts/convert_hf_bert.py
(both weight formats must give the same file), and computes a reference BERT
forward in plain float64 torch on a padded batch with segment ids:

  tests/fixtures/bert_hf.h5   the converter's output (params-only layout)
  tests/fixtures/bert_ref.h5  ids, segments, labels (B, T); hidden_<i> for the
                              embedding output and every layer (B, T, C);
                              pooled (B, C); logits (B, K); loss; mlm_logits
                              (B, T, V); grad/<heed name> = d loss / d param
                              of the classifier (cross-entropy, mean)

Checked by tests/models/test_bert_import.c. Deterministic; run with
    /usr/bin/python3 scripts/make_fixtures_bert.py
"""
import json
import math
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import convert_hf_bert  # noqa: E402

F64 = torch.float64
C, DEPTH, NH, FFN, L, K = 16, 2, 2, 32, 12, 3
EPS = 1e-12
SPECIAL = ["[PAD]", "[unused0]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ["the", "cat", "sat", "on", "mat", "dog", "run", "##s", "##ing", "a", "an",
         "is", "was", ".", ",", "!", "cafe", "naive", "un", "##aff", "##able", "play",
         "##ed", "over", "lazy", "fox", "jump", "quick", "brown", "we"]
VOCAB = SPECIAL + WORDS
V = len(VOCAB)
PAD, UNK, CLS, SEP, MASK = 0, 2, 3, 4, 5


def hf_state(rng):
    def n(*shape, s=0.2):
        return (rng.standard_normal(shape) * s).astype(np.float32)

    sd = {}
    sd["bert.embeddings.word_embeddings.weight"] = n(V, C)
    sd["bert.embeddings.position_embeddings.weight"] = n(L, C)
    sd["bert.embeddings.token_type_embeddings.weight"] = n(2, C)
    sd["bert.embeddings.LayerNorm.weight"] = 1 + n(C, s=0.1)
    sd["bert.embeddings.LayerNorm.bias"] = n(C, s=0.1)
    for i in range(DEPTH):
        p = "bert.encoder.layer.%d." % i
        for name, o, inp in (("attention.self.query", C, C), ("attention.self.key", C, C),
                             ("attention.self.value", C, C), ("attention.output.dense", C, C),
                             ("intermediate.dense", FFN, C), ("output.dense", C, FFN)):
            sd[p + name + ".weight"] = n(o, inp, s=1 / math.sqrt(inp))
            sd[p + name + ".bias"] = n(o, s=0.1)
        for name in ("attention.output.LayerNorm", "output.LayerNorm"):
            sd[p + name + ".weight"] = 1 + n(C, s=0.1)
            sd[p + name + ".bias"] = n(C, s=0.1)
    sd["bert.pooler.dense.weight"] = n(C, C, s=1 / math.sqrt(C))
    sd["bert.pooler.dense.bias"] = n(C, s=0.1)
    sd["classifier.weight"] = n(K, C, s=1 / math.sqrt(C))
    sd["classifier.bias"] = n(K, s=0.1)
    sd["cls.predictions.transform.dense.weight"] = n(C, C, s=1 / math.sqrt(C))
    sd["cls.predictions.transform.dense.bias"] = n(C, s=0.1)
    sd["cls.predictions.transform.LayerNorm.weight"] = 1 + n(C, s=0.1)
    sd["cls.predictions.transform.LayerNorm.bias"] = n(C, s=0.1)
    sd["cls.predictions.bias"] = n(V, s=0.1)
    sd["cls.predictions.decoder.weight"] = sd["bert.embeddings.word_embeddings.weight"].copy()
    sd["cls.predictions.decoder.bias"] = sd["cls.predictions.bias"].copy()
    sd["cls.seq_relationship.weight"] = n(2, C)
    sd["cls.seq_relationship.bias"] = n(2)
    sd["bert.embeddings.position_ids"] = np.arange(L, dtype=np.float32)[None]
    return sd


# ---- reference BERT (float64, plain torch, HF names) ----------------------


def layer_norm(x, w, b):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + EPS) * w + b


def gelu(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def lin(x, p, name):
    return x @ p[name + ".weight"].t() + p[name + ".bias"]


def reference(p, ids, seg, attn_mask):
    """HF BertModel + classifier + MLM head, eval mode (no dropout)."""
    B, T = ids.shape
    e = (p["bert.embeddings.word_embeddings.weight"][ids] +
         p["bert.embeddings.token_type_embeddings.weight"][seg] +
         p["bert.embeddings.position_embeddings.weight"][:T][None])
    x = layer_norm(e, p["bert.embeddings.LayerNorm.weight"], p["bert.embeddings.LayerNorm.bias"])
    hidden = [x]
    ext = (1.0 - attn_mask.to(F64))[:, None, None, :] * torch.finfo(F64).min
    HS = C // NH
    for i in range(DEPTH):
        q = "bert.encoder.layer.%d." % i

        def heads(t):
            return t.view(B, T, NH, HS).transpose(1, 2)

        Q = heads(lin(x, p, q + "attention.self.query"))
        Kt = heads(lin(x, p, q + "attention.self.key"))
        Vv = heads(lin(x, p, q + "attention.self.value"))
        s = Q @ Kt.transpose(-1, -2) / math.sqrt(HS) + ext
        a = torch.softmax(s, -1) @ Vv
        a = a.transpose(1, 2).reshape(B, T, C)
        x = layer_norm(lin(a, p, q + "attention.output.dense") + x,
                       p[q + "attention.output.LayerNorm.weight"],
                       p[q + "attention.output.LayerNorm.bias"])
        h = gelu(lin(x, p, q + "intermediate.dense"))
        x = layer_norm(lin(h, p, q + "output.dense") + x, p[q + "output.LayerNorm.weight"],
                       p[q + "output.LayerNorm.bias"])
        hidden.append(x)
    pooled = torch.tanh(lin(x[:, 0], p, "bert.pooler.dense"))
    logits = lin(pooled, p, "classifier")
    t = layer_norm(gelu(lin(x, p, "cls.predictions.transform.dense")),
                   p["cls.predictions.transform.LayerNorm.weight"],
                   p["cls.predictions.transform.LayerNorm.bias"])
    mlm = t @ p["bert.embeddings.word_embeddings.weight"].t() + p["cls.predictions.bias"]
    return hidden, pooled, logits, mlm


def self_check_against_torch_modules(p, ids, seg, mask):
    """The plain maths above equals torch.nn's TransformerEncoderLayer-free
    pieces: check one attention layer against nn.MultiheadAttention."""
    q = "bert.encoder.layer.0."
    mha = torch.nn.MultiheadAttention(C, NH, batch_first=True, dtype=F64)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.cat([p[q + "attention.self.%s.weight" % n]
                                            for n in ("query", "key", "value")]))
        mha.in_proj_bias.copy_(torch.cat([p[q + "attention.self.%s.bias" % n]
                                          for n in ("query", "key", "value")]))
        mha.out_proj.weight.copy_(p[q + "attention.output.dense.weight"])
        mha.out_proj.bias.copy_(p[q + "attention.output.dense.bias"])
    hidden, _, _, _ = reference(p, ids, seg, mask)
    x0 = hidden[0]
    a, _ = mha(x0, x0, x0, key_padding_mask=mask == 0, need_weights=False)
    want = layer_norm(a + x0, p[q + "attention.output.LayerNorm.weight"],
                      p[q + "attention.output.LayerNorm.bias"])
    h = gelu(lin(want, p, q + "intermediate.dense"))
    want = layer_norm(lin(h, p, q + "output.dense") + want, p[q + "output.LayerNorm.weight"],
                      p[q + "output.LayerNorm.bias"])
    err = (want - hidden[1]).abs().max().item()
    assert err < 1e-10, "reference disagrees with nn.MultiheadAttention: %g" % err


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out_dir = os.path.join(root, "tests", "fixtures")
    rng = np.random.default_rng(7)
    sd = hf_state(rng)
    cfg = {"architectures": ["BertForMaskedLM"], "model_type": "bert", "hidden_size": C,
           "num_hidden_layers": DEPTH, "num_attention_heads": NH, "intermediate_size": FFN,
           "max_position_embeddings": L, "vocab_size": V, "type_vocab_size": 2,
           "hidden_act": "gelu", "layer_norm_eps": EPS, "pad_token_id": PAD}
    with tempfile.TemporaryDirectory() as tmp:
        st_dir, pt_dir = os.path.join(tmp, "st"), os.path.join(tmp, "pt")
        for d in (st_dir, pt_dir):
            os.makedirs(d)
            with open(os.path.join(d, "config.json"), "w") as f:
                json.dump(cfg, f, indent=1)
            with open(os.path.join(d, "vocab.txt"), "w") as f:
                f.write("\n".join(VOCAB) + "\n")
        convert_hf_bert.write_safetensors(os.path.join(st_dir, "model.safetensors"), sd)
        torch.save({k: torch.from_numpy(v) for k, v in sd.items()},
                   os.path.join(pt_dir, "pytorch_model.bin"))
        conv = os.path.join(root, "scripts", "convert_hf_bert.py")
        a, b = os.path.join(tmp, "a.h5"), os.path.join(tmp, "b.h5")
        subprocess.run([sys.executable, conv, st_dir, a], check=True)
        subprocess.run([sys.executable, conv, pt_dir, b], check=True)
        with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
            assert sorted(fa["params"]) == sorted(fb["params"])
            for k in fa["params"]:
                assert np.array_equal(fa["params"][k][()], fb["params"][k][()]), k
        final = os.path.join(out_dir, "bert_hf.h5")
        os.replace(a, final)
        with h5py.File(final, "a") as f:  # drop the temp path: deterministic bytes
            f.attrs["source"] = "scripts/make_fixtures_bert.py"

    # A padded batch: lengths 12, 9, 5; the second and third have a B segment.
    w = {t: i for i, t in enumerate(VOCAB)}
    seqs = [(["the", "quick", "brown", "fox", "jump", "##s", "over", "the", "lazy", "dog"],
             None),
            (["a", "cat", "sat"], ["on", "a", "mat"]),
            (["we", "play", "##ed"], None)]
    ids = np.zeros((3, L), np.int64)
    seg = np.zeros((3, L), np.int64)
    for r, (sa, sb) in enumerate(seqs):
        toks = ["[CLS]"] + sa + ["[SEP]"]
        segs = [0] * len(toks)
        if sb:
            toks += sb + ["[SEP]"]
            segs += [1] * (len(sb) + 1)
        toks = toks[:L]
        ids[r, :len(toks)] = [w[t] for t in toks]
        seg[r, :len(toks)] = segs[:L]
    ids[2, 3] = UNK
    mask = torch.from_numpy((ids != PAD).astype(np.int64))
    labels = np.array([2, 0, 1], np.int64)

    p = {k: torch.tensor(v, dtype=F64, requires_grad=True) for k, v in sd.items()
         if k != "bert.embeddings.position_ids"}
    # tie: use the embeddings for the decoder (as HF does)
    ids_t, seg_t = torch.from_numpy(ids), torch.from_numpy(seg)
    self_check_against_torch_modules(p, ids_t, seg_t, mask)
    hidden, pooled, logits, mlm = reference(p, ids_t, seg_t, mask)
    loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(labels))
    loss.backward()

    path = os.path.join(out_dir, "bert_ref.h5")
    with h5py.File(path + ".tmp", "w") as f:
        for k, v in (("C", C), ("depth", DEPTH), ("NH", NH), ("FFN", FFN), ("L", L), ("K", K),
                     ("V", V), ("pad_id", PAD), ("cls_id", CLS), ("sep_id", SEP),
                     ("mask_id", MASK)):
            f.attrs[k] = np.int32(v)
        f["ids"] = ids.astype(np.int32)
        f["segments"] = seg.astype(np.int32)
        f["labels"] = labels.astype(np.int32)
        for i, h in enumerate(hidden):
            f["hidden_%d" % i] = h.detach().numpy().astype(np.float32)
        f["pooled"] = pooled.detach().numpy().astype(np.float32)
        f["logits"] = logits.detach().numpy().astype(np.float32)
        f["loss"] = loss.detach().numpy().reshape(1).astype(np.float32)
        f["mlm_logits"] = mlm.detach().numpy().astype(np.float32)
        for k, t in p.items():
            name = convert_hf_bert.heed_name(k)
            if not name or name.startswith("mlm."):
                continue
            g = t.grad if t.grad is not None else torch.zeros_like(t)
            f["grad/" + name] = g.numpy().astype(np.float32)
    os.replace(path + ".tmp", path)
    print("wrote", final, "and", path)


if __name__ == "__main__":
    main()
