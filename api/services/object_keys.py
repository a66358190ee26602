"""Where each object of a search and of a final model lives in the store (keys are checked by validate_key)."""

from __future__ import annotations

from api.storage import validate_key

# Under a dataset's storage prefix, written last by ingestion: its presence marks the dataset's objects complete.
MANIFEST_OBJECT = "manifest.json"


def model_prefix(project_id: str, model_id: str) -> str:
    """The prefix that holds every object of one model."""
    return validate_key(f"{project_id}/models/{model_id}/", prefix=True)


def trial_weights_key(project_id: str, experiment_id: str, trial_id: str) -> str:
    """Where a succeeded trial's trained weights are kept while it leads its search (the final model starts there)."""
    return validate_key(f"{project_id}/experiments/{experiment_id}/trials/{trial_id}/weights.pt")


def trial_checkpoint_key(project_id: str, experiment_id: str, trial_id: str) -> str:
    """Where a running trial's last checkpoint is kept until the trial ends (alone in its folder)."""
    return validate_key(f"{project_id}/experiments/{experiment_id}/trials/{trial_id}/checkpoint/state.pt")
