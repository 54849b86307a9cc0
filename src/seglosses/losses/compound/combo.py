"""Combo loss: weighted cross-entropy minus the Dice coefficient."""

from __future__ import annotations

from torch import Tensor

from ..._registry import LossInfo, register_loss
from ..._types import ClassWeights, Mode, Reduction
from ..._validation import check_number
from .._base import SegLoss
from .._prepare import prepare
from .._stats import channel_mean, reduce
from ..distribution.weighted_bce import weighted_bce_mean_stage
from ..region.dice import dice_score_stage


def combo_loss(logits: Tensor, target: Tensor, mask: Tensor | None = None, *, mode: Mode = "auto",
               from_logits: bool = True, reduction: Reduction = "mean",
               include_background: bool = True, ignore_index: int | None = None,
               class_weights: ClassWeights = None, alpha: float = 0.5, beta: float = 0.5,
               smooth: float = 1.0) -> Tensor:
    r"""Combo loss: a beta-weighted cross-entropy minus the soft Dice coefficient.

    .. math::
        L = \alpha \cdot \frac{1}{N} \sum_i -[\beta\, t_i \log p_i
              + (1 - \beta)(1 - t_i) \log(1 - p_i)]
            - (1 - \alpha)\, \mathrm{DSC}, \qquad
        \mathrm{DSC} = \frac{2\,TP + s}{\sum p + \sum t + s}

    Compound loss (Taghanaki et al. 2019; the survey subtracts the Dice *loss*, which has the
    wrong sign). ``beta > 0.5`` penalises false negatives more than false positives, ``alpha``
    weighs the cross-entropy against the Dice term. The value is not non-negative: it lies in
    [-(1 - alpha), inf) and reaches about -(1 - alpha) at a perfect prediction. The
    cross-entropy is the per-channel (one-vs-rest in multiclass mode) mean over valid voxels
    and channels; the Dice coefficient is averaged over the channels used
    (``include_background``) with normalised ``class_weights``.

    Args:
        logits: (B, C, *S) logits (probabilities with ``from_logits=False``).
        target: see :func:`seglosses.losses._prepare.prepare`.
        mask: optional bool (B, 1, *S) or (B, *S); False voxels count nowhere.
        mode, from_logits, reduction, include_background, ignore_index, class_weights: the
            shared parameters (``docs/api.md``).
        alpha: weight of the cross-entropy term in [0, 1]; the Dice term gets ``1 - alpha``.
        beta: weight of the positive cross-entropy term in [0, 1]; negatives get ``1 - beta``.
        smooth: s, added to the Dice numerator and denominator (>= 0).

    Shape:
        Output: scalar for ``"mean"``/``"sum"``, (B,) for ``"none"``.

    Raises:
        ValueError: ``alpha`` or ``beta`` outside [0, 1], negative ``smooth``; bad input.

    Example:
        >>> import torch
        >>> logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]])
        >>> target = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
        >>> combo_loss(logits, target)
        tensor(-0.3555)

    References:
        Taghanaki, Zheng, Zhou, Georgescu, Sharma, Xu, Comaniciu, Hamarneh, "Combo loss:
        handling input and output imbalance in multi-organ segmentation", Computerized
        Medical Imaging and Graphics 2019, arXiv:1805.02798.
    """
    check_number(alpha, "alpha", low=0.0, high=1.0)
    check_number(beta, "beta", low=0.0, high=1.0)
    check_number(smooth, "smooth", low=0.0)
    prep = prepare(logits, target, mask, mode=mode, from_logits=from_logits,
                   include_background=include_background, ignore_index=ignore_index,
                   class_weights=class_weights)
    ce = weighted_bce_mean_stage(prep, beta, 1.0 - beta)
    dsc = channel_mean(dice_score_stage(prep, smooth=smooth), prep)
    return reduce(alpha * ce - (1.0 - alpha) * dsc, reduction)


@register_loss(LossInfo(
    name="combo", family="compound", source="Taghanaki et al. 2019", arxiv="1805.02798",
    summary="alpha * beta-weighted cross-entropy - (1 - alpha) * soft Dice coefficient.",
    params={"alpha": "weight of the cross-entropy term (Dice term: 1 - alpha)",
            "beta": "weight of positives in the cross-entropy (negatives: 1 - beta)",
            "smooth": "added to the Dice numerator and denominator"},
    value_range=(-1.0, float("inf")),
    notes="Subtracts the Dice coefficient as the primary source does (the survey subtracts "
          "the Dice loss). Values reach -(1 - alpha), -0.5 at the defaults.",
))
class ComboLoss(SegLoss):
    """Module form of :func:`combo_loss`."""

    function = staticmethod(combo_loss)

    def __init__(self, *, alpha: float = 0.5, beta: float = 0.5, smooth: float = 1.0,
                 **shared: object) -> None:
        super().__init__(alpha=alpha, beta=beta, smooth=smooth, **shared)  # type: ignore[arg-type]
