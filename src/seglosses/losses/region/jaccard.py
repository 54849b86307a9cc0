"""Soft Jaccard (IoU) loss."""

from __future__ import annotations

from torch import Tensor

from ..._registry import LossInfo, register_loss
from ..._types import ClassWeights, Mode, Reduction
from ..._validation import check_number
from .._base import SegLoss
from .._prepare import Prepared, prepare
from .._stats import channel_mean, reduce, soft_sums


def jaccard_index_stage(prep: Prepared, *, smooth: float, batch: bool = False) -> Tensor:
    """Soft Jaccard index (TP + s) / (TP + FP + FN + s) per (B, C), or (1, C) with ``batch``."""
    tp, sum_p, sum_t = soft_sums(prep, batch)
    return (tp + smooth) / (sum_p + sum_t - tp + smooth)  # TP + FP + FN = sum p + sum t - TP


def jaccard_loss(logits: Tensor, target: Tensor, mask: Tensor | None = None, *,
                 mode: Mode = "auto", from_logits: bool = True, reduction: Reduction = "mean",
                 include_background: bool = True, ignore_index: int | None = None,
                 class_weights: ClassWeights = None, smooth: float = 1.0,
                 batch: bool = False) -> Tensor:
    r"""Soft Jaccard (intersection over union) loss.

    .. math::
        L = 1 - \frac{TP + s}{TP + FP + FN + s}

    Region-based loss (the IoU of Jaccard 1912 with soft counts; Rahman & Wang 2016). On hard
    masks with ``smooth = 0`` the Jaccard index J and the Dice score D satisfy
    ``J = D / (2 - D)``. An empty target predicted empty scores 0 because ``smooth`` sits in
    numerator and denominator.

    Args:
        logits: (B, C, *S) logits (probabilities with ``from_logits=False``).
        target: see :func:`seglosses.losses._prepare.prepare`.
        mask: optional bool (B, 1, *S) or (B, *S); False voxels count nowhere.
        mode, from_logits, reduction, include_background, ignore_index, class_weights: the
            shared parameters (``docs/api.md``).
        smooth: s, added to numerator and denominator (>= 0).
        batch: pool the sums over the batch; ``reduction="none"`` then gives shape (1,).

    Shape:
        Output: scalar for ``"mean"``/``"sum"``, (B,) for ``"none"`` ((1,) with ``batch``).

    Raises:
        ValueError: negative ``smooth``; bad input (see ``prepare``).

    Example:
        >>> import torch
        >>> logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]])
        >>> target = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
        >>> jaccard_loss(logits, target)
        tensor(0.2452)

    References:
        Rahman, Wang, "Optimizing intersection-over-union in deep neural networks for image
        segmentation", ISVC 2016.
    """
    check_number(smooth, "smooth", low=0.0)
    prep = prepare(logits, target, mask, mode=mode, from_logits=from_logits,
                   include_background=include_background, ignore_index=ignore_index,
                   class_weights=class_weights)
    index = jaccard_index_stage(prep, smooth=smooth, batch=batch)
    return reduce(channel_mean(1.0 - index, prep), reduction)


@register_loss(LossInfo(
    name="jaccard", family="region", source="Rahman & Wang 2016",
    summary="1 - soft Jaccard index (IoU).",
    params={"smooth": "added to numerator and denominator", "batch": "pool sums over the batch"},
    value_range=(0.0, 1.0),
))
class JaccardLoss(SegLoss):
    """Module form of :func:`jaccard_loss`."""

    function = staticmethod(jaccard_loss)

    def __init__(self, *, smooth: float = 1.0, batch: bool = False, **shared: object) -> None:
        super().__init__(smooth=smooth, batch=batch, **shared)  # type: ignore[arg-type]
