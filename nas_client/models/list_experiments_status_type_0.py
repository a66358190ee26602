from enum import StrEnum


class ListExperimentsStatusType0(StrEnum):
    CANCELED = "canceled"
    CANCELING = "canceling"
    FAILED = "failed"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"

    def __str__(self) -> str:
        return str(self.value)
