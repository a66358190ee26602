"""Uniform random search over unseen points: the baseline every other strategy must beat."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from nas_core.params import ParamSpace, TrialRecord
from nas_core.strategies.base import SeenKeys, Strategy, derive_rng, random_fill


@dataclass(frozen=True, slots=True)
class RandomStrategy(Strategy):
    """Uniform samples, never repeating a point of the history; a warm start's seeded records are ignored (a
    warm-started random search draws what a cold one with the same seed draws).

    >>> from nas_core.params import Categorical, ParamSpace
    >>> space = ParamSpace({"op": Categorical(("conv", "pool"))})
    >>> sorted(p["op"] for p in RandomStrategy().ask(space, [], 2, seed=0))
    ['conv', 'pool']
    """

    name = "random"

    def ask(self, space: ParamSpace, history: Sequence[TrialRecord], n: int, *, seed: int,
            budget: int | None = None, minimize: Sequence[str] = ()) -> list[dict]:
        own = [record for record in history if not record.seeded]
        rng = derive_rng(self.name, seed, own, n)
        return random_fill(space, rng, SeenKeys(space, own), n)

    def settings_dict(self) -> dict:
        return {"strategy": self.name}
