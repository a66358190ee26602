from enum import StrEnum


class PrunerKind(StrEnum):
    ASHA = "asha"
    MEDIAN = "median"
    NONE = "none"

    def __str__(self) -> str:
        return str(self.value)
