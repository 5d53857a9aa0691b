"""PyTorch twins of heed's CNNs (src/models/cbam_cnn.c, src/models/resnet.c),
layer for layer: used by scripts/bench_torch.py (speed) and
scripts/train_torch_vision.py (accuracy at the same budget)."""
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


def build(name, channels, classes, width=0, dropout=0.0, cbam=False):
    if name == "cbam_cnn":
        return CBAMCNN(channels, classes, width or 32, dropout)
    if name in ("resnet20", "resnet56", "resnet18"):
        return ResNet(channels, classes, int(name[6:]), width, cbam=cbam)
    raise SystemExit(f"no PyTorch twin for model {name}")
