"""Type aliases shared across the package."""

from __future__ import annotations

import enum
from typing import Literal, Sequence, Union

from torch import Tensor

Mode = Literal["auto", "binary", "multilabel", "multiclass"]
ResolvedMode = Literal["binary", "multilabel", "multiclass"]
Reduction = Literal["mean", "sum", "none"]
ClassWeights = Union[Tensor, Sequence[float], None]

MODES: tuple[str, ...] = ("auto", "binary", "multilabel", "multiclass")
REDUCTIONS: tuple[str, ...] = ("mean", "sum", "none")


class Family(str, enum.Enum):
    """The four loss families of Jadon's survey."""

    DISTRIBUTION = "distribution"
    REGION = "region"
    BOUNDARY = "boundary"
    COMPOUND = "compound"

    def __str__(self) -> str:
        return self.value
