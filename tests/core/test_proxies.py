"""Zero-cost proxies: deterministic, side-effect free, defined on every block kind, and computing what they claim."""

import copy
import math

import pytest
import torch
from torch import nn

from nas_core import proxies
from nas_core.builder import build_model
from nas_core.spec import OP_NAMES, ArchSpec, StageSpec

SIDE = 16


def two_stage(op: str) -> ArchSpec:
    """Both SE and plain blocks, swish and leaky ReLU, a strided and an unstrided stage."""
    return ArchSpec(stem_width=8, stages=(
        StageSpec(op, 1, 8, 3, expansion=3, se=True, activation="swish", downsample="none"),
        StageSpec(op, 2, 16, 5, expansion=3, se=False, activation="leaky_relu", downsample="stride"),
    ), head_dropout=0.2)


def plain_relu() -> ArchSpec:
    return ArchSpec(stem_width=8, stages=(StageSpec("conv", 2, 16, 3), StageSpec("conv", 1, 24, 3)))


def batch(channels: int = 1, count: int = 8) -> torch.Tensor:
    return torch.randn(count, channels, SIDE, SIDE, generator=torch.Generator().manual_seed(1))


def untrained(arch: ArchSpec, channels: int = 1, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build_model(arch, channels, 5, input_size=SIDE)


@pytest.mark.parametrize("op", OP_NAMES)
@pytest.mark.parametrize("channels", [1, 3])
def test_every_block_kind_gets_finite_scores(op, channels):
    scores = proxies.scores(untrained(two_stage(op), channels), batch(channels))
    assert set(scores) == set(proxies.PROXIES)
    assert all(math.isfinite(value) for value in scores.values()), scores
    assert scores["synflow"] > 0


def test_scores_are_deterministic_for_a_seed_and_follow_the_initial_weights():
    images = batch()
    first = proxies.score_untrained(two_stage("mbconv"), in_channels=1, num_classes=5, images=images, seed=3)
    again = proxies.score_untrained(two_stage("mbconv"), in_channels=1, num_classes=5, images=images, seed=3)
    other = proxies.score_untrained(two_stage("mbconv"), in_channels=1, num_classes=5, images=images, seed=4)
    assert first == again
    assert all(first[name] != other[name] for name in proxies.PROXIES)
    assert proxies.scores(untrained(two_stage("mbconv"), seed=3), images) == first  # the network the seed builds


def test_the_global_rng_is_left_untouched():
    images = batch()
    model = untrained(two_stage("residual"))
    state = torch.random.get_rng_state()
    proxies.scores(model, images)
    proxies.score_untrained(two_stage("conv"), in_channels=1, num_classes=5, images=images, seed=7)
    assert torch.equal(torch.random.get_rng_state(), state)


@pytest.mark.parametrize("training", [True, False])
def test_the_model_keeps_its_weights_statistics_gradients_and_mode(training):
    model = untrained(two_stage("dwsep")).train(training)
    before = copy.deepcopy(model.state_dict())  # BatchNorm running statistics included
    proxies.scores(model, batch())
    after = model.state_dict()
    assert all(torch.equal(before[key], after[key]) for key in before)
    assert all(module.training == training for module in model.modules())
    assert all(parameter.grad is None for parameter in model.parameters())


def test_naswot_kernel_counts_agreeing_units_and_its_diagonal_is_every_unit():
    model, images = untrained(two_stage("conv")), batch()
    units = []
    handles = [module.register_forward_pre_hook(lambda module, inputs: units.append(inputs[0][0].numel()))
               for module in model.modules() if isinstance(module, proxies.ACTIVATION_TYPES)]
    with torch.no_grad():
        copy.deepcopy(model)(images)
    for handle in handles:
        handle.remove()
    kernel = proxies.naswot_kernel(model, images)
    assert torch.equal(kernel, kernel.T)
    assert torch.all(kernel.diagonal() == sum(units))  # SE's inner ReLU counted with the blocks' activations
    assert torch.all(kernel <= sum(units)) and torch.all(kernel >= 0)


def test_naswot_ranks_a_network_with_dead_activations_below_a_live_one():
    live = untrained(plain_relu())
    dead = copy.deepcopy(live)
    with torch.no_grad():
        for module in dead.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.bias.fill_(-100.0)  # every pre-activation negative: one code for all images
    images = batch()
    assert proxies.naswot(dead, images) == -math.inf
    assert math.isfinite(proxies.naswot(live, images))
    assert proxies.naswot(live, torch.zeros_like(images)) == -math.inf  # identical images cannot be told apart


def test_synflow_is_the_conserved_flow_times_the_layers_on_a_positive_relu_network():
    """Tanaka et al.: with positive weights and a ReLU network without biases, every layer carries the same synaptic
    flow, the output sum R (less what the head's bias adds): the score is layers × (R − Σ|bias|)."""
    model = untrained(plain_relu())
    reference = copy.deepcopy(model).double().eval()  # BatchNorm at initialisation: x / sqrt(1 + eps), linear
    with torch.no_grad():
        for parameter in reference.parameters():
            parameter.abs_()
        output = float(reference(torch.ones(1, 1, SIDE, SIDE, dtype=torch.float64)).sum())
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    head_bias = float(model.head[1].bias.detach().abs().sum())
    expected = len(layers) * (output - head_bias)
    assert proxies.synflow(model, batch()) == pytest.approx(expected, rel=1e-3)


def test_jacob_cov_of_a_linear_model_matches_the_closed_form():
    """A linear model has one Jacobian for every image: the correlation matrix is all ones (eigenvalues N and 0)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(SIDE * SIDE, 5))
    count, k = 8, proxies.JACOB_COV_K
    expected = -(math.log(count + k) + 1 / (count + k) + (count - 1) * (math.log(k) + 1 / k))
    assert proxies.jacob_cov(model, batch(count=count)) == pytest.approx(expected, rel=1e-6)
