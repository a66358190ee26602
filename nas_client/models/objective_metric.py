from enum import StrEnum


class ObjectiveMetric(StrEnum):
    ACCURACY = "accuracy"
    BALANCED_ACCURACY = "balanced_accuracy"

    def __str__(self) -> str:
        return str(self.value)
