from enum import StrEnum


class ExperimentCreateStrategy(StrEnum):
    EVOLUTION = "evolution"
    RANDOM = "random"
    TPE = "tpe"

    def __str__(self) -> str:
        return str(self.value)
