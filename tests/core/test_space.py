"""Block search space: decisions ↔ candidates, JSON round trips, stable hashes, override grammar."""

import doctest
import hashlib
import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nas_core import space as space_module
from nas_core.errors import InvalidSearchSpace
from nas_core.params import Categorical, Condition, FloatParam, IntParam
from nas_core.space import DEFAULT_WIDTHS, SEARCH_SPACE_VERSION, default_search_space, resolution_for
from nas_core.spec import ArchSpec, Candidate, StageSpec, TrainSpec

SPACE = default_search_space()
NARROWED = SPACE.with_overrides({"stage_count": [2, 3], "kernel": [3, 5], "width": {"low": 16, "high": 64},
                                 "train/lr": {"low": 1e-3, "high": 1e-2}})


def test_default_space_covers_the_documented_dimensions():
    params = SPACE.param_space.params
    assert params["num_stages"] == IntParam(2, 5)
    assert params["stage1/width"].choices == DEFAULT_WIDTHS
    assert set(params["stage5/op"].choices) == {"conv", "residual", "dwsep", "mbconv"}
    assert params["stage4/kernel"].choices == (3, 5)
    assert params["stage4/expansion"].choices == (1, 3, 4)
    assert params["stage2/downsample"].choices == ("max", "avg", "stride")
    assert params["stage1/downsample"].choices == ("max", "avg", "stride", "none")
    assert params["stage2/activation"].choices == ("relu", "leaky_relu", "swish")
    assert params["stage3/depth"] == IntParam(1, 3, condition=Condition("num_stages", 3))
    assert params["input_scale"].choices == (0.5, 0.75, 1.0)
    assert params["stage2/depth"].condition is None  # at least two stages always exist
    assert params["train/lr"].log and params["train/lr"].low < params["train/lr"].high
    assert "stage6/op" not in params


def test_to_dict_is_json_and_documents_overrides():
    served = json.loads(json.dumps(SPACE.to_dict()))
    assert served["version"] == SEARCH_SPACE_VERSION
    assert served["dimensions"]["kernel"]["decisions"] == [f"stage{k}/kernel" for k in range(1, 6)]
    assert served["dimensions"]["width"]["domain"]["choices"] == list(DEFAULT_WIDTHS)
    assert served["decisions"]["stage5/op"]["condition"] == {"label": "num_stages", "at_least": 5}
    assert {"keys", "values", "example"} <= set(served["override"])
    # the documented example is itself a valid override
    SPACE.with_overrides(served["override"]["example"])


def test_brief_example_override_narrows_every_stage():
    params = NARROWED.param_space.params
    assert params["num_stages"] == Categorical((2, 3))
    assert "stage4/op" not in params
    assert params["stage3/kernel"] == Categorical((3, 5), condition=Condition("num_stages", 3))
    assert params["stage1/width"].choices == (16, 24, 32, 48, 64)
    assert params["train/lr"] == FloatParam(1e-3, 1e-2, log=True)  # keeps the log scale
    assert NARROWED.to_dict()["overrides_applied"]["kernel"] == [3, 5]


def test_stage_specific_key_wins_over_plain_key_in_any_order():
    space = SPACE.with_overrides({"stage2/kernel": 7, "kernel": [3]})
    assert space.param_space.params["stage2/kernel"].choices == (7,)
    assert space.param_space.params["stage1/kernel"].choices == (3,)


def test_more_stages_adds_conditional_stage_decisions():
    space = SPACE.with_overrides({"num_stages": {"low": 1, "high": 8}, "se": False})
    params = space.param_space.params
    assert params["stage8/se"] == Categorical((False,), condition=Condition("num_stages", 8))
    assert params["stage2/op"].condition == Condition("num_stages", 2)
    assert space.max_stages == 8


@pytest.mark.parametrize(("override", "field", "fragment"), [
    ({"kernel": [4]}, "kernel", "odd"),
    ({"kernel": [3, 3]}, "kernel", "duplicate"),
    ({"stage9/kernel": 3}, "stage9/kernel", "no such stage"),
    ({"stage5/kernel": 3, "num_stages": [2, 3]}, "stage5/kernel", "no such stage"),
    ({"width": {"low": 300, "high": 400}}, "width", "grid"),
    ({"width": {"low": 64, "high": 16}}, "width", "greater"),
    ({"depth": {"low": 1}}, "depth", "'low' and 'high'"),
    ({"se": {"low": 0, "high": 1}}, "se", "not a range"),
    ({"op": ["conv", "transformer"]}, "op", "'transformer'"),
    ({"stage_count": [0, 2]}, "stage_count", "[1, 8]"),
    ({"train/lr": {"low": 0, "high": 0.1}}, "train/lr", "low 0"),
    ({"train/lr": []}, "train/lr", "at least one"),
    ({"train/schedule": "linear"}, "train/schedule", "one of"),
    ({"train/batch_size": 3.5}, "train/batch_size", "integer"),
    ({"learning_rate": 0.1}, "learning_rate", "unknown"),
    ({"activation": {"choices": "relu"}}, "activation", "must be a list"),
])
def test_invalid_overrides_name_the_field(override, field, fragment):
    with pytest.raises(InvalidSearchSpace) as caught:
        SPACE.with_overrides(override)
    assert [e["field"] for e in caught.value.errors] == [field]
    assert fragment in caught.value.errors[0]["error"]
    assert field in str(caught.value)


def test_every_bad_field_is_reported_at_once():
    with pytest.raises(InvalidSearchSpace) as caught:
        SPACE.with_overrides({"kernel": [2], "foo": 1, "train/augment": 2.0})
    assert {e["field"] for e in caught.value.errors} == {"kernel", "foo", "train/augment"}


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), narrowed=st.booleans())
def test_decode_encode_round_trip(seed, narrowed):
    space = NARROWED if narrowed else SPACE
    decisions = space.param_space.sample(random.Random(seed))
    candidate = space.decode(decisions, input_side=128)
    encoded = space.encode(candidate, input_side=128)
    assert space.effective_decisions(encoded) == space.effective_decisions(decisions)
    assert space.decode(encoded, input_side=128) == candidate
    assert len(candidate.arch.stages) == decisions["num_stages"]
    # JSON round trip of the spec keeps equality and hash
    again = Candidate.from_dict(json.loads(json.dumps(candidate.to_dict())))
    assert again == candidate and again.hash() == candidate.hash()
    assert ArchSpec.from_dict(json.loads(json.dumps(candidate.arch.to_dict()))).hash() == candidate.arch.hash()


def test_unused_expansion_does_not_change_the_architecture():
    decisions = SPACE.param_space.sample(random.Random(3))
    decisions.update({"stage1/op": "conv", "stage1/expansion": 1})
    other = dict(decisions, **{"stage1/expansion": 4})
    assert SPACE.decode(decisions).arch.hash() == SPACE.decode(other).arch.hash()
    mbconv = dict(other, **{"stage1/op": "mbconv"})
    assert SPACE.decode(mbconv).arch.stages[0].expansion == 4


def test_inactive_stages_do_not_change_the_architecture():
    decisions = SPACE.param_space.sample(random.Random(5))
    decisions.update({"num_stages": 2, "stage5/kernel": 3})
    other = dict(decisions, **{"stage5/kernel": 5})
    assert SPACE.decode(decisions) == SPACE.decode(other)


def test_decode_rejects_bad_decisions_by_label():
    decisions = SPACE.param_space.sample(random.Random(1))
    decisions["stage1/kernel"] = 4
    del decisions["train/lr"]
    with pytest.raises(InvalidSearchSpace) as caught:
        SPACE.decode(decisions)
    assert {e["field"] for e in caught.value.errors} == {"stage1/kernel", "train/lr"}


def test_encode_rejects_candidates_outside_the_space():
    candidate = NARROWED.decode(NARROWED.param_space.sample(random.Random(2)))
    wide = Candidate(ArchSpec(16, (StageSpec("conv", 1, 512, 3),) * 3), candidate.train)
    with pytest.raises(InvalidSearchSpace) as caught:
        NARROWED.encode(wide)
    assert {e["field"] for e in caught.value.errors} == {"stage1/width", "stage2/width", "stage3/width"}


def test_hash_is_sha256_of_canonical_json_and_ignores_key_order():
    arch = ArchSpec(24, (StageSpec("mbconv", 2, 32, 5, expansion=6, se=True, activation="swish"),
                         StageSpec("residual", 1, 64, 3, downsample="stride")), head_dropout=0.2)
    canonical = json.dumps(arch.to_dict(), sort_keys=True, separators=(",", ":"))
    assert arch.hash() == hashlib.sha256(canonical.encode()).hexdigest()
    shuffled = dict(reversed(list(arch.to_dict().items())))
    assert ArchSpec.from_dict(shuffled).hash() == arch.hash()
    assert ArchSpec(24, arch.stages, head_dropout=0.3).hash() != arch.hash()
    # pinned: a change here silently breaks duplicate detection against stored trials
    assert arch.hash() == "6a223909b9915a42573ab6cf770e1d84ce8a9fa637c02202d19ea38b31342b9f"


def test_spec_from_dict_names_unknown_missing_and_invalid_fields():
    data = ArchSpec(16, (StageSpec("conv", 1, 32, 3),)).to_dict()
    data["stages"][0]["kernal"] = 3
    del data["stages"][0]["kernel"]
    with pytest.raises(InvalidSearchSpace) as caught:
        ArchSpec.from_dict(data)
    assert {e["field"] for e in caught.value.errors} == {"stages[0].kernal", "stages[0].kernel"}
    with pytest.raises(InvalidSearchSpace, match="schedule"):
        TrainSpec(schedule="step")
    with pytest.raises(InvalidSearchSpace, match="op"):
        StageSpec("attention", 1, 32, 3)


def test_input_scale_sets_the_resolution_from_the_stored_side():
    decisions = SPACE.param_space.sample(random.Random(4))
    half = dict(decisions, input_scale=0.5)
    assert SPACE.decode(half, input_side=128).arch.resolution == 64
    assert SPACE.decode(half, input_side=28).arch.resolution == 28  # never below 32 px: the stored side
    assert SPACE.decode(half).arch.resolution is None  # no dataset: the stored side, whatever it is
    assert SPACE.decode(dict(decisions, input_scale=1.0), input_side=128).arch.resolution == 128
    assert resolution_for(0.75, 96) == 72
    candidate = SPACE.decode(half, input_side=128)
    assert SPACE.decode(SPACE.encode(candidate, input_side=128), input_side=128) == candidate
    # the resolution is part of the architecture's JSON and hash only when it differs from the stored side
    assert ArchSpec.from_dict(candidate.arch.to_dict()) == candidate.arch
    assert "resolution" not in SPACE.decode(half).arch.to_dict()


def test_training_dimensions_default_to_the_recipe_the_trainer_documents():
    params = SPACE.param_space.params
    assert params["train/batch_size"].choices == (0,)  # auto: chosen from the dataset size
    assert params["train/ema"].choices == (True,)
    assert params["train/vflip"].choices == (False, True)
    assert params["train/policy"].choices == ("none", "trivial", "randaugment")
    assert params["train/mix"].choices == ("none", "mixup", "cutmix")
    space = SPACE.with_overrides({"train/batch_size": [0, 32], "train/policy": "trivial", "train/mix": ["cutmix"]})
    candidate = space.decode(space.param_space.sample(random.Random(0)))
    assert candidate.train.batch_size in (0, 32) and candidate.train.policy == "trivial"
    for bad in (4, 2048, -1):
        with pytest.raises(InvalidSearchSpace, match=r"0 \(auto\) or an integer in \[8, 1024\]"):
            SPACE.with_overrides({"train/batch_size": bad})
    with pytest.raises(InvalidSearchSpace, match="train/mix"):
        SPACE.with_overrides({"train/mix": "mosaic"})


def test_the_documented_examples_hold():
    """The override grammar, resolution_for and reference_rank's examples."""
    assert doctest.testmod(space_module).failed == 0


def test_reference_points_lie_in_the_default_space_and_decode_to_the_hand_designed_networks():
    from nas_core.space import reference_candidates

    points = SPACE.reference_points()
    expected = reference_candidates()
    assert len(points) == len(expected) == 3
    for point, (candidate, scale) in zip(points, expected):
        decoded = SPACE.decode(point, input_side=96)
        assert point["input_scale"] == scale
        assert decoded.arch.stages == candidate.arch.stages and decoded.train == candidate.train
        assert decoded.arch.resolution == resolution_for(scale, 96)
    assert len({SPACE.param_space.key(point) for point in points}) == 3
    # a space that excludes a reference's decisions skips it rather than proposing outside itself
    narrowed = SPACE.with_overrides({"stage_count": [3], "input_scale": [0.75]})
    assert [p["input_scale"] for p in narrowed.reference_points()] == [0.75]
    # the plain network with a full-resolution first stage needs "none" there, which later stages do not offer
    assert [p["stage1/downsample"] for p in SPACE.reference_points()] == ["none", "max", "stride"]
    # ... so a space without it trains the plain network pooled at three quarters of the side in that place
    from nas_core.space import reference_stand_ins

    pooled = SPACE.with_overrides({"downsample": ["max", "avg", "stride"]})
    stand_in, scale = reference_stand_ins()[0]
    assert [p["input_scale"] for p in pooled.reference_points()] == [0.75, 0.75, 0.5]
    assert pooled.decode(pooled.reference_points()[0], input_side=96).arch.stages == stand_in.arch.stages
    assert scale == 0.75 and [pooled.reference_rank(p) for p in pooled.reference_points()] == [0, 1, 2]
    larger = SPACE.with_overrides({"input_scale": [0.75, 1.0]})  # no half side: the stand-in, then the residual one
    assert larger.decode(larger.reference_points()[0], input_side=96).arch.stages == stand_in.arch.stages
    assert [p["input_scale"] for p in larger.reference_points()] == [0.75, 0.75]
