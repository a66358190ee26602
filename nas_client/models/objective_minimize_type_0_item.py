from enum import StrEnum


class ObjectiveMinimizeType0Item(StrEnum):
    LATENCY_MS = "latency_ms"
    PARAMS = "params"

    def __str__(self) -> str:
        return str(self.value)
