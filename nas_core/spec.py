"""Architectures and training recipes as frozen data: JSON round-trip and a stable hash.

A spec holds no callables: ``op`` and ``activation`` are keys of the registries in ``nas_core.ops``, resolved by the
builder. Specs never change after creation; derive a new one with ``dataclasses.replace``.

>>> stage = StageSpec(op="mbconv", depth=2, width=32, kernel=3, expansion=6, se=True, activation="swish",
...                   downsample="max")
>>> arch = ArchSpec(stem_width=16, stages=(stage,), head_dropout=0.1)
>>> ArchSpec.from_dict(arch.to_dict()) == arch and len(arch.hash()) == 64
True
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, Mapping

from nas_core.errors import InvalidSearchSpace

# Names the spec layer accepts; the registries in nas_core.ops implement exactly these (a test keeps them in step).
OP_NAMES = ("conv", "residual", "dwsep", "mbconv")
ACTIVATION_NAMES = ("relu", "leaky_relu", "swish")
DOWNSAMPLE_NAMES = ("max", "avg", "stride", "none")
SCHEDULE_NAMES = ("cosine", "onecycle")
OPTIMIZER_NAMES = ("adamw", "sgd")
POLICY_NAMES = ("none", "trivial", "randaugment")
MIX_NAMES = ("none", "mixup", "cutmix")

Downsample = Literal["max", "avg", "stride", "none"]


def _canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _sha256(data: Any) -> str:
    return hashlib.sha256(_canonical_json(data).encode()).hexdigest()


def _check(ok: bool, errors: list[dict], field: str, message: str) -> None:
    if not ok:
        errors.append({"field": field, "error": message})


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _raise_if(errors: list[dict], what: str) -> None:
    if errors:
        detail = "; ".join(f"{e['field']}: {e['error']}" for e in errors)
        raise InvalidSearchSpace(f"invalid {what}: {detail}", errors=errors)


def _from_mapping(cls: type, data: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """Keyword arguments for ``cls`` from a mapping; unknown and missing keys are named in the error."""
    if not isinstance(data, Mapping):
        raise InvalidSearchSpace(f"invalid {cls.__name__}: {prefix or 'value'} must be an object",
                                 errors=[{"field": prefix or cls.__name__, "error": "must be an object"}])
    names = [f.name for f in fields(cls)]
    errors = [{"field": f"{prefix}{key}", "error": "unknown field"} for key in data if key not in names]
    errors += [{"field": f"{prefix}{name}", "error": "missing field"} for name in names if name not in data]
    _raise_if(errors, cls.__name__)
    return {name: data[name] for name in names}


@dataclass(frozen=True, slots=True)
class StageSpec:
    """One stage: optional downsampling, then ``depth`` blocks of type ``op`` with ``width`` output channels.

    ``expansion`` only matters for ``mbconv`` (the space stores 1 for the other ops so equal networks hash equal).
    """

    op: str
    depth: int
    width: int
    kernel: int
    expansion: int = 1
    se: bool = False
    activation: str = "relu"
    downsample: str = "max"

    def __post_init__(self) -> None:
        errors: list[dict] = []
        _check(self.op in OP_NAMES, errors, "op", f"{self.op!r} is not one of {list(OP_NAMES)}")
        _check(_is_int(self.depth) and 1 <= self.depth <= 16, errors, "depth", "must be an integer in [1, 16]")
        _check(_is_int(self.width) and 1 <= self.width <= 4096, errors, "width", "must be an integer in [1, 4096]")
        _check(_is_int(self.kernel) and self.kernel % 2 == 1 and 1 <= self.kernel <= 15, errors, "kernel",
               "must be an odd integer in [1, 15]")
        _check(_is_int(self.expansion) and 1 <= self.expansion <= 16, errors, "expansion",
               "must be an integer in [1, 16]")
        _check(isinstance(self.se, bool), errors, "se", "must be true or false")
        _check(self.activation in ACTIVATION_NAMES, errors, "activation",
               f"{self.activation!r} is not one of {list(ACTIVATION_NAMES)}")
        _check(self.downsample in DOWNSAMPLE_NAMES, errors, "downsample",
               f"{self.downsample!r} is not one of {list(DOWNSAMPLE_NAMES)}")
        _raise_if(errors, "StageSpec")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, prefix: str = "") -> StageSpec:
        return cls(**_from_mapping(cls, data, prefix))


@dataclass(frozen=True, slots=True)
class ArchSpec:
    """A network: a stem conv of ``stem_width`` channels, the stages in order, global pooling, dropout, linear.

    ``resolution``: the side in pixels the network is trained and deployed at (images are resized to it); None means
    the dataset's stored side. It is part of the architecture because it sets the network's cost and the input
    clients must feed; it is left out of the JSON (and hash) when None, so older specs keep their hashes.
    """

    stem_width: int
    stages: tuple[StageSpec, ...]
    head_dropout: float = 0.0
    resolution: int | None = None

    def __post_init__(self) -> None:
        errors: list[dict] = []
        _check(_is_int(self.stem_width) and 1 <= self.stem_width <= 4096, errors, "stem_width",
               "must be an integer in [1, 4096]")
        _check(isinstance(self.stages, tuple) and len(self.stages) >= 1
               and all(isinstance(s, StageSpec) for s in self.stages), errors, "stages",
               "must be a non-empty tuple of StageSpec")
        _check(_is_number(self.head_dropout) and 0.0 <= self.head_dropout < 1.0, errors, "head_dropout",
               "must be a number in [0, 1)")
        _check(self.resolution is None or (_is_int(self.resolution) and 4 <= self.resolution <= 4096), errors,
               "resolution", "must be null or an integer in [4, 4096]")
        _raise_if(errors, "ArchSpec")

    def to_dict(self) -> dict[str, Any]:
        data = {"stem_width": self.stem_width, "stages": [s.to_dict() for s in self.stages],
                "head_dropout": float(self.head_dropout)}
        if self.resolution is not None:
            data["resolution"] = self.resolution
        return data

    def input_size(self, stored: tuple[int, int]) -> tuple[int, int]:
        """(height, width) the network takes, given the dataset's stored (height, width)."""
        return stored if self.resolution is None else (self.resolution, self.resolution)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ArchSpec:
        if isinstance(data, Mapping) and "resolution" not in data:
            data = {**data, "resolution": None}
        values = _from_mapping(cls, data, "")
        stages = values["stages"]
        if not isinstance(stages, (list, tuple)):
            raise InvalidSearchSpace("invalid ArchSpec: stages must be a list",
                                     errors=[{"field": "stages", "error": "must be a list"}])
        values["stages"] = tuple(StageSpec.from_dict(s, prefix=f"stages[{i}].") for i, s in enumerate(stages))
        return cls(**values)

    def hash(self) -> str:
        """sha256 hex of the canonical JSON (sorted keys, no spaces): equal architectures, equal hashes."""
        return _sha256(self.to_dict())


# Fields added after trials were first stored: a stored recipe without them gets their defaults.
_TRAIN_FIELDS_ADDED = ("ema", "vflip", "policy", "mix")


@dataclass(frozen=True, slots=True)
class TrainSpec:
    """How a candidate is trained (``nas_core.trainer`` documents the recipe each field shapes).

    - ``lr`` is the peak learning rate at the reference batch of 128 images; the trainer rescales it to the batch
      it uses. ``batch_size`` 0 means "auto": chosen from the training-split size.
    - ``augment`` in [0, 1] scales the random-crop padding (0 turns cropping off); ``hflip`` adds horizontal flips,
      ``vflip`` vertical flips and quarter turns (square images); ``policy`` adds TrivialAugment or RandAugment;
      ``mix`` blends image pairs (MixUp or CutMix) with their labels.
    - ``ema`` evaluates and returns an exponential moving average of the weights.

    >>> TrainSpec.from_dict({"lr": 0.003, "weight_decay": 0.0005, "label_smoothing": 0.0, "augment": 0.5,
    ...                      "hflip": False, "schedule": "onecycle", "optimizer": "adamw", "batch_size": 128}).ema
    True
    """

    lr: float = 3e-3
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    augment: float = 0.5
    hflip: bool = False
    schedule: str = "onecycle"
    optimizer: str = "adamw"
    batch_size: int = 0
    ema: bool = True
    vflip: bool = False
    policy: str = "none"
    mix: str = "none"

    def __post_init__(self) -> None:
        errors: list[dict] = []
        _check(_is_number(self.lr) and 0.0 < self.lr <= 10.0, errors, "lr", "must be a number in (0, 10]")
        _check(_is_number(self.weight_decay) and 0.0 <= self.weight_decay <= 1.0, errors, "weight_decay",
               "must be a number in [0, 1]")
        _check(_is_number(self.label_smoothing) and 0.0 <= self.label_smoothing < 1.0, errors, "label_smoothing",
               "must be a number in [0, 1)")
        _check(_is_number(self.augment) and 0.0 <= self.augment <= 1.0, errors, "augment",
               "must be a number in [0, 1]")
        _check(isinstance(self.hflip, bool), errors, "hflip", "must be true or false")
        _check(self.schedule in SCHEDULE_NAMES, errors, "schedule",
               f"{self.schedule!r} is not one of {list(SCHEDULE_NAMES)}")
        _check(self.optimizer in OPTIMIZER_NAMES, errors, "optimizer",
               f"{self.optimizer!r} is not one of {list(OPTIMIZER_NAMES)}")
        _check(_is_int(self.batch_size) and 0 <= self.batch_size <= 65536, errors, "batch_size",
               "must be 0 (auto) or an integer in [1, 65536]")
        _check(isinstance(self.ema, bool), errors, "ema", "must be true or false")
        _check(isinstance(self.vflip, bool), errors, "vflip", "must be true or false")
        _check(self.policy in POLICY_NAMES, errors, "policy", f"{self.policy!r} is not one of {list(POLICY_NAMES)}")
        _check(self.mix in MIX_NAMES, errors, "mix", f"{self.mix!r} is not one of {list(MIX_NAMES)}")
        _raise_if(errors, "TrainSpec")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("lr", "weight_decay", "label_smoothing", "augment"):
            data[name] = float(data[name])  # 1 and 1.0 must hash alike
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainSpec:
        """The spec for ``data``; fields added later (ema, vflip, policy, mix) may be missing and take defaults."""
        if isinstance(data, Mapping):
            defaults = {f.name: f.default for f in fields(cls) if f.name in _TRAIN_FIELDS_ADDED}
            data = {**defaults, **data}
        return cls(**_from_mapping(cls, data, ""))

    def hash(self) -> str:
        return _sha256(self.to_dict())


@dataclass(frozen=True, slots=True)
class Candidate:
    """What a trial trains: an architecture and its training recipe."""

    arch: ArchSpec
    train: TrainSpec

    def to_dict(self) -> dict[str, Any]:
        return {"arch": self.arch.to_dict(), "train": self.train.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Candidate:
        values = _from_mapping(cls, data, "")
        return cls(arch=ArchSpec.from_dict(values["arch"]), train=TrainSpec.from_dict(values["train"]))

    def hash(self) -> str:
        """sha256 hex of the canonical JSON of architecture and recipe together (duplicate trials share it)."""
        return _sha256(self.to_dict())
