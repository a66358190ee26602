from enum import StrEnum


class RankedTrialStatus(StrEnum):
    CANCELED = "canceled"
    FAILED = "failed"
    PENDING = "pending"
    PRUNED = "pruned"
    RUNNING = "running"
    STOPPED = "stopped"
    SUCCEEDED = "succeeded"

    def __str__(self) -> str:
        return str(self.value)
