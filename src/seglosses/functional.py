"""A plain function for every registered loss: ``seglosses.functional.dice_loss`` etc.

The functions are collected from the registry, so a new loss file appears here without edits.

Example:
    >>> import torch
    >>> from seglosses import functional as SF
    >>> logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]])
    >>> target = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
    >>> SF.dice_loss(logits, target)
    tensor(0.1687)
"""

from __future__ import annotations

from typing import Any

from . import losses as _losses  # noqa: F401  (registers every loss)
from ._registry import _REGISTRY

__all__: list[str] = []
for _info in sorted(_REGISTRY.values(), key=lambda i: i.name):
    if _info.function is not None:
        globals()[_info.function.__name__] = _info.function
        __all__.append(_info.function.__name__)


def __getattr__(name: str) -> Any:
    raise AttributeError(f"module 'seglosses.functional' has no attribute {name!r}")
