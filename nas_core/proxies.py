"""Zero-cost proxies: scores of an untrained network from one minibatch, without training it.

Each score costs about one forward (and at most one backward) pass and is a pure function of the network's weights
and the batch: it runs on a copy of the network (the caller's weights, mode, gradients and BatchNorm statistics stay
as they were) inside ``torch.random.fork_rng`` (the global RNG state is left untouched). Higher is better for all.

- ``synflow`` (Tanaka et al. 2020, as in the zero-cost NAS reference code of Abdelfattah et al. 2021): weights made
  absolute, BatchNorm removed (identity), float64, an all-ones input of the batch's shape; the sum over conv and
  linear weights of ``|θ ⊙ ∂R/∂θ|`` where ``R`` is the sum of the logits. Data-independent; float64 keeps the
  product of many layers finite for the networks of the space.
- ``naswot`` (Mellor et al. 2021): every activation module's input is read as a binary code (``> 0``, the sign of the
  pre-activation, so ReLU, leaky ReLU and swish are treated alike); ``K[i, j]`` counts the units where images i and
  j agree; the score is ``log det K``. ``-inf`` when two images share their code (K singular): such a network
  cannot tell them apart.
- ``jacob_cov`` (Mellor et al. 2020, v1): the correlation matrix ``C`` of the per-image input Jacobians of the summed
  logits; ``-Σ log(λ + k) + 1 / (λ + k)`` over C's eigenvalues, ``k = 1e-5``. ``-inf`` when a Jacobian is constant.

BatchNorm uses the batch's statistics in ``naswot`` and ``jacob_cov`` (training mode, as the references run
networks); dropout is off everywhere (it would only add noise to a property of the architecture).

>>> import torch
>>> from nas_core.spec import ArchSpec, StageSpec
>>> arch = ArchSpec(stem_width=8, stages=(StageSpec("conv", 1, 16, 3),))
>>> images = torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(0))
>>> scores = score_untrained(arch, in_channels=1, num_classes=10, images=images, seed=0)
>>> sorted(scores), all(value > 0 for value in (scores["synflow"], scores["naswot"]))
(['jacob_cov', 'naswot', 'synflow'], True)
"""

from __future__ import annotations

import copy
import math
from typing import Callable

import torch
from torch import Tensor, nn

from nas_core.builder import build_model
from nas_core.ops import ACTIVATIONS
from nas_core.spec import ArchSpec

# The nonlinearities the blocks use (squeeze-excitation's inner ReLU included), from the activation registry.
ACTIVATION_TYPES: tuple[type[nn.Module], ...] = tuple({type(make()) for make in ACTIVATIONS.values()} | {nn.ReLU})
JACOB_COV_K = 1e-5


def _devices(model: nn.Module) -> list[int]:
    """CUDA devices whose RNG ``fork_rng`` must save (none for a CPU model: no CUDA initialisation)."""
    return sorted({p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"})


def _copy(model: nn.Module, *, train: bool) -> nn.Module:
    """A detached copy to score: BatchNorm in training mode when ``train``, dropout always off."""
    scored = copy.deepcopy(model).train(train)
    for module in scored.modules():
        if isinstance(module, nn.Dropout):
            module.eval()
    scored.zero_grad(set_to_none=True)
    return scored


def _without_batchnorm(module: nn.Module) -> nn.Module:
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(module, name, nn.Identity())
        else:
            _without_batchnorm(child)
    return module


def synflow(model: nn.Module, images: Tensor) -> float:
    """Synaptic flow of ``model`` for inputs shaped like ``images`` (only the shape is used); see the module doc."""
    with torch.random.fork_rng(devices=_devices(model)):
        scored = _without_batchnorm(_copy(model, train=False)).double()
        with torch.no_grad():
            for parameter in scored.parameters():
                parameter.abs_()
        ones = torch.ones((1, *images.shape[1:]), dtype=torch.float64, device=images.device)
        scored(ones).sum().backward()
        total = sum(float((module.weight.detach() * module.weight.grad).abs().sum())
                    for module in scored.modules()
                    if isinstance(module, (nn.Conv2d, nn.Linear)) and module.weight.grad is not None)
    return total


def naswot_kernel(model: nn.Module, images: Tensor) -> Tensor:
    """``K[i, j]``: how many activation units images i and j fall on the same side of zero at (float64, N×N)."""
    kernel = torch.zeros(len(images), len(images), dtype=torch.float64)

    def record(module: nn.Module, inputs: tuple[Tensor, ...]) -> None:
        # a pre-hook: the activations run in place, so the input is read before they overwrite it
        codes = (inputs[0].detach().reshape(len(images), -1) > 0).to(torch.float64).cpu()
        kernel.add_(codes @ codes.T).add_((1 - codes) @ (1 - codes).T)

    with torch.random.fork_rng(devices=_devices(model)):
        scored = _copy(model, train=True)
        for module in scored.modules():
            if isinstance(module, ACTIVATION_TYPES):
                module.register_forward_pre_hook(record)
        with torch.no_grad():
            scored(images)
    return kernel


def naswot(model: nn.Module, images: Tensor) -> float:
    """``log det`` of :func:`naswot_kernel` (``-inf`` when singular); see the module doc."""
    sign, logdet = torch.linalg.slogdet(naswot_kernel(model, images))
    return float(logdet) if sign > 0 else -math.inf


def jacob_cov(model: nn.Module, images: Tensor) -> float:
    """Score of the correlations between the images' input Jacobians; see the module doc."""
    with torch.random.fork_rng(devices=_devices(model)):
        scored = _copy(model, train=True)
        inputs = images.detach().clone().requires_grad_(True)
        scored(inputs).sum().backward()
        jacobians = inputs.grad.reshape(len(images), -1).to(torch.float64).cpu()
    eigenvalues = torch.linalg.eigvalsh(torch.corrcoef(jacobians))
    score = float(-(torch.log(eigenvalues + JACOB_COV_K) + 1 / (eigenvalues + JACOB_COV_K)).sum())
    return score if math.isfinite(score) else -math.inf


PROXIES: dict[str, Callable[[nn.Module, Tensor], float]] = {
    "synflow": synflow,
    "naswot": naswot,
    "jacob_cov": jacob_cov,
}


def scores(model: nn.Module, images: Tensor, *, names: tuple[str, ...] = tuple(PROXIES)) -> dict[str, float]:
    """Each named proxy of ``model`` on the normalised float batch ``images`` ``[N ≥ 2, C, H, W]``."""
    return {name: PROXIES[name](model, images) for name in names}


def score_untrained(arch: ArchSpec, *, in_channels: int, num_classes: int, images: Tensor, seed: int,
                    names: tuple[str, ...] = tuple(PROXIES)) -> dict[str, float]:
    """The proxies of ``arch`` as ``build_model`` initialises it after ``torch.manual_seed(seed)``, at the batch's
    side: the same for the same seed, and the global RNG state is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(arch, in_channels, num_classes, input_size=tuple(images.shape[-2:])).to(images.device)
    return scores(model, images, names=names)
