from enum import StrEnum


class ObjectiveMode(StrEnum):
    ACCURACY = "accuracy"
    PARETO = "pareto"

    def __str__(self) -> str:
        return str(self.value)
