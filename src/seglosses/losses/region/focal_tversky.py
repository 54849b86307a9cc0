"""Focal Tversky loss."""

from __future__ import annotations

import torch
from torch import Tensor

from ..._registry import LossInfo, register_loss
from ..._types import ClassWeights, Mode, Reduction
from ..._validation import check_number
from .._base import SegLoss
from .._prepare import prepare
from .._stats import channel_mean, reduce
from .tversky import check_tversky_params, tversky_index_stage


def focal_power(base: Tensor, gamma: float) -> Tensor:
    """``base ** gamma`` for a base >= 0 (e.g. 1 - TI, or -log p) and ``gamma >= 0``.

    The base is clamped away from 0 (to the dtype's smallest normal number) so that
    ``gamma < 1`` gives no infinite or NaN gradient; a base that is exactly 0 (or a
    rounding-negative one) gives ``0 ** gamma`` (0, or 1 for ``gamma = 0``) and a zero
    gradient.
    """
    tiny = torch.finfo(base.dtype).tiny
    powered = base.clamp_min(tiny) ** gamma
    at_zero = torch.zeros_like(powered) if gamma > 0 else torch.ones_like(powered)
    return torch.where(base > 0, powered, at_zero)


def focal_tversky_loss(logits: Tensor, target: Tensor, mask: Tensor | None = None, *,
                       mode: Mode = "auto", from_logits: bool = True,
                       reduction: Reduction = "mean", include_background: bool = True,
                       ignore_index: int | None = None, class_weights: ClassWeights = None,
                       alpha: float = 0.3, beta: float = 0.7, gamma: float = 0.75,
                       smooth: float = 1.0, batch: bool = False) -> Tensor:
    r"""Focal Tversky loss: the Tversky loss raised to the power ``gamma`` per channel.

    .. math::
        TI = \frac{TP + s}{TP + \alpha\,FP + \beta\,FN + s}, \qquad L = (1 - TI)^{\gamma}

    Region-based loss (Abraham & Khan 2019, who write the exponent as ``1/gamma`` with
    ``gamma = 4/3``; our ``gamma`` is their ``1/gamma``, default 0.75). With ``gamma < 1``
    the slope of ``x ** gamma`` grows as ``x = 1 - TI`` goes to 0, so channels that are nearly
    right keep a larger gradient than under the Tversky loss; ``gamma = 1`` gives
    :func:`~seglosses.losses.region.tversky.tversky_loss`. The exponent is applied per
    (sample, channel) before averaging over channels. The base is clamped away from 0, so a
    perfect prediction gives 0 with a finite gradient.

    Args:
        logits: (B, C, *S) logits (probabilities with ``from_logits=False``).
        target: see :func:`seglosses.losses._prepare.prepare`.
        mask: optional bool (B, 1, *S) or (B, *S); False voxels count nowhere.
        mode, from_logits, reduction, include_background, ignore_index, class_weights: the
            shared parameters (``docs/api.md``).
        alpha: weight of false positives (>= 0).
        beta: weight of false negatives (>= 0).
        gamma: focal exponent (> 0).
        smooth: s, added to numerator and denominator (>= 0).
        batch: pool the sums over the batch; ``reduction="none"`` then gives shape (1,).

    Shape:
        Output: scalar for ``"mean"``/``"sum"``, (B,) for ``"none"`` ((1,) with ``batch``).

    Raises:
        ValueError: negative ``alpha``, ``beta`` or ``smooth``, ``gamma <= 0``; bad input.

    Example:
        >>> import torch
        >>> logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]])
        >>> target = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
        >>> focal_tversky_loss(logits, target)
        tensor(0.2413)

    References:
        Abraham, Khan, "A novel focal Tversky loss function with improved attention U-Net for
        lesion segmentation", ISBI 2019, arXiv:1810.07842.
    """
    check_tversky_params(alpha, beta, smooth)
    check_number(gamma, "gamma", low=0.0, low_open=True)
    prep = prepare(logits, target, mask, mode=mode, from_logits=from_logits,
                   include_background=include_background, ignore_index=ignore_index,
                   class_weights=class_weights)
    index = tversky_index_stage(prep, alpha=alpha, beta=beta, smooth=smooth, batch=batch)
    return reduce(channel_mean(focal_power(1.0 - index, gamma), prep), reduction)


@register_loss(LossInfo(
    name="focal_tversky", family="region", source="Abraham & Khan 2019", arxiv="1810.07842",
    summary="(1 - Tversky index) ** gamma per channel.",
    params={"alpha": "weight of false positives", "beta": "weight of false negatives",
            "gamma": "focal exponent (Abraham & Khan's 1/gamma)",
            "smooth": "added to numerator and denominator", "batch": "pool sums over the batch"},
    value_range=(0.0, 1.0), in_paper=True,
    notes="Exponent applied per channel before the channel mean (smp applies it after).",
))
class FocalTverskyLoss(SegLoss):
    """Module form of :func:`focal_tversky_loss`."""

    function = staticmethod(focal_tversky_loss)

    def __init__(self, *, alpha: float = 0.3, beta: float = 0.7, gamma: float = 0.75,
                 smooth: float = 1.0, batch: bool = False, **shared: object) -> None:
        params = dict(alpha=alpha, beta=beta, gamma=gamma, smooth=smooth, batch=batch)
        super().__init__(**params, **shared)  # type: ignore[arg-type]
