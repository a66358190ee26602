"""Builder: every block type builds and trains a step at 16 and 64 px, with 1 and 3 channels."""

import pytest
import torch
import torch.nn.functional as F

from nas_core.builder import build_model
from nas_core.metrics import count_params
from nas_core.ops import ACTIVATIONS, OPS
from nas_core.spec import ACTIVATION_NAMES, DOWNSAMPLE_NAMES, OP_NAMES, ArchSpec, StageSpec


def two_stage(op: str, *, downsample: str = "max") -> ArchSpec:
    return ArchSpec(stem_width=8, stages=(
        StageSpec(op, 1, 8, 3, expansion=3, se=True, activation="swish", downsample="none"),
        StageSpec(op, 2, 16, 5, expansion=3, se=False, activation="leaky_relu", downsample=downsample),
    ), head_dropout=0.1)


def test_registries_match_the_names_specs_accept():
    assert tuple(OPS) == OP_NAMES
    assert tuple(ACTIVATIONS) == ACTIVATION_NAMES


@pytest.mark.parametrize("op", OP_NAMES)
@pytest.mark.parametrize("size", [16, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_every_block_type_builds_and_trains_a_step(op, size, channels):
    torch.manual_seed(0)
    model = build_model(two_stage(op, downsample="stride"), channels, 5, input_size=size)
    x, y = torch.randn(4, channels, size, size), torch.tensor([0, 1, 2, 4])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    before = [p.detach().clone() for p in model.parameters()]
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in model.parameters())
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))
    assert model.eval()(x).shape == (4, 5)


@pytest.mark.parametrize("downsample", DOWNSAMPLE_NAMES)
def test_downsampling_stops_at_two_pixels(downsample):
    stages = tuple(StageSpec("conv", 1, 8, 3, downsample=downsample) for _ in range(6))
    model = build_model(ArchSpec(8, stages), 1, 3, input_size=16).eval()
    sizes = []
    for stage in model.stages:
        stage.register_forward_hook(lambda module, args, out: sizes.append(out.shape[-1]))
    model(torch.zeros(1, 1, 16, 16))
    expected = [16] * 6 if downsample == "none" else [8, 4, 2, 2, 2, 2]
    assert sizes == expected


def test_odd_and_rectangular_inputs_and_many_classes():
    spec = ArchSpec(8, tuple(StageSpec("mbconv", 1, 16, 3, expansion=6, downsample="avg") for _ in range(4)))
    model = build_model(spec, 3, 37, input_size=(17, 23)).eval()
    assert model(torch.zeros(2, 3, 17, 23)).shape == (2, 37)
    # another resolution than planned still runs (adaptive head)
    assert model(torch.zeros(1, 3, 40, 40)).shape == (1, 37)


def test_large_inputs_get_a_strided_stem():
    spec = ArchSpec(8, (StageSpec("dwsep", 1, 16, 3, downsample="none"),))
    small, large = build_model(spec, 3, 2, input_size=32), build_model(spec, 3, 2, input_size=128)
    assert small.stem[0].stride == (1, 1) and large.stem[0].stride == (2, 2)
    assert large.eval()(torch.zeros(1, 3, 128, 128)).shape == (1, 2)


def test_a_smaller_input_never_costs_more_from_48_px_up():
    """Input scales of a 96 or 128 px dataset (48–128 px) are cheaper the smaller they are: no stem decision makes a
    three-quarter input run its stages at a larger map than the full one (72 px once cost twice 96 px)."""
    from nas_core.metrics import count_flops

    spec = ArchSpec(24, (StageSpec("conv", 1, 32, 3), StageSpec("residual", 1, 64, 3)))
    flops = [count_flops(build_model(spec, 3, 10, input_size=side), (1, 3, side, side))
             for side in (48, 64, 72, 96, 128)]
    assert flops == sorted(flops), flops


def test_rebuilt_from_json_has_same_params_and_output_shape():
    spec = ArchSpec(16, (StageSpec("residual", 2, 24, 3, se=True), StageSpec("mbconv", 1, 32, 5, expansion=6),
                         StageSpec("dwsep", 1, 48, 7, activation="swish", downsample="stride")), head_dropout=0.2)
    original = build_model(spec, 3, 10, input_size=32).eval()
    rebuilt = build_model(ArchSpec.from_dict(spec.to_dict()), 3, 10, input_size=32).eval()
    assert count_params(rebuilt) == count_params(original)
    x = torch.zeros(2, 3, 32, 32)
    assert rebuilt(x).shape == original(x).shape == (2, 10)


def test_builder_is_pure():
    spec = two_stage("residual")
    torch.manual_seed(1)
    first = build_model(spec, 1, 4, input_size=16)
    torch.manual_seed(1)
    second = build_model(spec, 1, 4, input_size=16)
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))
