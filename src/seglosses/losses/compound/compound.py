"""``CompoundLoss``: a weighted sum of loss modules, built by ``+``, ``*`` or ``get_loss``."""

from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

from .._base import LossArithmetic
from .._stats import weighted_terms


class CompoundLoss(LossArithmetic, nn.Module):
    """Weighted sum ``sum_k w_k * loss_k(logits, target, mask)``.

    Every term must use the same ``reduction`` so that the values add up elementwise.

    Example:
        >>> import torch, seglosses
        >>> loss = 0.5 * seglosses.get_loss("dice") + seglosses.get_loss("bce") * 0.5
        >>> loss
        CompoundLoss(0.5*dice + 0.5*bce)
    """

    def __init__(self, terms: Sequence[tuple[float, nn.Module]]) -> None:
        super().__init__()
        if not terms:
            raise ValueError("`terms` must hold at least one (weight, loss) pair; got none")
        reductions = {getattr(m, "reduction", None) for _, m in terms}
        if len(reductions) > 1:
            raise ValueError(
                f"every term of a compound loss must use the same `reduction`; got "
                f"{sorted(str(r) for r in reductions)}"
            )
        self.weights = [float(w) for w, _ in terms]
        self.losses = nn.ModuleList([m for _, m in terms])
        self.reduction = reductions.pop()

    def _terms(self) -> list[tuple[float, nn.Module]]:
        return list(zip(self.weights, self.losses))

    def forward(self, logits: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
        """Weighted sum of the terms' values."""
        return weighted_terms(*((w, loss(logits, target, mask))
                                for w, loss in zip(self.weights, self.losses)))

    def __repr__(self) -> str:
        names = [getattr(getattr(m, "info", None), "name", type(m).__name__)
                 for m in self.losses]
        body = " + ".join(f"{w:g}*{n}" for w, n in zip(self.weights, names))
        return f"CompoundLoss({body})"
