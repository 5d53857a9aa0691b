#!/usr/bin/python3
"""PyTorch reference fixtures for heed's vision ops and blocks.

Writes tests/fixtures/vision.h5 (or --out FILE), checked by
tests/core/test_reference_vision.c. One group per case:
  x                      the input (B, C, H, W)
  params/<name>          heed's parameter names without the block's prefix
                         ("conv1.weight", "bn1.running_mean", ...), buffers
                         included (their values BEFORE the forward pass)
  out, grad_out          the output and a random upstream gradient
  grad/x, grad/<name>    d sum(out * grad_out) / d (input, parameter)
  after/<name>           running statistics after the forward (training)
and the attribute `training` (1: batch statistics), on the group and as
`training_<group>` on the root.

The reference uses torch.nn.functional (conv2d, batch_norm, max/avg pools)
in float64 on values drawn as float32, stored as float32; the maths of the
blocks mirrors src/core/blocks_cnn.c (torchvision's BasicBlock/Bottleneck
with 1x1-projection shortcuts, CBAM of Woo et al. with a shared MLP, a
(max, mean) channel pool and a 7x7 conv with bias). Deterministic; written
to a temporary name and renamed. Run: /usr/bin/python3 scripts/make_fixtures_vision.py
"""
import argparse
import os

import h5py
import numpy as np
import torch
import torch.nn.functional as F

F64 = torch.float64


class Params:
    """Named float64 leaves drawn as float32 values from one generator."""

    def __init__(self, gen):
        self.gen, self.p, self.buffers = gen, {}, {}

    def draw(self, shape, scale=1.0):
        v = (torch.rand(shape, generator=self.gen) * 2 - 1) * scale
        return v.float().to(F64)

    def add(self, name, shape, scale=0.5):
        self.p[name] = self.draw(shape, scale).requires_grad_(True)
        return self.p[name]

    def conv(self, name, c, oc, k, bias=False):
        self.add(name + ".weight", (oc, c, k, k), 1.0 / np.sqrt(c * k * k))
        if bias:
            self.add(name + ".bias", (oc,), 0.2)

    def linear(self, name, i, o):
        self.add(name + ".weight", (o, i), 1.0 / np.sqrt(i))
        self.add(name + ".bias", (o,), 0.2)

    def bn(self, name, c):
        self.p[name + ".weight"] = (1 + self.draw((c,), 0.3)).requires_grad_(True)
        self.add(name + ".bias", (c,), 0.3)
        self.buffers[name + ".running_mean"] = self.draw((c,), 0.3)
        self.buffers[name + ".running_var"] = 1 + self.draw((c,), 0.3)


def bn(x, P, name, training):
    return F.batch_norm(x, P.buffers[name + ".running_mean"], P.buffers[name + ".running_var"],
                        P.p[name + ".weight"], P.p[name + ".bias"], training=training,
                        momentum=0.1, eps=1e-5)


def conv(x, P, name, stride=1, pad=0, dilation=1, groups=1):
    return F.conv2d(x, P.p[name + ".weight"], P.p.get(name + ".bias"), stride, pad, dilation,
                    groups)


def cbam(x, P, name):
    def mlp(v):
        h = F.relu(v @ P.p[name + ".mlp.fc1.weight"].t() + P.p[name + ".mlp.fc1.bias"])
        return h @ P.p[name + ".mlp.fc2.weight"].t() + P.p[name + ".mlp.fc2.bias"]

    s = torch.sigmoid(mlp(x.mean((2, 3))) + mlp(x.amax((2, 3))))
    x = x * s[:, :, None, None]
    pooled = torch.cat([x.amax(1, keepdim=True), x.mean(1, keepdim=True)], 1)
    a = torch.sigmoid(conv(pooled, P, name + ".spatial", pad=3))
    return x * a


def cbam_params(P, name, c, reduction):
    hidden = max(c // reduction, 1)
    P.linear(name + ".mlp.fc1", c, hidden)
    P.linear(name + ".mlp.fc2", hidden, c)
    P.conv(name + ".spatial", 2, 1, 7, bias=True)


def block_params(P, c, planes, stride, bottleneck, with_cbam):
    oc = planes * 4 if bottleneck else planes
    if bottleneck:
        P.conv("conv1", c, planes, 1), P.bn("bn1", planes)
        P.conv("conv2", planes, planes, 3), P.bn("bn2", planes)
        P.conv("conv3", planes, oc, 1), P.bn("bn3", oc)
    else:
        P.conv("conv1", c, planes, 3), P.bn("bn1", planes)
        P.conv("conv2", planes, planes, 3), P.bn("bn2", planes)
    if with_cbam:
        cbam_params(P, "cbam", oc, 8)
    if stride != 1 or c != oc:
        P.conv("downsample.0", c, oc, 1), P.bn("downsample.1", oc)


def block(x, P, stride, bottleneck, with_cbam, training):
    if bottleneck:
        h = F.relu(bn(conv(x, P, "conv1"), P, "bn1", training))
        h = F.relu(bn(conv(h, P, "conv2", stride, 1), P, "bn2", training))
        h = bn(conv(h, P, "conv3"), P, "bn3", training)
    else:
        h = F.relu(bn(conv(x, P, "conv1", stride, 1), P, "bn1", training))
        h = bn(conv(h, P, "conv2", 1, 1), P, "bn2", training)
    if with_cbam:
        h = cbam(h, P, "cbam")
    sc = x
    if "downsample.0.weight" in P.p:
        sc = bn(conv(x, P, "downsample.0", stride), P, "downsample.1", training)
    return F.relu(h + sc)


def case_conv(P, x, stride, pad, dilation, groups, bias, oc, k):
    P.conv("conv", x.shape[1] // groups, oc, k, bias)
    return lambda x: conv(x, P, "conv", stride, pad, dilation, groups)


def write_case(f, name, gen, xshape, build, training):
    P = Params(gen)
    x = P.draw(xshape).requires_grad_(True)
    fn = build(P, x)
    before = {k: v.clone() for k, v in P.buffers.items()}
    out = fn(x)
    grad_out = P.draw(tuple(out.shape))
    (out * grad_out).sum().backward()
    g = f.create_group(name)
    g.attrs["training"] = int(training)
    f.attrs["training_" + name] = int(training)  # root copy: tests read root attributes
    f32 = lambda t: t.detach().to(torch.float32).numpy()
    g["x"], g["out"], g["grad_out"], g["grad/x"] = f32(x), f32(out), f32(grad_out), f32(x.grad)
    for k, v in P.p.items():
        g["params/" + k] = f32(v)
        g["grad/" + k] = f32(v.grad)
    for k, v in before.items():
        g["params/" + k] = f32(v)
        g["after/" + k] = f32(P.buffers[k])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="tests/fixtures/vision.h5")
    args = ap.parse_args()
    gen = torch.Generator().manual_seed(20261203)
    tmp = args.out + ".tmp"
    with h5py.File(tmp, "w") as f:
        write_case(f, "conv2d", gen, (2, 3, 6, 5),
                   lambda P, x: case_conv(P, x, 1, 1, 1, 1, True, 4, 3), False)
        write_case(f, "conv2d_strided", gen, (2, 4, 7, 6),
                   lambda P, x: case_conv(P, x, 2, 2, 2, 2, True, 6, 3), False)
        write_case(f, "conv2d_1x1", gen, (2, 4, 5, 5),
                   lambda P, x: case_conv(P, x, 1, 0, 1, 1, False, 3, 1), False)
        for training in (True, False):
            def build_bn(P, x, training=training):
                P.bn("bn", x.shape[1])
                return lambda x: bn(x, P, "bn", training)
            write_case(f, "batch_norm_" + ("train" if training else "eval"), gen, (3, 4, 5, 5),
                       build_bn, training)

        def build_cbam(P, x):
            cbam_params(P, "cbam", x.shape[1], 4)
            return lambda x: cbam(x, P, "cbam")

        write_case(f, "cbam", gen, (2, 8, 5, 6), build_cbam, False)
        blocks = [("basic_block", 4, 6, 2, False, False), ("basic_block_cbam", 8, 8, 1, False, True),
                  ("bottleneck_block", 4, 2, 2, True, False)]
        for name, c, planes, stride, bottleneck, with_cbam in blocks:

            def build_block(P, x, c=c, planes=planes, stride=stride, bottleneck=bottleneck,
                            with_cbam=with_cbam):
                block_params(P, c, planes, stride, bottleneck, with_cbam)
                return lambda x: block(x, P, stride, bottleneck, with_cbam, True)

            write_case(f, name, gen, (3, c, 6, 6), build_block, True)

        def build_bneck_id(P, x):
            block_params(P, 8, 2, 1, True, False)
            return lambda x: block(x, P, 1, True, False, True)

        write_case(f, "bottleneck_block_identity", gen, (2, 8, 5, 5), build_bneck_id, True)
    os.replace(tmp, args.out)
    print("wrote", args.out, os.path.getsize(args.out), "bytes")


if __name__ == "__main__":
    main()
