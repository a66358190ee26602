"""An experiment's search space: the default space with the experiment's overrides, parsed once per process.

Shared by the scheduler, which draws candidates from it, and the model job, which asks it whether the final model
may add flips; :func:`reference_rank` places a reference design's trial in the references' order of preference.
"""

from __future__ import annotations

import json
from functools import lru_cache

from api.orm import Experiment


def search_space_for(experiment: Experiment):
    return _search_space(json.dumps(experiment.search_space or {}, sort_keys=True))


@lru_cache(maxsize=64)
def _search_space(overrides_json: str):
    # Spaces are immutable; parsing the overrides once per process keeps scheduling cheap for short trials.
    from nas_core.space import default_search_space  # loads torch: only where a space is used

    return default_search_space().with_overrides(json.loads(overrides_json))


# The rank of a trial marked as a reference design whose decisions no longer match one (a space of an older version):
# after every reference that does.
UNMATCHED_REFERENCE_RANK = 1_000


def reference_rank(experiment: Experiment, decisions: dict | None) -> int | None:
    """Where a reference design's trial (``decisions``; None: the trial is not a reference design) stands in the
    order of preference of :func:`nas_core.space.reference_candidates`."""
    if decisions is None:
        return None
    rank = search_space_for(experiment).reference_rank(decisions)
    return UNMATCHED_REFERENCE_RANK if rank is None else rank


def reference_ranks(experiment: Experiment, trials) -> dict[str, int]:
    """Trial id → rank in the order of preference of each of ``trials`` that trained one of the space's reference
    designs (a trial of a design no longer among them is left out, where :func:`reference_rank` ranks it last)."""
    space = search_space_for(experiment)
    return {trial.id: rank for trial in trials if trial.reference_design
            and (rank := space.reference_rank(trial.decisions or {})) is not None}
