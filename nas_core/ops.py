"""Block and activation registries: the names an ``ArchSpec`` may use, mapped to ``nn.Module`` constructors.

Every block has the same constructor, ``Block(in_channels, out_channels, *, kernel, stride, expansion, se, act)``,
where ``act`` is an activation name from :data:`ACTIVATIONS`; stride 2 is how ``downsample="stride"`` is applied to
the first block of a stage. Conv → BatchNorm → activation everywhere; squeeze-excitation is torchvision's.
"""

from __future__ import annotations

from typing import Callable

from torch import Tensor, nn
from torchvision.ops import SqueezeExcitation

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": lambda: nn.ReLU(inplace=True),
    "leaky_relu": lambda: nn.LeakyReLU(0.1, inplace=True),
    "swish": lambda: nn.SiLU(inplace=True),
}


def get_act_layer(name: str) -> nn.Module:
    """A fresh activation module for ``name`` (``relu``, ``leaky_relu`` or ``swish``); KeyError names the choices."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise KeyError(f"unknown activation {name!r}; choose from {sorted(ACTIVATIONS)}") from None


def conv_bn(in_channels: int, out_channels: int, kernel: int, *, stride: int = 1, groups: int = 1,
            act: str | None = None) -> nn.Sequential:
    """Conv (no bias: BatchNorm follows) → BatchNorm → optional activation, 'same' padding."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_channels),
    ]
    if act is not None:
        layers.append(get_act_layer(act))
    return nn.Sequential(*layers)


def squeeze_excitation(channels: int, *, reduce_from: int | None = None) -> nn.Module:
    """SE gate on ``channels``; the bottleneck is a quarter of ``reduce_from`` (the block input), at least 4."""
    squeeze = max(4, (reduce_from or channels) // 4)
    return SqueezeExcitation(channels, squeeze, activation=nn.ReLU)


class ConvBlock(nn.Module):
    """Plain VGG-style block: one k×k conv, optional SE."""

    def __init__(self, in_channels: int, out_channels: int, *, kernel: int, stride: int = 1, expansion: int = 1,
                 se: bool = False, act: str = "relu") -> None:
        super().__init__()
        self.body = conv_bn(in_channels, out_channels, kernel, stride=stride, act=act)
        self.se = squeeze_excitation(out_channels) if se else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.se(self.body(x))


class ResidualBlock(nn.Module):
    """ResNet basic block: two k×k convs and a shortcut (1×1 projection when shape changes)."""

    def __init__(self, in_channels: int, out_channels: int, *, kernel: int, stride: int = 1, expansion: int = 1,
                 se: bool = False, act: str = "relu") -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv_bn(in_channels, out_channels, kernel, stride=stride, act=act),
            conv_bn(out_channels, out_channels, kernel),
            squeeze_excitation(out_channels) if se else nn.Identity(),
        )
        needs_projection = stride != 1 or in_channels != out_channels
        self.shortcut = conv_bn(in_channels, out_channels, 1, stride=stride) if needs_projection else nn.Identity()
        self.act = get_act_layer(act)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class DepthwiseSeparableBlock(nn.Module):
    """MobileNet-v1 block: depthwise k×k, optional SE, pointwise 1×1."""

    def __init__(self, in_channels: int, out_channels: int, *, kernel: int, stride: int = 1, expansion: int = 1,
                 se: bool = False, act: str = "relu") -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv_bn(in_channels, in_channels, kernel, stride=stride, groups=in_channels, act=act),
            squeeze_excitation(in_channels) if se else nn.Identity(),
            conv_bn(in_channels, out_channels, 1, act=act),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class MBConvBlock(nn.Module):
    """MobileNet-v2 / EfficientNet inverted bottleneck: 1×1 expand, depthwise k×k, SE, linear 1×1 project."""

    def __init__(self, in_channels: int, out_channels: int, *, kernel: int, stride: int = 1, expansion: int = 1,
                 se: bool = False, act: str = "relu") -> None:
        super().__init__()
        hidden = in_channels * expansion
        self.body = nn.Sequential(
            conv_bn(in_channels, hidden, 1, act=act) if expansion != 1 else nn.Identity(),
            conv_bn(hidden, hidden, kernel, stride=stride, groups=hidden, act=act),
            squeeze_excitation(hidden, reduce_from=in_channels) if se else nn.Identity(),
            conv_bn(hidden, out_channels, 1),
        )
        self.use_residual = stride == 1 and in_channels == out_channels

    def forward(self, x: Tensor) -> Tensor:
        out = self.body(x)
        return out + x if self.use_residual else out


OPS: dict[str, type[nn.Module]] = {
    "conv": ConvBlock,
    "residual": ResidualBlock,
    "dwsep": DepthwiseSeparableBlock,
    "mbconv": MBConvBlock,
}

# Downsampling applied before a stage; "stride" and "none" are handled by the builder (first block's stride).
POOLS: dict[str, Callable[[], nn.Module]] = {
    # ceil_mode: an odd-sized map keeps its last row/column instead of dropping it
    "max": lambda: nn.MaxPool2d(2, ceil_mode=True),
    "avg": lambda: nn.AvgPool2d(2, ceil_mode=True),
}
