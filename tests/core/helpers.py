"""What the core tests share: a small candidate and the stripes images it learns quickly.

Test modules import from here, never from each other or from ``conftest`` (fixtures live there).
"""

from __future__ import annotations

import torch

from nas_core.spec import ArchSpec, Candidate, StageSpec, TrainSpec

CANDIDATE = Candidate(ArchSpec(8, (StageSpec("conv", 1, 8, 3), StageSpec("residual", 1, 16, 3))),
                      TrainSpec(lr=3e-3, batch_size=16, ema=False))


def stripes(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(count) % 2
    phase = torch.randint(0, 2, (count, 1, 1), generator=generator)
    rows = (torch.arange(12).view(12, 1) + phase) % 2
    cols = (torch.arange(12).view(1, 12) + phase) % 2
    images = torch.where(labels.view(-1, 1, 1) == 0, rows.expand(count, 12, 12), cols.expand(count, 12, 12))
    return (images * 255).to(torch.uint8).unsqueeze(1), labels
