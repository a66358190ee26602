"""Final models: retrain a search's winner on train+val, test it on the held-out split, export verified artifacts.

- :mod:`.requests`: the HTTP-facing commands (``create_model``, ``create_model_for_project``, ``list_models``,
  ``get_model``, ``artifact_download``) and the retraining plan announced when a model is queued
  (``plan_retraining``, ``max_fitted_epochs``, ``model_overhead_s``).
- :mod:`.build`: the model job ``run_model_job``: claim under a lease, retrain, test, export, write the cards, upload;
  outages (``is_transient``) requeue it after ``retry_delay_s`` (``ModelJobDeferred``).
- :mod:`.artifacts`: the artifact formats (``ARTIFACT_FILES``, ``ARTIFACT_LAYOUTS``) and the model card
  (``card.json``, ``card.md``).
- :mod:`.reaper`: ``reap_stale_models`` requeues models whose job died or whose message was lost.

Callers import from the module that does the job (``from api.services.models import requests``).
"""
