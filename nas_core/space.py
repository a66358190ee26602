"""The block search space: flat labelled decisions ↔ :class:`~nas_core.spec.Candidate`, overridable with JSON.

Decisions (the labels strategies see, in :attr:`BlockSearchSpace.param_space`):

- ``num_stages``, ``stem_width``, ``head_dropout``, ``input_scale`` (the input side as a fraction of the dataset's
  stored side, never below 32 px or the stored side: :func:`resolution_for`);
- per stage k (1-based): ``stage{k}/op``, ``/depth``, ``/width``, ``/kernel``, ``/expansion``, ``/se``,
  ``/activation``, ``/downsample`` — active only when ``num_stages >= k`` (a :class:`~nas_core.params.Condition`);
- training, searched jointly: ``train/lr``, ``train/weight_decay``, ``train/label_smoothing``, ``train/augment``,
  ``train/hflip``, ``train/vflip``, ``train/policy``, ``train/mix``, ``train/schedule``, ``train/optimizer``,
  ``train/batch_size`` (0: chosen from the dataset size), ``train/ema``.

``stage{k}/expansion`` only shapes ``mbconv`` stages; :meth:`BlockSearchSpace.decode` stores 1 for other ops, so
equal networks get equal :meth:`~nas_core.spec.ArchSpec.hash` values.

Override grammar (a JSON object; :data:`OVERRIDE_GRAMMAR` is served with the space):

- keys: any decision label (``"stage2/kernel"``, ``"train/lr"``, ``"num_stages"`` — alias ``"stage_count"``), or a
  per-stage dimension name without prefix (``"kernel"``) meaning *every* stage; a ``stage{k}/…`` key wins over the
  plain one for its stage, whatever the order in the object;
- values: a scalar fixes the decision (``"se": false``); a non-empty list (or ``{"choices": [...]}``) sets the
  choices; ``{"low": a, "high": b}`` sets a range — on an integer or float dimension it replaces the range (floats
  keep their log scale unless ``"log"`` is given), on a grid (``width``, ``kernel``, ``stem_width``,
  ``expansion``) it keeps the grid values inside ``[a, b]``.

Every value is checked against hard limits (e.g. odd kernels ≤ 9, at most :data:`MAX_STAGES` stages); a bad
override raises :class:`~nas_core.errors.InvalidSearchSpace` whose ``errors`` name each offending field.

>>> space = default_search_space().with_overrides(
...     {"num_stages": [2, 3], "kernel": [3, 5], "width": {"low": 16, "high": 64}})
>>> space.param_space.params["stage2/width"].choices
(16, 24, 32, 48, 64)
>>> import random
>>> candidate = space.decode(space.param_space.sample(random.Random(0)))
>>> space.decode(space.encode(candidate)) == candidate
True
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from nas_core.errors import InvalidSearchSpace
from nas_core.params import Categorical, Condition, FloatParam, IntParam, Param, ParamSpace, Value
from nas_core.spec import (ACTIVATION_NAMES, DOWNSAMPLE_NAMES, MIX_NAMES, OP_NAMES, OPTIMIZER_NAMES, POLICY_NAMES,
                           SCHEDULE_NAMES, ArchSpec, Candidate, StageSpec, TrainSpec)

# block-2: input_scale, a cheaper default, the training options of 2026-12; block-3: the stem downsamples from 48 px;
# block-4: stage 1 may keep the stem's resolution, and a reference network does so at half the side
SEARCH_SPACE_VERSION = "block-4"
MAX_STAGES = 8
WIDTH_GRID = (16, 24, 32, 48, 64, 96, 128, 192, 256)
# The default space leaves out the most expensive corners (widths above 128, 7x7 kernels, 4+ blocks a stage, stages
# after the first that keep their input's resolution): on a CPU at 64 px they cost minutes per epoch for little
# accuracy. All stay reachable through overrides.
DEFAULT_WIDTHS = (16, 24, 32, 48, 64, 96, 128)
# Stage 1 may also keep the stem's resolution ("none"): with a halved input that costs about what a pooled stage 1 on
# the larger input does, and it keeps small objects a few pixels wider (measured on bench.budget's scenes; see
# reference_candidates).
DEFAULT_STAGE1_DOWNSAMPLE = ("max", "avg", "stride", "none")
MIN_SCALED_SIDE = 32  # input_scale never shrinks an image below this (or below its stored side)
DEFAULT_REASONING = (
    "The default space is sized so that a random candidate trains in seconds per epoch on a CPU at 64 px and any "
    "budget trains tens of candidates: every stage halves the resolution (a full-resolution stage multiplies the cost "
    "of all that follow) except that stage 1 may keep the stem's, stages hold 1-3 blocks of at most 128 channels with "
    "3x3 or 5x5 kernels, and the input side is searched (input_scale 0.5, 0.75 or 1 of the stored side, never below 32"
    " px; from 48 px up the stem convolution halves it, so a smaller input is always cheaper). Wider, deeper, 7x7 and "
    "full-resolution stages stay reachable by override. A search first trains three hand-designed reference networks "
    "that lie in the space, in order of preference (a plain 4-stage conv network at half side with its first stage "
    "at the stem's resolution, or pooled at three-quarter side where the space lacks that one; residual 32-64-128 "
    "at three-quarter side; an MBConv network at half side), so even a short budget starts from designs known to work "
    "(when no trial has learned, the final model trains the first of them within the noise of the best); they train "
    "without flips until a network that has learned (a quarter of the way from chance to 1) keeps "
    "its accuracy on mirrored validation images (the data is mirror-symmetric), and with flips from then on (with "
    "vertical flips and quarter turns once it keeps it upside down: orientation-free images). "
    "Candidates are also screened before training against the "
    "constraints and their predicted share of max_minutes.")
STAGE_COUNT_ALIAS = "stage_count"


@dataclass(frozen=True, slots=True)
class Dimension:
    """One knob: its hard limits (``check`` returns an error or None), its default domain, what it means."""

    name: str
    kind: str  # "int" | "float" | "str" | "bool": which override forms apply
    check: Callable[[Any], str | None]
    default: Param
    description: str
    grid: bool = False  # a categorical grid of numbers: {"low","high"} filters it


def _int_in(low: int, high: int, *, odd: bool = False) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            return f"must be an integer in [{low}, {high}]"
        if odd and value % 2 == 0:
            return "must be odd"
        return None
    return check


def _float_in(low: float, high: float, *, open_low: bool = False) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not ok or not (low < value if open_low else low <= value) or value > high:
            return f"must be a number in {'(' if open_low else '['}{low}, {high}]"
        return None
    return check


def _one_of(names: tuple[str, ...]) -> Callable[[Any], str | None]:
    return lambda value: None if isinstance(value, str) and value in names else f"must be one of {list(names)}"


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


GLOBAL_DIMENSIONS = (
    Dimension("num_stages", "int", _int_in(1, MAX_STAGES), IntParam(2, 5),
              "number of stages; stage k's decisions are active only when num_stages >= k"),
    Dimension("stem_width", "int", _int_in(4, 512), Categorical((16, 24, 32, 48)),
              "output channels of the 3x3 stem convolution", grid=True),
    Dimension("head_dropout", "float", _float_in(0.0, 0.9), FloatParam(0.0, 0.5),
              "dropout before the final linear layer"),
    Dimension("input_scale", "float", _float_in(0.1, 1.0, open_low=True), Categorical((0.5, 0.75, 1.0)),
              "input side as a fraction of the dataset's stored side (images are resized on the device; never "
              "below 32 px or the stored side): smaller inputs make every layer cheaper", grid=True),
)
STAGE_DIMENSIONS = (
    Dimension("op", "str", _one_of(OP_NAMES), Categorical(OP_NAMES),
              "block type: plain conv, residual (ResNet basic), depthwise-separable, MBConv (inverted bottleneck)"),
    Dimension("depth", "int", _int_in(1, 8), IntParam(1, 3), "blocks in the stage"),
    Dimension("width", "int", _int_in(4, 1024), Categorical(DEFAULT_WIDTHS), "output channels (filters) of the stage",
              grid=True),
    Dimension("kernel", "int", _int_in(1, 9, odd=True), Categorical((3, 5)), "spatial kernel size", grid=True),
    Dimension("expansion", "int", _int_in(1, 8), Categorical((1, 3, 4)),
              "MBConv expansion ratio (ignored by the other block types)", grid=True),
    Dimension("se", "bool", _boolean, Categorical((False, True)), "squeeze-and-excitation in every block"),
    Dimension("activation", "str", _one_of(ACTIVATION_NAMES), Categorical(ACTIVATION_NAMES),
              "activation: relu, leaky_relu (slope 0.1), swish (SiLU)"),
    Dimension("downsample", "str", _one_of(DOWNSAMPLE_NAMES), Categorical(("max", "avg", "stride")),
              "halve the resolution at the stage start: max-pool, avg-pool, strided first block, or none (in the "
              "default for stage 1 only: a later stage at full resolution multiplies the cost of all that follow; "
              "skipped automatically below 2 px)"),
)
TRAIN_DIMENSIONS = (
    Dimension("train/lr", "float", _float_in(0.0, 10.0, open_low=True), FloatParam(1e-4, 1e-2, log=True),
              "peak learning rate at batch size 128, rescaled to the batch used (log scale)"),
    Dimension("train/weight_decay", "float", _float_in(0.0, 1.0), FloatParam(1e-5, 1e-1, log=True),
              "weight decay (decoupled for adamw)"),
    Dimension("train/label_smoothing", "float", _float_in(0.0, 0.5), FloatParam(0.0, 0.2), "label smoothing"),
    Dimension("train/augment", "float", _float_in(0.0, 1.0), FloatParam(0.0, 1.0),
              "augmentation strength: random-crop padding is round(augment * size / 8) px"),
    Dimension("train/hflip", "bool", _boolean, Categorical((False, True)),
              "random horizontal flips (fix to false for digits or text)"),
    Dimension("train/vflip", "bool", _boolean, Categorical((False, True)),
              "random vertical flips and quarter turns (square images) for orientation-free images such as "
              "micrographs or satellite tiles (fix to false for digits or text)"),
    Dimension("train/policy", "str", _one_of(POLICY_NAMES), Categorical(POLICY_NAMES),
              "augmentation policy on top of crops and flips: none, trivial (TrivialAugmentWide), randaugment"),
    Dimension("train/mix", "str", _one_of(MIX_NAMES), Categorical(MIX_NAMES),
              "blend image pairs and their labels: none, mixup, cutmix"),
    Dimension("train/schedule", "str", _one_of(SCHEDULE_NAMES), Categorical(SCHEDULE_NAMES),
              "learning-rate schedule over the whole run"),
    Dimension("train/optimizer", "str", _one_of(OPTIMIZER_NAMES), Categorical(("adamw",)),
              "optimizer: adamw, or sgd (Nesterov momentum 0.9; give it a larger train/lr)"),
    Dimension("train/batch_size", "int",
              lambda value: (None if (type(value) is int and value == 0) or _int_in(8, 1024)(value) is None
                             else "must be 0 (auto) or an integer in [8, 1024]"),
              Categorical((0,)),
              "mini-batch size; 0 (auto) picks a power of two in [8, 128] giving ~25 steps per epoch. The "
              "learning rate is rescaled from batch 128 (sqrt for adamw, linear for sgd)", grid=True),
    Dimension("train/ema", "bool", _boolean, Categorical((True,)),
              "evaluate and keep an exponential moving average of the weights"),
)
_GLOBAL = {d.name: d for d in GLOBAL_DIMENSIONS}
_STAGE = {d.name: d for d in STAGE_DIMENSIONS}
_TRAIN = {d.name: d for d in TRAIN_DIMENSIONS}
_STAGE_LABEL = re.compile(r"^stage(\d+)/([a-z_]+)$")

OVERRIDE_GRAMMAR = {
    "keys": ("a decision label ('stage2/kernel', 'train/lr', 'num_stages' or its alias 'stage_count'), or a "
             "per-stage dimension without prefix ('kernel') for every stage; 'stage{k}/...' wins over the plain "
             "key for stage k"),
    "values": {
        "scalar": "fixes the decision: {\"se\": false}",
        "list": "the allowed choices: {\"kernel\": [3, 5]} (same as {\"kernel\": {\"choices\": [3, 5]}})",
        "range": ("{\"low\": a, \"high\": b}: replaces an int/float range ({\"train/lr\": {\"low\": 1e-3, "
                  "\"high\": 1e-2, \"log\": true}}); on a grid dimension keeps the grid values in [a, b]"),
    },
    "errors": "an invalid override is rejected as a whole; each error names its field",
    "example": {"stage_count": [2, 3], "kernel": [3, 5], "width": {"low": 16, "high": 64},
                "train/lr": {"low": 1e-3, "high": 1e-2}},
}


def _stage_label(index: int, name: str) -> str:
    return f"stage{index}/{name}"


def _placeholder(param: Param) -> Value:
    """Deterministic value for a decision that does not shape the candidate (inactive stage, unused expansion)."""
    return param.choices[0] if isinstance(param, Categorical) else param.low


def _parse(dimension: Dimension, field: str, raw: Any, current: Param, errors: list[dict]) -> Param | None:
    """The new domain for ``field`` from override value ``raw``; appends to ``errors`` and returns None if bad."""

    def fail(message: str) -> None:
        errors.append({"field": field, "error": message})

    def checked_choices(values: list[Any]) -> Param | None:
        if not values:
            return fail("needs at least one choice")
        bad = [(v, dimension.check(v)) for v in values]
        bad = [f"{v!r} {problem}" for v, problem in bad if problem]
        if bad:
            return fail("; ".join(bad))
        # floats given as ints stay numbers; duplicates are an error, not silently merged
        if len({repr(v) for v in values}) != len(values):
            return fail(f"duplicate choices in {values}")
        return Categorical(tuple(values))

    if isinstance(raw, list):
        return checked_choices(raw)
    if not isinstance(raw, dict):
        return checked_choices([raw])
    if set(raw) == {"choices"}:
        if not isinstance(raw["choices"], list):
            return fail("'choices' must be a list")
        return checked_choices(raw["choices"])
    allowed = {"low", "high"} | ({"log"} if dimension.kind == "float" else set()) | (
        {"step"} if dimension.kind == "int" and not dimension.grid else set())
    if not {"low", "high"} <= set(raw) or not set(raw) <= allowed:
        return fail(f"an object override needs 'low' and 'high' (allowed keys: {sorted(allowed)}) or only 'choices'")
    if dimension.kind in ("str", "bool"):
        return fail("takes a value or a list of choices, not a range")
    low, high = raw["low"], raw["high"]
    for bound, value in (("low", low), ("high", high)):
        if (problem := dimension.check(value)) is not None:
            return fail(f"{bound} {value!r} {problem}")
    if low > high:
        return fail(f"low {low} is greater than high {high}")
    if dimension.grid:
        pool = current.choices if isinstance(current, Categorical) else dimension.default.choices
        kept = tuple(v for v in pool if low <= v <= high)
        if not kept:
            return fail(f"no value of the grid {list(pool)} lies in [{low}, {high}]; list the values instead")
        return Categorical(kept)
    if dimension.kind == "int":
        step = raw.get("step", 1)
        if not isinstance(step, int) or isinstance(step, bool) or step < 1:
            return fail("step must be a positive integer")
        return IntParam(low, high, step)
    log = raw.get("log", current.log if isinstance(current, FloatParam) else False)
    if not isinstance(log, bool):
        return fail("log must be true or false")
    if log and low <= 0:
        return fail("a log-scale range needs low > 0")
    return FloatParam(float(low), float(high), log=log)


@dataclass(frozen=True, slots=True)
class BlockSearchSpace:
    """An immutable search space; ``param_space`` holds the flat decisions, ``overrides`` what narrowed it."""

    param_space: ParamSpace
    overrides: tuple[tuple[str, Any], ...] = ()

    @property
    def max_stages(self) -> int:
        return max(_stage_counts(self.param_space.params["num_stages"]))

    def with_overrides(self, overrides: Mapping[str, Any]) -> BlockSearchSpace:
        """A new space with ``overrides`` applied (see the module docstring for the grammar)."""
        if not isinstance(overrides, Mapping):
            raise InvalidSearchSpace("search_space overrides must be a JSON object",
                                     errors=[{"field": "search_space", "error": "must be an object"}])
        errors: list[dict] = []
        domains: dict[str, Param] = dict(self.param_space.params)
        keyed = {("num_stages" if key == STAGE_COUNT_ALIAS else key): value for key, value in overrides.items()}
        if STAGE_COUNT_ALIAS in overrides and "num_stages" in overrides:
            errors.append({"field": STAGE_COUNT_ALIAS, "error": "give either 'stage_count' or 'num_stages'"})

        if "num_stages" in keyed:
            field = STAGE_COUNT_ALIAS if STAGE_COUNT_ALIAS in overrides else "num_stages"
            parsed = _parse(_GLOBAL["num_stages"], field, keyed["num_stages"], domains["num_stages"], errors)
            if parsed is not None:
                domains["num_stages"] = parsed
        max_stages = max(_stage_counts(domains["num_stages"]))
        old_max = self.max_stages
        for index in range(old_max + 1, max_stages + 1):  # new stages copy the last existing stage's domains
            for dim in STAGE_DIMENSIONS:
                domains[_stage_label(index, dim.name)] = domains[_stage_label(old_max, dim.name)]
        for index in range(max_stages + 1, old_max + 1):
            for dim in STAGE_DIMENSIONS:
                del domains[_stage_label(index, dim.name)]

        # plain per-stage keys first, so a stage{k}/ key overrides them for its stage
        ordered = sorted(keyed.items(), key=lambda item: _STAGE_LABEL.match(item[0]) is not None)
        for key, raw in ordered:
            if key == "num_stages":
                continue
            if key in _STAGE:
                for index in range(1, max_stages + 1):
                    label = _stage_label(index, key)
                    parsed = _parse(_STAGE[key], key, raw, domains[label], errors)
                    if parsed is None:
                        break
                    domains[label] = parsed
            elif (match := _STAGE_LABEL.match(key)) and match.group(2) in _STAGE:
                index = int(match.group(1))
                if not 1 <= index <= max_stages:
                    errors.append({"field": key, "error": f"no such stage: num_stages is at most {max_stages}"})
                    continue
                parsed = _parse(_STAGE[match.group(2)], key, raw, domains[key], errors)
                if parsed is not None:
                    domains[key] = parsed
            elif key in _GLOBAL or key in _TRAIN:
                dimension = _GLOBAL.get(key) or _TRAIN[key]
                parsed = _parse(dimension, key, raw, domains[key], errors)
                if parsed is not None:
                    domains[key] = parsed
            else:
                errors.append({"field": key, "error": "unknown search-space dimension"})
        if errors:
            detail = "; ".join(f"{e['field']}: {e['error']}" for e in errors)
            raise InvalidSearchSpace(f"invalid search-space override: {detail}", errors=errors)
        return BlockSearchSpace(_with_conditions(domains), self.overrides + tuple(overrides.items()))

    def decode(self, decisions: Mapping[str, Any], *, input_side: int | None = None) -> Candidate:
        """Validate a full set of decisions and turn it into a :class:`Candidate`.

        ``input_side``: the dataset's stored side, which ``input_scale`` scales into ``ArchSpec.resolution`` (the
        side the candidate trains at, stated in its JSON); without it the resolution is left to the dataset (None).
        """
        d = self.param_space.validate(decisions)
        stages = []
        for index in range(1, d["num_stages"] + 1):
            value = {dim.name: d[_stage_label(index, dim.name)] for dim in STAGE_DIMENSIONS}
            if value["op"] != "mbconv":
                value["expansion"] = 1
            stages.append(StageSpec(**value))
        resolution = resolution_for(d["input_scale"], input_side) if input_side is not None else None
        arch = ArchSpec(stem_width=d["stem_width"], stages=tuple(stages), head_dropout=float(d["head_dropout"]),
                        resolution=resolution)
        train = TrainSpec(**{dim.name.removeprefix("train/"): d[dim.name] for dim in TRAIN_DIMENSIONS})
        return Candidate(arch=arch, train=train)

    def encode(self, candidate: Candidate, *, input_side: int | None = None) -> dict[str, Value]:
        """Full decisions for ``candidate`` (inactive ones get a fixed placeholder); raises if it is outside."""
        arch, train = candidate.arch, candidate.train
        params = self.param_space.params
        decisions: dict[str, Value] = {label: _placeholder(param) for label, param in params.items()}
        decisions.update(num_stages=len(arch.stages), stem_width=arch.stem_width, head_dropout=arch.head_dropout)
        scales = params["input_scale"].choices if isinstance(params["input_scale"], Categorical) else (1.0,)
        wanted = arch.resolution if arch.resolution is not None else input_side
        matching = [scale for scale in scales if input_side is None or resolution_for(scale, input_side) == wanted]
        decisions["input_scale"] = max(matching) if matching else max(scales)
        errors: list[dict] = []
        if len(arch.stages) > self.max_stages:
            errors.append({"field": "num_stages", "error": f"{len(arch.stages)} stages > {self.max_stages}"})
        for index, stage in enumerate(arch.stages[: self.max_stages], start=1):
            for dim in STAGE_DIMENSIONS:
                if dim.name == "expansion" and stage.op != "mbconv":
                    continue
                decisions[_stage_label(index, dim.name)] = getattr(stage, dim.name)
        for dim in TRAIN_DIMENSIONS:
            decisions[dim.name] = getattr(train, dim.name.removeprefix("train/"))
        for label in self.param_space.active_labels(decisions):
            if not params[label].contains(decisions[label]):
                errors.append({"field": label, "error": f"{decisions[label]!r} is outside {params[label].to_dict()}"})
        if errors:
            raise InvalidSearchSpace("candidate is outside the search space", errors=errors)
        return decisions

    def reference_points(self, *, mirror_symmetric: bool = False,
                         orientation_free: bool = False) -> list[dict[str, Value]]:
        """The :func:`reference_candidates` that lie in this space, as full decisions (overrides may exclude some).

        ``mirror_symmetric``: the data set was found mirror-symmetric (:mod:`nas_core.mirror`), so the references'
        recipe adds horizontal flips where the space allows them; ``orientation_free``: its images were found
        orientation-free, so vertical flips and quarter turns. The list keeps its order and length either way.
        """
        flip = mirror_symmetric and self.param_space.params["train/hflip"].contains(True)
        turn = orientation_free and self.param_space.params["train/vflip"].contains(True)
        points = []
        stand_ins = reference_stand_ins()
        for index, preferred in enumerate(reference_candidates()):
            decisions, scale = self._encoded(preferred)
            if decisions is None and index in stand_ins:
                decisions, scale = self._encoded(stand_ins[index])
            if decisions is None:
                continue
            decisions["input_scale"] = scale
            if flip:
                decisions["train/hflip"] = True
            if turn:
                decisions["train/vflip"] = True
            points.append(decisions)
        return points

    def _encoded(self, reference: tuple[Candidate, float]) -> tuple[dict[str, Value] | None, float]:
        """A reference ``(candidate, input_scale)`` as decisions of this space, or None where it does not lie in it."""
        candidate, scale = reference
        try:
            decisions = self.encode(candidate)
        except InvalidSearchSpace:
            return None, scale
        return (decisions if self.param_space.params["input_scale"].contains(scale) else None), scale

    def reference_rank(self, decisions: Mapping[str, Any]) -> int | None:
        """The place of the network ``decisions`` train among :meth:`reference_points` (with or without the flips
        those may add), the :func:`reference_candidates` order of preference; None for any other network.

        >>> space = default_search_space()
        >>> [space.reference_rank(point) for point in space.reference_points(mirror_symmetric=True)]
        [0, 1, 2]
        >>> space.reference_rank({**space.reference_points()[1], "train/lr": 0.01}) is None
        True
        """
        def key(point: Mapping[str, Any]) -> str:
            return self.param_space.key({**point, "train/hflip": False, "train/vflip": False})

        try:
            wanted = key(decisions)
        except KeyError:  # not a whole point of this space
            return None
        return next((rank for rank, point in enumerate(self.reference_points()) if key(point) == wanted), None)

    def effective_decisions(self, decisions: Mapping[str, Any]) -> dict[str, Value]:
        """The decisions that shape the candidate: active labels, minus expansion of non-MBConv stages."""
        effective = {label: decisions[label] for label in self.param_space.active_labels(decisions)}
        for index in range(1, self.max_stages + 1):
            if effective.get(_stage_label(index, "op"), "mbconv") != "mbconv":
                effective.pop(_stage_label(index, "expansion"), None)
        return effective

    def to_dict(self) -> dict[str, Any]:
        """The JSON served at ``GET /v1/search-space``: version, every dimension and decision, how to override."""
        stage_range = range(1, self.max_stages + 1)
        dimensions = {}
        for dim in (*GLOBAL_DIMENSIONS, *STAGE_DIMENSIONS, *TRAIN_DIMENSIONS):
            per_stage = dim.name in _STAGE
            labels = [_stage_label(i, dim.name) for i in stage_range] if per_stage else [dim.name]
            dimensions[dim.name] = {
                "description": dim.description,
                "type": dim.kind,
                "per_stage": per_stage,
                "grid": dim.grid,
                "decisions": labels,
                "domain": self.param_space.params[labels[0]].to_dict(),
            }
        return {
            "version": SEARCH_SPACE_VERSION,
            "max_stages": self.max_stages,
            "dimensions": dimensions,
            "decisions": self.param_space.to_dict(),
            "override": OVERRIDE_GRAMMAR,
            "overrides_applied": dict(self.overrides),
            "default_reasoning": DEFAULT_REASONING,
        }


_REFERENCE_RECIPE = TrainSpec(lr=3e-3, weight_decay=0.05, label_smoothing=0.1, augment=0.5, hflip=False,
                              schedule="cosine", optimizer="adamw", batch_size=0)
_PLAIN = ArchSpec(stem_width=24, head_dropout=0.1, stages=(
    StageSpec("conv", 2, 32, 3), StageSpec("conv", 2, 64, 3), StageSpec("conv", 2, 128, 3),
    StageSpec("conv", 2, 128, 3)))


def reference_candidates() -> list[tuple[Candidate, float]]:
    """Hand-designed starting points, each with its ``input_scale``: a search tries them first (when they fit its
    space and budget), so even a search that can afford few trials starts from networks and a recipe known to work
    on small image datasets, and the strategies learn from them like from any trial.

    In order of preference (:meth:`BlockSearchSpace.reference_rank`: a search whose trials have all stayed near
    chance hands the first of them within the noise of the leader to its final model): a 4-stage plain network of
    two 3×3 conv-BN-ReLU per stage (32-64-128-128, max-pooling), the design a practitioner writes first, at half the
    side with its first stage at the stem's resolution; a 3-stage conv/residual network (32-64-128 channels) at
    three quarters of the input side; an MBConv network with squeeze-excitation at half the side. All share a safe
    recipe (AdamW with decoupled weight decay 0.05, cosine schedule, label smoothing 0.1, crops, weight averaging,
    no flips: orientation may matter). A space that lacks the first (no full-resolution first stage, or no half
    side) trains the plain network pooled at three quarters of the side in its place (:func:`reference_stand_ins`).

    The order is measured, not assumed: each network trained from scratch as a final model (train+val, 150 s on one
    CPU core) on ``bench.budget``'s 96 px colour ``scenes`` (seeds 0, 1, 2; 480 held-back images each) scored: the
    plain network at half side 0.858, 0.835, 0.854; the residual network 0.760, 0.790, 0.781; the pooled plain
    network 0.792 (seed 2); MBConv 0.748 and 0.754 (seeds 0 and 2). On ``photos-small`` (128 px stored, flips) the
    plain network scored 0.850 and 0.808, the residual one 0.775 and 0.867. The residual network at the full side
    (a reference until ``block-4``) scored 0.68 in 90 s.

    The pooled plain network was a reference of its own, third, until its trials kept winning searches they should
    not have: it learns faster than the plain network at half side, so after a dozen epochs it led (on ``scenes``
    seed 0 0.39 balanced accuracy against 0.27, beyond the noise of the validation split) and became the final
    model, which then ended below what the plain network makes of the same minutes: as the service's final model
    (420 s on one core, the side raised and TrivialAugment added), 0.867 against 0.912 on ``scenes`` seed 0's held-back
    images (900 s at 96 px: 0.896 against 0.919); on ``photos-small`` seed 1 (flips, raised to 128 px) 0.892 in both.
    """
    residual = ArchSpec(stem_width=24, head_dropout=0.1, stages=(
        StageSpec("conv", 1, 32, 3), StageSpec("residual", 1, 64, 3), StageSpec("residual", 1, 128, 3)))
    plain_wide = dataclasses.replace(_PLAIN, stages=(dataclasses.replace(_PLAIN.stages[0], downsample="none"),
                                                     *_PLAIN.stages[1:]))
    mbconv = ArchSpec(stem_width=16, head_dropout=0.2, stages=(
        StageSpec("mbconv", 2, 24, 3, expansion=3, se=True, activation="swish", downsample="stride"),
        StageSpec("mbconv", 2, 48, 3, expansion=3, se=True, activation="swish"),
        StageSpec("mbconv", 2, 96, 5, expansion=3, se=True, activation="swish")))
    return [(Candidate(plain_wide, _REFERENCE_RECIPE), 0.5), (Candidate(residual, _REFERENCE_RECIPE), 0.75),
            (Candidate(mbconv, dataclasses.replace(_REFERENCE_RECIPE, lr=4e-3)), 0.5)]


def reference_stand_ins() -> dict[int, tuple[Candidate, float]]:
    """What takes the place of a :func:`reference_candidates` entry (by its index) in a space it does not lie in:
    the plain network pooled at three quarters of the side for the one at half the side with a full-resolution
    first stage, which needs ``stage1/downsample`` "none" and ``input_scale`` 0.5 (a space narrowed to pooling and
    strides, or to larger inputs, lacks it)."""
    return {0: (Candidate(_PLAIN, _REFERENCE_RECIPE), 0.75)}


def resolution_for(scale: float, stored_side: int) -> int:
    """The input side for ``input_scale`` on a dataset stored at ``stored_side`` px.

    >>> resolution_for(0.5, 128), resolution_for(0.5, 28), resolution_for(0.75, 48)
    (64, 28, 36)
    """
    side = round(stored_side * scale)
    return max(side, min(stored_side, MIN_SCALED_SIDE))


def _stage_counts(param: Param) -> list[int]:
    if isinstance(param, Categorical):
        return [int(c) for c in param.choices]
    return list(range(param.low, param.high + 1, param.step))


def _with_conditions(domains: Mapping[str, Param]) -> ParamSpace:
    """Order labels (globals, stages, training) and make stage k conditional on ``num_stages >= k`` where needed."""
    counts = _stage_counts(domains["num_stages"])
    always = min(counts)
    params: dict[str, Param] = {d.name: domains[d.name] for d in GLOBAL_DIMENSIONS}
    for index in range(1, max(counts) + 1):
        condition = None if index <= always else Condition("num_stages", index)
        for dim in STAGE_DIMENSIONS:
            label = _stage_label(index, dim.name)
            params[label] = dataclasses.replace(domains[label], condition=condition)
    params.update({d.name: domains[d.name] for d in TRAIN_DIMENSIONS})
    return ParamSpace(params)


def default_search_space() -> BlockSearchSpace:
    """The default block space: 2–5 stages of conv/residual/dwsep/MBConv blocks plus the training recipe."""
    domains: dict[str, Param] = {d.name: d.default for d in (*GLOBAL_DIMENSIONS, *TRAIN_DIMENSIONS)}
    for index in range(1, max(_stage_counts(_GLOBAL["num_stages"].default)) + 1):
        for dim in STAGE_DIMENSIONS:
            domains[_stage_label(index, dim.name)] = dim.default
    domains["stage1/downsample"] = Categorical(DEFAULT_STAGE1_DOWNSAMPLE)
    return BlockSearchSpace(_with_conditions(domains))
