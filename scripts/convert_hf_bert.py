#!/usr/bin/python3
"""Convert a Hugging Face BERT directory into heed's params-only HDF5 file.

    /usr/bin/python3 scripts/convert_hf_bert.py HF_DIR OUT.h5

HF_DIR holds config.json and model.safetensors or pytorch_model.bin (as
written by transformers' save_pretrained); vocab.txt is not needed here
(tokenize with `heed tokenize --vocab HF_DIR/vocab.txt`).

Output layout (what heed's --init-from reads):
  /params/<heed name>   float32, the tensor's shape, one per heed parameter
  @model                "bert"
  @heed_version         heed's version string
  @dim @depth @heads @ffn @max_len @vocab_size @type_vocab_size   int32
  @source               the directory converted (for people)

Names follow src/models/bert.h: HF's "bert." prefix is optional; NSP
(cls.seq_relationship) and position_ids buffers are dropped; the MLM
decoder weight is tied to the word embeddings and must equal them. A
checkpoint with a `classifier` head keeps it as head.* (and @num_classes).

safetensors is read with struct + json + numpy (Debian has no python3-
safetensors; the format is an 8-byte header length, a JSON header and raw
little-endian data). pytorch_model.bin goes through torch.load (Debian's
python3-torch). The file is written under a temporary name and renamed.
"""
import argparse
import json
import os
import re
import struct
import sys

import h5py
import numpy as np

HEED_VERSION = "0.1.0"

# (pattern on the name without "bert.", replacement) in order; first match wins.
RENAMES = [
    (r"embeddings\.word_embeddings\.weight", "tok_emb.weight"),
    (r"embeddings\.position_embeddings\.weight", "pos_emb.weight"),
    (r"embeddings\.token_type_embeddings\.weight", "seg_emb.weight"),
    (r"embeddings\.LayerNorm\.(weight|bias)", r"emb_ln.\1"),
    (r"encoder\.layer\.(\d+)\.attention\.self\.query\.(weight|bias)", r"blocks.\1.attn.q.\2"),
    (r"encoder\.layer\.(\d+)\.attention\.self\.key\.(weight|bias)", r"blocks.\1.attn.k.\2"),
    (r"encoder\.layer\.(\d+)\.attention\.self\.value\.(weight|bias)", r"blocks.\1.attn.v.\2"),
    (r"encoder\.layer\.(\d+)\.attention\.output\.dense\.(weight|bias)", r"blocks.\1.attn.o.\2"),
    (r"encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.(weight|bias)", r"blocks.\1.ln1.\2"),
    (r"encoder\.layer\.(\d+)\.intermediate\.dense\.(weight|bias)", r"blocks.\1.fc1.\2"),
    (r"encoder\.layer\.(\d+)\.output\.dense\.(weight|bias)", r"blocks.\1.fc2.\2"),
    (r"encoder\.layer\.(\d+)\.output\.LayerNorm\.(weight|bias)", r"blocks.\1.ln2.\2"),
    (r"pooler\.dense\.(weight|bias)", r"pooler.\1"),
    (r"classifier\.(weight|bias)", r"head.\1"),
    (r"cls\.predictions\.transform\.dense\.(weight|bias)", r"mlm.dense.\1"),
    (r"cls\.predictions\.transform\.LayerNorm\.(weight|bias)", r"mlm.ln.\1"),
    (r"cls\.predictions\.bias", "mlm.bias"),
]
DROPPED = [
    r"embeddings\.position_ids",
    r"cls\.seq_relationship\..*",
    r"cls\.predictions\.decoder\.bias",  # the same tensor as cls.predictions.bias
    r"cls\.predictions\.decoder\.weight",  # tied: checked against the embeddings
]


def fail(msg):
    sys.stderr.write("convert_hf_bert.py: %s\n" % msg)
    sys.exit(2)


def heed_name(hf):
    """The heed name of HF key `hf`, None for dropped keys."""
    name = hf[5:] if hf.startswith("bert.") else hf
    # TF-era checkpoints call layer-norm parameters gamma/beta.
    name = re.sub(r"LayerNorm\.gamma$", "LayerNorm.weight", name)
    name = re.sub(r"LayerNorm\.beta$", "LayerNorm.bias", name)
    for pat in DROPPED:
        if re.fullmatch(pat, name):
            return None
    for pat, rep in RENAMES:
        if re.fullmatch(pat, name):
            return re.sub(pat, rep, name)
    return ""


SAFETENSORS_DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16,
                      "BF16": np.uint16, "I64": np.int64, "I32": np.int32}


def read_safetensors(path):
    """{name: float32 array} from a .safetensors file."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        fail("%s: too short for a safetensors file" % path)
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        fail("%s: header length %d past the end of the file" % (path, n))
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = SAFETENSORS_DTYPES.get(info["dtype"])
        if dt is None:
            fail("%s: tensor %s has unsupported dtype %s" % (path, name, info["dtype"]))
        b, e = info["data_offsets"]
        a = np.frombuffer(data[b:e], dtype=np.dtype(dt).newbyteorder("<"))
        if info["dtype"] == "BF16":  # the top half of a float32
            a = (a.astype(np.uint32) << 16).view(np.float32)
        out[name] = a.reshape(info["shape"]).astype(np.float32)
    return out


def write_safetensors(path, tensors):
    """The inverse, for fixtures: {name: float32 array} -> .safetensors."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape),
                        "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def read_torch_bin(path):
    import torch  # only needed for this format

    sd = torch.load(path, map_location="cpu")
    if isinstance(sd, dict) and "state_dict" in sd:
        sd = sd["state_dict"]
    return {k: v.detach().to(torch.float32).numpy() for k, v in sd.items()
            if hasattr(v, "detach") and v.is_floating_point()}


def load_state(hf_dir):
    st = os.path.join(hf_dir, "model.safetensors")
    pt = os.path.join(hf_dir, "pytorch_model.bin")
    if os.path.exists(st):
        return read_safetensors(st), st
    if os.path.exists(pt):
        return read_torch_bin(pt), pt
    fail("%s: neither model.safetensors nor pytorch_model.bin" % hf_dir)


def convert(hf_dir, out_path):
    cfg_path = os.path.join(hf_dir, "config.json")
    if not os.path.exists(cfg_path):
        fail("%s: no config.json" % hf_dir)
    with open(cfg_path) as f:
        cfg = json.load(f)
    for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                "max_position_embeddings", "vocab_size"):
        if key not in cfg:
            fail("%s: config.json has no %s" % (hf_dir, key))
    if cfg.get("type_vocab_size", 2) != 2:
        fail("%s: type_vocab_size %s; heed's BERT has 2 segment ids" %
             (hf_dir, cfg.get("type_vocab_size")))
    act = cfg.get("hidden_act", "gelu")
    if act != "gelu":
        fail("%s: hidden_act '%s'; heed's BERT uses erf GELU ('gelu')" % (hf_dir, act))
    if cfg.get("position_embedding_type", "absolute") != "absolute":
        fail("%s: only absolute position embeddings are supported" % hf_dir)
    eps = cfg.get("layer_norm_eps", 1e-12)
    if abs(eps - 1e-12) > 1e-15:
        sys.stderr.write("convert_hf_bert.py: warning: layer_norm_eps %g; heed uses 1e-12\n" % eps)

    state, src = load_state(hf_dir)
    params, dropped = {}, []
    for k, v in state.items():
        name = heed_name(k)
        if name is None:
            dropped.append(k)
            continue
        if name == "":
            fail("%s: unknown tensor '%s' (not a BERT parameter heed knows)" % (src, k))
        if name in params:
            fail("%s: '%s' appears twice (as %s)" % (src, name, k))
        params[name] = np.asarray(v, dtype=np.float32)
    C, D = cfg["hidden_size"], cfg["num_hidden_layers"]
    want = {"tok_emb.weight": (cfg["vocab_size"], C),
            "pos_emb.weight": (cfg["max_position_embeddings"], C),
            "seg_emb.weight": (2, C)}
    for name, shape in want.items():
        if name not in params:
            fail("%s: missing %s" % (src, name))
        if tuple(params[name].shape) != shape:
            fail("%s: %s has shape %s, config.json says %s" %
                 (src, name, params[name].shape, shape))
    for i in range(D):
        if "blocks.%d.attn.q.weight" % i not in params:
            fail("%s: missing layer %d of %d" % (src, i, D))
    for k in dropped:
        base = k[5:] if k.startswith("bert.") else k
        if base == "cls.predictions.decoder.weight":
            if not np.array_equal(state[k], params["tok_emb.weight"]):
                fail("%s: the MLM decoder is not tied to the word embeddings" % src)

    tmp = out_path + ".tmp"
    with h5py.File(tmp, "w") as f:
        f.attrs["model"] = "bert"
        f.attrs["heed_version"] = HEED_VERSION
        f.attrs["source"] = os.path.abspath(hf_dir)
        attrs = {"dim": C, "depth": D, "heads": cfg["num_attention_heads"],
                 "ffn": cfg["intermediate_size"], "max_len": cfg["max_position_embeddings"],
                 "vocab_size": cfg["vocab_size"], "type_vocab_size": 2}
        if "head.weight" in params:
            attrs["num_classes"] = params["head.weight"].shape[0]
        for k, v in attrs.items():
            f.attrs[k] = np.int32(v)
        g = f.create_group("params")
        for name in sorted(params):
            g.create_dataset(name, data=params[name])
    os.replace(tmp, out_path)
    return params


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("hf_dir")
    ap.add_argument("out")
    a = ap.parse_args()
    params = convert(a.hf_dir, a.out)
    n = sum(v.size for v in params.values())
    print("wrote %s: %d tensors, %d parameters" % (a.out, len(params), n))


if __name__ == "__main__":
    main()
