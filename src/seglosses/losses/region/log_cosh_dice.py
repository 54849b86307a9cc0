"""Log-Cosh Dice loss."""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor

from ..._registry import LossInfo, register_loss
from ..._types import ClassWeights, Mode, Reduction
from ..._validation import check_number
from .._base import SegLoss
from .._prepare import prepare
from .._stats import channel_mean, reduce
from .dice import dice_score_stage

_LOG2 = math.log(2.0)


def log_cosh(x: Tensor) -> Tensor:
    """``log(cosh(x))`` without overflow: ``x + softplus(-2x) - log 2`` (gradient ``tanh x``)."""
    return x + F.softplus(-2.0 * x) - _LOG2


def log_cosh_dice_loss(logits: Tensor, target: Tensor, mask: Tensor | None = None, *,
                       mode: Mode = "auto", from_logits: bool = True,
                       reduction: Reduction = "mean", include_background: bool = True,
                       ignore_index: int | None = None, class_weights: ClassWeights = None,
                       smooth: float = 1.0, batch: bool = False) -> Tensor:
    r"""Log-Cosh Dice loss: ``log(cosh(.))`` of the soft Dice loss, per channel.

    .. math::
        D = 1 - \frac{2\,TP + s}{\sum p + \sum t + s}, \qquad L = \log\cosh(D)

    Region-based loss proposed in the survey itself (Jadon 2020, eq. 17). ``log cosh`` is
    evaluated as ``D + softplus(-2 D) - log 2``, which never overflows. It is applied per
    (sample, channel) before the channel mean. Since ``D`` lies in [0, 1], ``L`` lies in
    [0, log cosh 1] = [0, 0.4338].

    Args:
        logits: (B, C, *S) logits (probabilities with ``from_logits=False``).
        target: see :func:`seglosses.losses._prepare.prepare`.
        mask: optional bool (B, 1, *S) or (B, *S); False voxels count nowhere.
        mode, from_logits, reduction, include_background, ignore_index, class_weights: the
            shared parameters (``docs/api.md``).
        smooth: s of the Dice loss, added to numerator and denominator (>= 0).
        batch: pool the sums over the batch; ``reduction="none"`` then gives shape (1,).

    Shape:
        Output: scalar for ``"mean"``/``"sum"``, (B,) for ``"none"`` ((1,) with ``batch``).

    Raises:
        ValueError: negative ``smooth``; bad input (see ``prepare``).

    Example:
        >>> import torch
        >>> logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]])
        >>> target = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
        >>> log_cosh_dice_loss(logits, target)
        tensor(0.0142)

    References:
        Jadon, "A survey of loss functions for semantic segmentation", IEEE CIBCB 2020,
        arXiv:2006.14822.
    """
    check_number(smooth, "smooth", low=0.0)
    prep = prepare(logits, target, mask, mode=mode, from_logits=from_logits,
                   include_background=include_background, ignore_index=ignore_index,
                   class_weights=class_weights)
    dice = 1.0 - dice_score_stage(prep, smooth=smooth, batch=batch)
    return reduce(channel_mean(log_cosh(dice), prep), reduction)


@register_loss(LossInfo(
    name="log_cosh_dice", family="region", source="Jadon 2020", arxiv="2006.14822",
    summary="log(cosh(Dice loss)) per channel, computed stably.",
    params={"smooth": "added to numerator and denominator of the Dice score",
            "batch": "pool sums over the batch"},
    value_range=(0.0, math.log(math.cosh(1.0))), in_paper=True,
))
class LogCoshDiceLoss(SegLoss):
    """Module form of :func:`log_cosh_dice_loss`."""

    function = staticmethod(log_cosh_dice_loss)

    def __init__(self, *, smooth: float = 1.0, batch: bool = False, **shared: object) -> None:
        super().__init__(smooth=smooth, batch=batch, **shared)  # type: ignore[arg-type]
