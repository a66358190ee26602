from enum import StrEnum


class DatasetReadStatus(StrEnum):
    FAILED = "failed"
    PROCESSING = "processing"
    READY = "ready"

    def __str__(self) -> str:
        return str(self.value)
