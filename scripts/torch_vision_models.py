"""PyTorch twins of heed's image models (src/models/cbam_cnn.c,
src/models/resnet.c, and the ViT of src/models/tower.c), layer for layer: used by scripts/bench_torch.py (speed) and
scripts/train_torch_vision.py (accuracy at the same budget)."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class CBAM(nn.Module):
    """Channel attention (shared MLP over avg- and max-pooled descriptors),
    then spatial attention (7x7 conv with bias over the (max, mean) map)."""

    def __init__(self, c, reduction):
        super().__init__()
        hidden = max(c // reduction, 1)
        self.fc1, self.fc2 = nn.Linear(c, hidden), nn.Linear(hidden, c)
        self.spatial = nn.Conv2d(2, 1, 7, padding=3)

    def forward(self, x):
        mlp = lambda v: self.fc2(F.relu(self.fc1(v)))
        s = torch.sigmoid(mlp(x.mean((2, 3))) + mlp(x.amax((2, 3))))
        x = x * s[:, :, None, None]
        pooled = torch.cat([x.amax(1, keepdim=True), x.mean(1, keepdim=True)], 1)
        return x * torch.sigmoid(self.spatial(pooled))


def conv_bn(c, oc, k, stride=1):
    return [nn.Conv2d(c, oc, k, stride, k // 2, bias=False), nn.BatchNorm2d(oc)]


class CBAMCNN(nn.Module):
    def __init__(self, channels, classes, width=32, dropout=0.0):
        super().__init__()
        stages, c = [], channels
        for s in range(3):
            oc = width << s
            layers = conv_bn(c, oc, 3) + [nn.ReLU()] + conv_bn(oc, oc, 3) + [nn.ReLU(), CBAM(oc, 8)]
            if s < 2:
                layers.append(nn.MaxPool2d(2))
            stages.append(nn.Sequential(*layers))
            c = oc
        self.stages = nn.Sequential(*stages)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(c, classes)

    def forward(self, x):
        return self.head(self.drop(self.stages(x).mean((2, 3))))


class Block(nn.Module):
    def __init__(self, c, planes, stride, bottleneck, cbam):
        super().__init__()
        oc = planes * 4 if bottleneck else planes
        if bottleneck:
            self.branch = nn.Sequential(*conv_bn(c, planes, 1), nn.ReLU(),
                                        *conv_bn(planes, planes, 3, stride), nn.ReLU(),
                                        *conv_bn(planes, oc, 1))
        else:
            self.branch = nn.Sequential(*conv_bn(c, planes, 3, stride), nn.ReLU(),
                                        *conv_bn(planes, planes, 3))
        self.cbam = CBAM(oc, 8) if cbam else nn.Identity()
        self.down = (nn.Sequential(nn.Conv2d(c, oc, 1, stride, bias=False), nn.BatchNorm2d(oc))
                     if stride != 1 or c != oc else nn.Identity())
        self.out = oc

    def forward(self, x):
        return F.relu(self.cbam(self.branch(x)) + self.down(x))


class ResNet(nn.Module):
    """depth 20/56: CIFAR layout (3 stages, width 16); depth 18: ImageNet
    layout (4 stages of 2, width 64) with the small or ImageNet stem."""

    def __init__(self, channels, classes, depth=20, width=0, bottleneck=False, cbam=False,
                 stem="small"):
        super().__init__()
        if depth == 18:
            per, width = [2, 2, 2, 2], width or 64
        else:
            per, width = [(depth - 2) // (9 if bottleneck else 6)] * 3, width or 16
        if stem == "imagenet":
            self.stem = nn.Sequential(nn.Conv2d(channels, width, 7, 2, 3, bias=False),
                                      nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(3, 2, 1))
        else:
            self.stem = nn.Sequential(*conv_bn(channels, width, 3), nn.ReLU())
        blocks, c = [], width
        for s, n in enumerate(per):
            for i in range(n):
                b = Block(c, width << s, 2 if i == 0 and s > 0 else 1, bottleneck, cbam)
                blocks.append(b)
                c = b.out
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(c, classes)

    def forward(self, x):
        return self.fc(self.blocks(self.stem(x)).mean((2, 3)))


class ViTBlock(nn.Module):
    """Pre-norm encoder block as src/core/blocks.c: dropout on the attention
    probabilities, on the attention output and on the FFN output."""

    def __init__(self, dim, heads, ffn, dropout):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.heads, self.p = heads, dropout
        self.qkv, self.o = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.fc1, self.fc2 = nn.Linear(dim, ffn), nn.Linear(ffn, dim)

    def forward(self, x):
        B, T, C = x.shape
        hs = C // self.heads
        q, k, v = self.qkv(self.ln1(x)).view(B, T, 3, self.heads, hs).permute(2, 0, 3, 1, 4)
        a = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(hs), dim=-1)
        y = F.dropout(a, self.p, self.training) @ v
        x = x + F.dropout(self.o(y.transpose(1, 2).reshape(B, T, C)), self.p, self.training)
        return x + F.dropout(self.fc2(F.gelu(self.fc1(self.ln2(x)))), self.p, self.training)


class ViT(nn.Module):
    """heed's vit: patch embedding, [CLS] token, learned positions, dropout,
    pre-norm blocks, final LayerNorm, mean over all tokens, linear head."""

    def __init__(self, channels, classes, image, dim, depth, heads, ffn, patch, dropout):
        super().__init__()
        self.patch, self.p = patch, dropout
        self.embed = nn.Linear(channels * patch * patch, dim)
        self.cls = nn.Parameter(torch.nn.init.trunc_normal_(torch.empty(dim), std=0.02))
        n = (image // patch) ** 2 + 1
        self.pos = nn.Parameter(torch.nn.init.trunc_normal_(torch.empty(n, dim), std=0.02))
        self.blocks = nn.Sequential(*(ViTBlock(dim, heads, ffn, dropout) for _ in range(depth)))
        self.ln_f = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, img):
        B, C, H, W = img.shape
        p = self.patch
        x = img.unfold(2, p, p).unfold(3, p, p).permute(0, 2, 3, 1, 4, 5).reshape(B, -1, C * p * p)
        x = torch.cat([self.cls.expand(B, 1, -1), self.embed(x)], 1) + self.pos
        x = self.blocks(F.dropout(x, self.p, self.training))
        return self.head(self.ln_f(x).mean(1))


def build(name, channels, classes, width=0, dropout=0.0, cbam=False, vit=None):
    """vit: dict(image, dim, depth, heads, ffn, patch) for name == "vit"."""
    if name == "vit":
        return ViT(channels, classes, dropout=dropout, **vit)
    if name == "cbam_cnn":
        return CBAMCNN(channels, classes, width or 32, dropout)
    if name in ("resnet20", "resnet56", "resnet18"):
        return ResNet(channels, classes, int(name[6:]), width, cbam=cbam)
    raise SystemExit(f"no PyTorch twin for model {name}")
