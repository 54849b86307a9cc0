"""``SegLoss``: the module every registered loss derives from."""

from __future__ import annotations

from typing import Any, Callable, ClassVar

import torch
from torch import Tensor, nn

from .._registry import LossInfo
from .._types import MODES, REDUCTIONS, ClassWeights
from .._validation import check_choice


class LossArithmetic:
    """``+`` between losses and ``*`` with a number build a :class:`CompoundLoss`."""

    def _terms(self) -> list[tuple[float, nn.Module]]:
        return [(1.0, self)]  # type: ignore[list-item]

    def __add__(self, other: Any) -> Any:
        from .compound.compound import CompoundLoss

        if not isinstance(other, LossArithmetic):
            return NotImplemented
        return CompoundLoss(self._terms() + other._terms())

    def __mul__(self, factor: Any) -> Any:
        from .compound.compound import CompoundLoss

        if isinstance(factor, bool) or not isinstance(factor, (int, float)):
            return NotImplemented
        return CompoundLoss([(float(factor) * w, m) for w, m in self._terms()])

    __rmul__ = __mul__


class SegLoss(LossArithmetic, nn.Module):
    """Base class: stores the shared and loss-specific parameters and calls the functional form.

    Subclasses set ``function`` (the functional loss) and declare their own keyword parameters.
    """

    info: ClassVar[LossInfo]
    function: ClassVar[Callable[..., Tensor]]

    def __init__(self, *, mode: str = "auto", from_logits: bool = True, reduction: str = "mean",
                 include_background: bool = True, ignore_index: int | None = None,
                 class_weights: ClassWeights = None, **params: Any) -> None:
        super().__init__()
        check_choice(mode, "mode", MODES)
        check_choice(reduction, "reduction", REDUCTIONS)
        self.mode = mode
        self.from_logits = from_logits
        self.reduction = reduction
        self.include_background = include_background
        self.ignore_index = ignore_index
        if class_weights is not None:
            dtype = torch.float64 if isinstance(class_weights, torch.Tensor) \
                and class_weights.dtype == torch.float64 else torch.float32
            try:
                cw = torch.as_tensor(class_weights, dtype=dtype)
            except (TypeError, ValueError, RuntimeError):
                raise TypeError(
                    f"`class_weights` must be a sequence of numbers or a tensor; got "
                    f"{class_weights!r}"
                ) from None
            self.register_buffer("class_weights", cw.detach().clone())
        else:
            self.class_weights = None
        self.params = dict(params)

    def shared(self) -> dict[str, Any]:
        """The shared parameters as keyword arguments."""
        return {
            "mode": self.mode, "from_logits": self.from_logits, "reduction": self.reduction,
            "include_background": self.include_background, "ignore_index": self.ignore_index,
            "class_weights": self.class_weights,
        }

    def forward(self, logits: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
        """Compute the loss; see the functional form for shapes."""
        return type(self).function(logits, target, mask, **self.shared(), **self.params)

    def extra_repr(self) -> str:
        parts = [f"mode={self.mode!r}", f"reduction={self.reduction!r}"]
        if not self.from_logits:
            parts.append("from_logits=False")
        if not self.include_background:
            parts.append("include_background=False")
        if self.ignore_index is not None:
            parts.append(f"ignore_index={self.ignore_index}")
        parts += [f"{k}={v!r}" for k, v in self.params.items()]
        return ", ".join(parts)
