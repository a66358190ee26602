"""``ArchSpec`` → ``nn.Module``: a pure function of the spec, the input shape and the class count.

Layout: stem conv → stages → global average pool → dropout → linear. Each stage first downsamples (``max``/``avg``
pool, or ``stride``: the stage's first block runs at stride 2; ``none`` keeps the resolution), then stacks ``depth``
blocks of ``op``.

Resolution handling (derived here, never stored in the spec): the builder follows the feature-map size from
``input_size`` and *skips* a stage's downsampling when the map would get smaller than 2 px, so a 6-stage network
works on 16 px images. The stem runs at stride 2 when the shorter input side is at least 48 px (keeps large images
affordable, and makes a smaller ``input_scale`` cheaper from 48 px up: 128, 96, 72 and 48 px inputs leave the stem at
64, 48, 36 and 24 px). The head uses adaptive pooling, so the network also accepts other resolutions than
``input_size``; only the skip decisions were made for ``input_size``. Pools use ``ceil_mode`` and convs 'same'
padding, so even then no map shrinks below 1 px.

>>> import torch
>>> from nas_core.spec import ArchSpec, StageSpec
>>> spec = ArchSpec(stem_width=16, stages=(StageSpec("conv", 1, 32, 3),), head_dropout=0.0)
>>> build_model(spec, in_channels=1, num_classes=10, input_size=16)(torch.zeros(2, 1, 16, 16)).shape
torch.Size([2, 10])
"""

from __future__ import annotations

from torch import Tensor, nn

from nas_core.errors import InvalidSearchSpace
from nas_core.ops import OPS, POOLS, conv_bn
from nas_core.spec import ArchSpec

MIN_FEATURE_PX = 2  # never downsample a feature map below this many pixels per side
# From this input size on, the stem itself downsamples by 2. It was 96: a 72 px input (three quarters of a 96 px
# dataset) then kept its stem at 72 px and cost twice as much to train as the full 96 px input.
LARGE_INPUT_PX = 48


class Network(nn.Module):
    """The built network; ``stages`` is an ``nn.Sequential`` of per-stage ``nn.Sequential`` (pool, blocks…)."""

    def __init__(self, stem: nn.Module, stages: nn.Sequential, head: nn.Module) -> None:
        super().__init__()
        self.stem = stem
        self.stages = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = head

    def forward(self, x: Tensor) -> Tensor:
        x = self.stages(self.stem(x))
        return self.head(self.pool(x).flatten(1))


def _halved(size: int) -> int:
    return (size + 1) // 2  # ceil: matches ceil_mode pools and 'same'-padded stride-2 convs


def build_model(spec: ArchSpec, in_channels: int, num_classes: int, *,
                input_size: int | tuple[int, int] = 32) -> nn.Module:
    """Build the network for ``spec``; logits ``[N, num_classes]`` from float input ``[N, in_channels, H, W]``.

    ``input_size`` (pixels, ``int`` or ``(height, width)``) decides which downsampling steps are skipped; pass the
    dataset's image size.
    """
    if in_channels < 1 or num_classes < 1:
        raise InvalidSearchSpace(f"need in_channels >= 1 and num_classes >= 1, got {in_channels}, {num_classes}")
    height, width = (input_size, input_size) if isinstance(input_size, int) else input_size
    if min(height, width) < 1:
        raise InvalidSearchSpace(f"input_size must be positive, got {input_size}")

    stem_stride = 2 if min(height, width) >= LARGE_INPUT_PX else 1
    stem = conv_bn(in_channels, spec.stem_width, 3, stride=stem_stride, act=spec.stages[0].activation)
    if stem_stride == 2:
        height, width = _halved(height), _halved(width)

    stages: list[nn.Module] = []
    channels = spec.stem_width
    for stage in spec.stages:
        layers: list[nn.Module] = []
        downsample = stage.downsample != "none" and min(_halved(height), _halved(width)) >= MIN_FEATURE_PX
        if downsample:
            height, width = _halved(height), _halved(width)
            if stage.downsample in POOLS:
                layers.append(POOLS[stage.downsample]())
        block = OPS[stage.op]
        for index in range(stage.depth):
            stride = 2 if downsample and stage.downsample == "stride" and index == 0 else 1
            layers.append(block(channels, stage.width, kernel=stage.kernel, stride=stride,
                                expansion=stage.expansion, se=stage.se, act=stage.activation))
            channels = stage.width
        stages.append(nn.Sequential(*layers))

    head = nn.Sequential(nn.Dropout(spec.head_dropout), nn.Linear(channels, num_classes))
    return Network(stem, nn.Sequential(*stages), head)
