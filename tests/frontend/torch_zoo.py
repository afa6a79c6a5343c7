"""Plain-torch models (no torchvision) for the PyTorch frontend's tests and benchmarks.

Each builder takes its sizes as arguments: the tests use tiny ones, the
benchmarks realistic ones. :data:`ZOO` maps a name to ``(builder, example
inputs)`` with the test sizes; every model is in eval mode with seeded weights
and non-trivial BatchNorm statistics.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn


def seeded(model: nn.Module, seed: int = 0) -> nn.Module:
    """``model`` in eval mode, with weights drawn from ``seed`` and random BatchNorm running statistics."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.running_mean.copy_(torch.randn(module.num_features, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(module.num_features, generator=generator) * 0.1)
    return model.eval()


# ---------------------------------------------------------------- ResNet-18 style
class BasicBlock(nn.Module):
    """Two 3x3 convolutions with BatchNorm and a (projected when needed) identity shortcut."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    """ResNet-18's layout (stem, four stages of two basic blocks, pooled classifier) at any width."""

    def __init__(self, width: int = 64, num_classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        widths = [width, width * 2, width * 4, width * 8]
        cin = width
        for i, cout in enumerate(widths):
            stride = 1 if i == 0 else 2
            setattr(self, f"layer{i + 1}", nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)))
            cin = cout
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# ---------------------------------------------------------------- MobileNetV2 style
def conv_bn_relu6(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    """Expand (1x1), depthwise (3x3), project (1x1, linear); a residual when shapes allow."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        layers = [conv_bn_relu6(cin, hidden, 1)] if expand != 1 else []
        layers += [conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)
        self.use_residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.conv(x) if self.use_residual else self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNetV2's layout: (expansion, channels, repeats, stride) stages, scaled by ``width``."""

    SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                (6, 320, 1, 1))

    def __init__(self, width: float = 1.0, num_classes: int = 1000, stages: int = 7):
        super().__init__()
        cin = max(8, int(32 * width))
        layers = [conv_bn_relu6(3, cin, 3, 2)]
        for expand, channels, repeats, stride in self.SETTINGS[:stages]:
            cout = max(8, int(channels * width))
            for i in range(repeats):
                layers.append(InvertedResidual(cin, cout, stride if i == 0 else 1, expand))
                cin = cout
        last = max(16, int(1280 * width))
        layers.append(conv_bn_relu6(cin, last, 1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, num_classes))

    def forward(self, x):
        x = self.features(x)
        return self.classifier(nn.functional.adaptive_avg_pool2d(x, 1).flatten(1))


# ---------------------------------------------------------------- transformer encoder
class TransformerClassifier(nn.Module):
    """Token embedding, positional embedding, an nn.TransformerEncoder (batch_first) and a pooled head."""

    def __init__(self, vocab: int = 1000, seq: int = 128, d_model: int = 256, heads: int = 4, ffn: int = 1024,
                 layers: int = 2, num_classes: int = 10):
        super().__init__()
        self.embed = nn.Embedding(vocab, d_model)
        self.position = nn.Parameter(torch.randn(1, seq, d_model) * 0.02)
        layer = nn.TransformerEncoderLayer(d_model, heads, ffn, dropout=0.1, activation="gelu", batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, tokens):
        h = self.encoder(self.embed(tokens) + self.position)
        return self.head(self.norm(h).mean(dim=1))


# ---------------------------------------------------------------- MLP
class MLP(nn.Module):
    """Linear → LayerNorm → GELU blocks; returns a dict of the logits and their log-softmax."""

    def __init__(self, features: int = 256, hidden: int = 512, depth: int = 3, num_classes: int = 10):
        super().__init__()
        blocks, cin = [], features
        for _ in range(depth):
            blocks += [nn.Linear(cin, hidden), nn.LayerNorm(hidden), nn.GELU(), nn.Dropout(0.1)]
            cin = hidden
        self.body = nn.Sequential(*blocks)
        self.head = nn.Linear(cin, num_classes)

    def forward(self, x):
        logits = self.head(self.body(x))
        return {"logits": logits, "log_probs": torch.log_softmax(logits, dim=-1)}


# ---------------------------------------------------------------- 1-D conv audio model
class AudioNet(nn.Module):
    """An M5-style raw-waveform classifier: strided Conv1d stem, Conv1d/BatchNorm1d/ReLU/MaxPool1d blocks."""

    def __init__(self, channels: int = 64, num_classes: int = 35, blocks: int = 3):
        super().__init__()
        layers = [nn.Conv1d(1, channels, 80, stride=16), nn.BatchNorm1d(channels), nn.ReLU(), nn.MaxPool1d(4)]
        cin = channels
        for i in range(blocks):
            cout = channels * (2 if i else 1)
            layers += [nn.Conv1d(cin, cout, 3, padding=1), nn.BatchNorm1d(cout), nn.ReLU(), nn.MaxPool1d(2)]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, waveform):
        x = self.pool(self.features(waveform)).squeeze(-1)
        return torch.log_softmax(self.fc(x), dim=-1)


Entry = tuple[Callable[[], nn.Module], Callable[[], tuple]]


def _randn(*shape: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _tokens(batch: int, seq: int, vocab: int) -> torch.Tensor:
    return torch.randint(0, vocab, (batch, seq), generator=torch.Generator().manual_seed(1))


def zoo(scale: str = "test") -> dict[str, Entry]:
    """name -> (model builder, example inputs builder) at ``"test"`` (tiny) or ``"bench"`` (realistic) sizes."""
    if scale == "test":
        return {
            "resnet18": (lambda: seeded(ResNet18(width=4, num_classes=10)), lambda: (_randn(1, 3, 32, 32),)),
            "mobilenet_v2": (lambda: seeded(MobileNetV2(width=0.25, num_classes=10, stages=4)),
                             lambda: (_randn(1, 3, 32, 32),)),
            "transformer": (lambda: seeded(TransformerClassifier(vocab=50, seq=8, d_model=16, heads=2, ffn=32)),
                            lambda: (_tokens(2, 8, 50),)),
            "mlp": (lambda: seeded(MLP(features=16, hidden=32, depth=2)), lambda: (_randn(4, 16),)),
            "audio": (lambda: seeded(AudioNet(channels=8, num_classes=5, blocks=2)), lambda: (_randn(2, 1, 800),)),
        }
    return {
        "resnet18": (lambda: seeded(ResNet18()), lambda: (_randn(1, 3, 224, 224),)),
        "mobilenet_v2": (lambda: seeded(MobileNetV2()), lambda: (_randn(1, 3, 224, 224),)),
        "transformer": (lambda: seeded(TransformerClassifier()), lambda: (_tokens(1, 128, 1000),)),
        "mlp": (lambda: seeded(MLP()), lambda: (_randn(32, 256),)),
        "audio": (lambda: seeded(AudioNet()), lambda: (_randn(1, 1, 8000),)),
    }
