"""Tversky loss."""

from __future__ import annotations

from torch import Tensor

from ..._registry import LossInfo, register_loss
from ..._types import ClassWeights, Mode, Reduction
from ..._validation import check_number
from .._base import SegLoss
from .._prepare import Prepared, prepare
from .._stats import channel_mean, reduce, soft_sums


def tversky_index_stage(prep: Prepared, *, alpha: float, beta: float, smooth: float,
                        batch: bool = False) -> Tensor:
    """Tversky index (TP + s) / (TP + alpha FP + beta FN + s) per (B, C) ((1, C) with ``batch``)."""
    tp, sum_p, sum_t = soft_sums(prep, batch)
    fp, fn = sum_p - tp, sum_t - tp
    return (tp + smooth) / (tp + alpha * fp + beta * fn + smooth)


def check_tversky_params(alpha: float, beta: float, smooth: float) -> None:
    """Validate the Tversky weights and smoothing shared by the Tversky family."""
    check_number(alpha, "alpha", low=0.0)
    check_number(beta, "beta", low=0.0)
    check_number(smooth, "smooth", low=0.0)


def tversky_loss(logits: Tensor, target: Tensor, mask: Tensor | None = None, *,
                 mode: Mode = "auto", from_logits: bool = True, reduction: Reduction = "mean",
                 include_background: bool = True, ignore_index: int | None = None,
                 class_weights: ClassWeights = None, alpha: float = 0.3, beta: float = 0.7,
                 smooth: float = 1.0, batch: bool = False) -> Tensor:
    r"""Tversky loss: a Dice loss with separate weights on false positives and false negatives.

    .. math::
        TI = \frac{TP + s}{TP + \alpha\,FP + \beta\,FN + s}, \qquad L = 1 - TI

    Region-based loss (Salehi et al. 2017). ``alpha`` weighs false positives and ``beta`` false
    negatives; ``alpha = beta = 0.5`` gives the Dice loss with smoothing ``s / 2``, and
    ``alpha = beta = 1`` the Jaccard loss.

    Args:
        logits: (B, C, *S) logits (probabilities with ``from_logits=False``).
        target: see :func:`seglosses.losses._prepare.prepare`.
        mask: optional bool (B, 1, *S) or (B, *S); False voxels count nowhere.
        mode, from_logits, reduction, include_background, ignore_index, class_weights: the
            shared parameters (``docs/api.md``).
        alpha: weight of false positives (>= 0).
        beta: weight of false negatives (>= 0).
        smooth: s, added to numerator and denominator (>= 0).
        batch: pool the sums over the batch; ``reduction="none"`` then gives shape (1,).

    Shape:
        Output: scalar for ``"mean"``/``"sum"``, (B,) for ``"none"`` ((1,) with ``batch``).

    Raises:
        ValueError: negative ``alpha``, ``beta`` or ``smooth``; bad input (see ``prepare``).

    Example:
        >>> import torch
        >>> logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]])
        >>> target = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
        >>> tversky_loss(logits, target)
        tensor(0.1503)

    References:
        Salehi, Erdogmus, Gholipour, "Tversky loss function for image segmentation using 3D
        fully convolutional deep networks", MLMI 2017, arXiv:1706.05721.
    """
    check_tversky_params(alpha, beta, smooth)
    prep = prepare(logits, target, mask, mode=mode, from_logits=from_logits,
                   include_background=include_background, ignore_index=ignore_index,
                   class_weights=class_weights)
    index = tversky_index_stage(prep, alpha=alpha, beta=beta, smooth=smooth, batch=batch)
    return reduce(channel_mean(1.0 - index, prep), reduction)


@register_loss(LossInfo(
    name="tversky", family="region", source="Salehi et al. 2017", arxiv="1706.05721",
    summary="1 - Tversky index; alpha weighs false positives, beta false negatives.",
    params={"alpha": "weight of false positives", "beta": "weight of false negatives",
            "smooth": "added to numerator and denominator", "batch": "pool sums over the batch"},
    value_range=(0.0, 1.0), in_paper=True,
))
class TverskyLoss(SegLoss):
    """Module form of :func:`tversky_loss`."""

    function = staticmethod(tversky_loss)

    def __init__(self, *, alpha: float = 0.3, beta: float = 0.7, smooth: float = 1.0,
                 batch: bool = False, **shared: object) -> None:
        params = dict(alpha=alpha, beta=beta, smooth=smooth, batch=batch)
        super().__init__(**params, **shared)  # type: ignore[arg-type]
