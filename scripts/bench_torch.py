#!/usr/bin/python3
"""The same models as heed's bench_model, in PyTorch, timed the same way:
forward + cross-entropy + backward + AdamW on random data, one process, the
thread count given. Prints one JSON line.

Run through scripts/bench_models.sh, which measures both in one invocation.
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))

    def forward(self, x, mask, xq=None):
        """Queries from xq (B, Tq, C), default x; keys and values from x."""
        xq = x if xq is None else xq
        B, T, C = xq.shape
        S = x.shape[1]
        hs = C // self.heads
        q = self.q(xq).view(B, T, self.heads, hs).transpose(1, 2)
        k = self.k(x).view(B, S, self.heads, hs).transpose(1, 2)
        v = self.v(x).view(B, S, self.heads, hs).transpose(1, 2)
        s = q @ k.transpose(-2, -1) / math.sqrt(hs)
        if mask is not None:
            s = s + mask[:, None, None, :]
        y = torch.softmax(s, dim=-1) @ v
        return self.o(y.transpose(1, 2).reshape(B, T, C))


class Block(nn.Module):
    def __init__(self, dim, heads, ffn):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.fc1, self.fc2 = nn.Linear(dim, ffn), nn.Linear(ffn, dim)

    def forward(self, x, mask):
        x = x + self.attn(self.ln1(x), mask)
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class Transformer(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.tok = nn.Embedding(a.vocab, a.dim)
        self.pos = nn.Parameter(torch.randn(a.len, a.dim) * 0.02)
        self.blocks = nn.ModuleList(Block(a.dim, a.heads, a.ffn) for _ in range(a.depth))
        self.ln_f = nn.LayerNorm(a.dim)
        self.head = nn.Linear(a.dim, a.classes)

    def forward(self, ids):
        valid = (ids != 0).float()
        mask = (1.0 - valid) * -1e9
        x = self.tok(ids) + self.pos[: ids.shape[1]]
        for b in self.blocks:
            x = b(x, mask)
        x = self.ln_f(x)
        x = (x * valid[..., None]).sum(1) / valid.sum(1, keepdim=True).clamp(min=1)
        return self.head(x)


class ViT(nn.Module):
    def __init__(self, a):
        super().__init__()
        p = a.patch
        n = (a.image // p) ** 2
        self.p = p
        self.embed = nn.Linear(a.channels * p * p, a.dim)
        self.cls = nn.Parameter(torch.zeros(a.dim))
        self.pos = nn.Parameter(torch.randn(n + 1, a.dim) * 0.02)
        self.blocks = nn.ModuleList(Block(a.dim, a.heads, a.ffn) for _ in range(a.depth))
        self.ln_f = nn.LayerNorm(a.dim)
        self.head = nn.Linear(a.dim, a.classes)

    def forward(self, img):
        B, C, H, W = img.shape
        p = self.p
        x = img.unfold(2, p, p).unfold(3, p, p)  # B C gh gw p p
        x = x.permute(0, 2, 3, 1, 4, 5).reshape(B, -1, C * p * p)
        x = self.embed(x)
        x = torch.cat([self.cls.expand(B, 1, -1), x], dim=1) + self.pos
        for b in self.blocks:
            x = b(x, None)
        return self.head(self.ln_f(x).mean(1))


class BiRNN(nn.Module):
    """heed's bilstm / bigru (src/models/birnn.c): embedding, bidirectional
    nn.LSTM / nn.GRU stack, additive attention pooling, linear head. The bench
    batch has no padding, so the stack runs unpacked (PyTorch's fastest path)."""

    def __init__(self, a, cell):
        super().__init__()
        E = a.embed_dim or a.dim
        self.tok = nn.Embedding(a.vocab, E)
        self.rnn = cell(E, a.dim, num_layers=a.depth, batch_first=True, bidirectional=True)
        self.proj = nn.Linear(2 * a.dim, a.dim)
        self.v = nn.Linear(a.dim, 1, bias=False)
        self.head = nn.Linear(2 * a.dim, a.classes)

    def forward(self, ids):
        h, _ = self.rnn(self.tok(ids))
        e = self.v(torch.tanh(self.proj(h))).squeeze(-1)
        e = e.masked_fill(ids == 0, float("-inf"))
        w = torch.softmax(e, dim=1)
        return self.head((w.unsqueeze(-1) * h).sum(1))


class PostNormBlock(nn.Module):
    """BERT's encoder layer: ln1(x + attn(x)); ln2(x + ffn(x))."""

    def __init__(self, dim, heads, ffn):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(dim, eps=1e-12), nn.LayerNorm(dim, eps=1e-12)
        self.attn = Attention(dim, heads)
        self.fc1, self.fc2 = nn.Linear(dim, ffn), nn.Linear(ffn, dim)

    def forward(self, x, mask, cls_only=False):
        """cls_only: the block at token 0 alone (B, 1, C), as heed runs a
        [CLS] classifier's last block; the other tokens are keys/values."""
        xq = x[:, :1] if cls_only else x
        x = self.ln1(xq + self.attn(x, mask, xq))
        return self.ln2(x + self.fc2(F.gelu(self.fc1(x))))


class Bert(nn.Module):
    """heed's `bert`: token + position + segment embeddings, layer norm,
    post-norm blocks, tanh pooler over [CLS], linear head. With cls_only
    the last block runs at [CLS] only, the work heed's bert does."""

    def __init__(self, a):
        super().__init__()
        self.tok = nn.Embedding(a.vocab, a.dim)
        self.pos = nn.Embedding(a.len, a.dim)
        self.seg = nn.Embedding(2, a.dim)
        self.ln = nn.LayerNorm(a.dim, eps=1e-12)
        self.blocks = nn.ModuleList(PostNormBlock(a.dim, a.heads, a.ffn) for _ in range(a.depth))
        self.pooler = nn.Linear(a.dim, a.dim)
        self.head = nn.Linear(a.dim, a.classes)
        self.cls_only = a.cls_only

    def forward(self, ids):
        mask = (ids == 0).float() * -1e9
        T = ids.shape[1]
        x = self.tok(ids) + self.seg(torch.zeros_like(ids)) + self.pos.weight[:T]
        x = self.ln(x)
        for i, b in enumerate(self.blocks):
            x = b(x, mask, self.cls_only and i == len(self.blocks) - 1)
        return self.head(torch.tanh(self.pooler(x[:, 0])))


def count_flops(m, x, y):
    """Matrix-product FLOPs (2 M N K each: mm, addmm, bmm, baddbmm; a
    convolution as the GEMM it reduces to, 2 N OC OH OW IC/groups KH KW, and
    its backward as one such product per gradient it computes) of one
    forward + backward, counted at the ATen level, so the backward's products
    count too. heed's step runs the same products."""
    try:
        from torch.utils._python_dispatch import TorchDispatchMode
    except ImportError:
        return None
    aten = torch.ops.aten
    total = [0]

    def mm_flops(a, b):
        return 2 * a.shape[-2] * a.shape[-1] * b.shape[-1] * (a.numel() // (a.shape[-2] * a.shape[-1]))

    def conv_flops(weight, out, groups):
        oc, icg, kh, kw = weight.shape
        n, _, oh, ow = out.shape
        return 2 * n * oc * oh * ow * icg * kh * kw

    class Counter(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            p = func.overloadpacket
            if p in (aten.mm, aten.bmm):
                total[0] += mm_flops(args[0], args[1])
            elif p in (aten.addmm, aten.baddbmm):
                total[0] += mm_flops(args[1], args[2])
            out = func(*args, **(kwargs or {}))
            if p is aten.convolution:
                total[0] += conv_flops(args[1], out, args[8])
            elif p is aten.convolution_backward:
                # (grad_out, input, weight, ..., groups, output_mask)
                total[0] += conv_flops(args[2], args[0], args[9]) * (
                    int(args[10][0]) + int(args[10][1]))
            return out

    with Counter():
        F.cross_entropy(m(x), y).backward()
    m.zero_grad(set_to_none=True)
    return total[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="transformer")
    for k, v in dict(batch=64, len=64, vocab=8000, classes=10, steps=20, threads=1, image=28,
                     channels=1, dim=128, depth=2, heads=4, ffn=512, patch=4, width=0).items():
        ap.add_argument("--" + k, type=int, default=v)
    ap.add_argument("--embed-dim", type=int, default=0)
    ap.add_argument("--cls-only", action="store_true",
                    help="bert: last block at [CLS] only (heed's bert does this)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    if a.model == "transformer":
        m = Transformer(a)
        x = torch.randint(5, a.vocab, (a.batch, a.len))
    elif a.model == "vit":
        m = ViT(a)
        x = torch.randn(a.batch, a.channels, a.image, a.image)
    elif a.model in ("cbam_cnn", "resnet20", "resnet56", "resnet18"):
        import torch_vision_models  # scripts/torch_vision_models.py (vision helper)
        m = torch_vision_models.build(a.model, a.channels, a.classes, a.width)
        x = torch.randn(a.batch, a.channels, a.image, a.image)
    elif a.model in ("bilstm", "bigru"):
        m = BiRNN(a, nn.LSTM if a.model == "bilstm" else nn.GRU)
        x = torch.randint(5, a.vocab, (a.batch, a.len))
    elif a.model == "bert":
        m = Bert(a)
        x = torch.randint(5, a.vocab, (a.batch, a.len))
    else:
        raise SystemExit(f"bench_torch.py: no PyTorch twin for model {a.model}")
    y = torch.randint(0, a.classes, (a.batch,))
    decay = [p for p in m.parameters() if p.dim() >= 2]
    no_decay = [p for p in m.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                             {"params": no_decay, "weight_decay": 0.0}], lr=1e-3)
    flops = count_flops(m, x, y)
    warmup = 3
    for s in range(warmup + a.steps):
        if s == warmup:
            t0, c0 = time.perf_counter(), time.process_time()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(m(x), y)
        loss.backward()
        opt.step()
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"impl": "pytorch", "model": a.model, "threads": a.threads,
                      "batch": a.batch, "steps": a.steps, "seconds": round(dt, 4),
                      "samples_per_s": round(a.steps * a.batch / dt, 2),
                      "cpu_seconds": round(cpu, 4),
                      "samples_per_cpu_s": round(a.steps * a.batch / cpu, 2),
                      "loss": round(loss.item(), 4), "flops_per_step": flops}))


if __name__ == "__main__":
    main()
