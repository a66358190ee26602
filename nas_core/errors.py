"""The engine's one error base; the service maps these to problem+json."""


class NASError(Exception):
    """Base of every error the engine raises on purpose.

    ``errors`` carries per-item details (``[{"field" or "file": ..., "error": ...}]``) where one message is not enough.
    """

    def __init__(self, message: str, *, errors: list[dict] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = list(errors or [])


class InvalidSearchSpace(NASError):
    """A search-space override or a decision set that does not fit the space."""


class ConstraintViolation(NASError):
    """A candidate breaks ``max_params`` / ``max_latency_ms``; raised before it is trained."""


class TrialPruned(NASError):
    """Raised from a per-epoch callback to stop a trial that will not beat earlier ones."""


class TrialCanceled(NASError):
    """Raised from a per-epoch (or per-batch) callback when the experiment is being canceled."""


class DatasetRejected(NASError):
    """The uploaded archive as a whole is unusable; ``errors`` lists why, per file where it applies."""
