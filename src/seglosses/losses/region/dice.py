"""Soft Dice loss."""

from __future__ import annotations

from torch import Tensor

from ..._registry import LossInfo, register_loss
from ..._types import ClassWeights, Mode, Reduction
from ..._validation import check_number
from .._base import SegLoss
from .._prepare import Prepared, prepare
from .._stats import channel_mean, reduce, soft_sums, weighted_sum


def dice_score_stage(prep: Prepared, *, smooth: float, squared: bool = False,
                     batch: bool = False) -> Tensor:
    """Soft Dice score (2 TP + s) / (sum p + sum t + s) per (B, C), or (1, C) with ``batch``."""
    tp, sum_p, sum_t = soft_sums(prep, batch)
    if squared:
        den = (weighted_sum(prep.prob ** 2, prep, batch)
               + weighted_sum(prep.target ** 2, prep, batch))
    else:
        den = sum_p + sum_t  # = 2 TP + FP + FN
    return (2.0 * tp + smooth) / (den + smooth)


def dice_loss(logits: Tensor, target: Tensor, mask: Tensor | None = None, *, mode: Mode = "auto",
              from_logits: bool = True, reduction: Reduction = "mean",
              include_background: bool = True, ignore_index: int | None = None,
              class_weights: ClassWeights = None, smooth: float = 1.0, squared: bool = False,
              batch: bool = False) -> Tensor:
    r"""Soft Dice loss.

    .. math::
        L = 1 - \frac{2\,TP + s}{\sum p + \sum t + s}

    Region-based loss (survey eq. 8; Milletari et al. 2016). An empty target predicted empty
    scores 0 because ``smooth`` sits in numerator and denominator.

    Args:
        smooth: s, added to numerator and denominator (>= 0).
        squared: use ``sum p^2 + sum t^2`` in the denominator (V-Net form).
        batch: pool the sums over the batch; ``reduction="none"`` then gives shape (1,).

    Shape:
        Output: scalar for ``"mean"``/``"sum"``, (B,) for ``"none"`` ((1,) with ``batch``).

    Example:
        >>> import torch
        >>> logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]])
        >>> target = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
        >>> dice_loss(logits, target)
        tensor(0.1687)
    """
    check_number(smooth, "smooth", low=0.0)
    prep = prepare(logits, target, mask, mode=mode, from_logits=from_logits,
                   include_background=include_background, ignore_index=ignore_index,
                   class_weights=class_weights)
    score = dice_score_stage(prep, smooth=smooth, squared=squared, batch=batch)
    return reduce(channel_mean(1.0 - score, prep), reduction)


@register_loss(LossInfo(
    name="dice", family="region", source="Milletari et al. 2016", arxiv="1606.04797",
    summary="1 - soft Dice coefficient.",
    params={"smooth": "added to numerator and denominator", "squared": "sum of squares in the "
            "denominator (V-Net)", "batch": "pool sums over the batch"},
    value_range=(0.0, 1.0), in_paper=True,
))
class DiceLoss(SegLoss):
    """Module form of :func:`dice_loss`."""

    function = staticmethod(dice_loss)

    def __init__(self, *, smooth: float = 1.0, squared: bool = False, batch: bool = False,
                 **shared: object) -> None:
        super().__init__(smooth=smooth, squared=squared,  # type: ignore[arg-type]
                         batch=batch, **shared)
