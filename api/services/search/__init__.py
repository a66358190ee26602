"""The search loop as worker commands: plan trials, run one trial under a lease, reap dead attempts.

- :mod:`.scheduler`: ``schedule`` plans trials under the budget and deadline (screening candidates first), finishes
  the experiment and hands a succeeded search to its final model; the clock (``elapsed_seconds``, ``time_is_up``).
- :mod:`.trials`: ``run_trial`` runs one attempt of a trial: lease, heartbeats, checkpoints, stop requests, pruning.
- :mod:`.reaper`: ``reap`` hands dead attempts' trials to new attempts and nudges idle experiments.
- :mod:`.history`: the experiment's trials as the engine's strategies and pruners see them.

The device a worker trains on is :func:`api.services.devices.resolve_device`. Callers import from the module that
does the job (``from api.services.search import scheduler``).
"""
