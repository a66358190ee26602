"""The search loop as worker commands: plan trials, run one trial under a lease, reap dead attempts.

- :mod:`.scheduler`: ``schedule`` plans trials under the budget and deadline (screening candidates first), finishes
  the experiment and hands a succeeded search to its final model; the clock (``elapsed_seconds``, ``time_is_up``).
- :mod:`.trials`: ``run_trial`` runs one attempt of a trial: lease, heartbeats, checkpoints, stop requests, pruning.
- :mod:`.reaper`: ``reap`` hands dead attempts' trials to new attempts and nudges idle experiments.
- :mod:`.history`: the experiment's trials as the engine's strategies and pruners see them.

The device a worker trains on is :func:`api.services.devices.resolve_device`. The names below are re-exported for
callers of the package; code inside the service layer imports from the module that defines a name.
"""

from api.services.object_keys import trial_checkpoint_key, trial_weights_key
from api.services.search.reaper import reap
from api.services.search.scheduler import (
    elapsed_seconds,
    make_strategy_from,
    schedule,
    stop_clock,
    strategy_for,
    time_is_up,
    trials_used,
    warm_throughput,
)
from api.services.search.trials import (
    STOP_REQUESTED,
    _keep_weights_if_leading,
    _trial_beat,
    run_trial,
)

__all__ = [
    "STOP_REQUESTED",
    "_keep_weights_if_leading",
    "_trial_beat",
    "elapsed_seconds",
    "make_strategy_from",
    "reap",
    "run_trial",
    "schedule",
    "stop_clock",
    "strategy_for",
    "time_is_up",
    "trial_checkpoint_key",
    "trials_used",
    "trial_weights_key",
    "warm_throughput",
]
