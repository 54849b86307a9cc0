"""Dice + cross-entropy (the nnU-Net default loss)."""

from __future__ import annotations

from torch import Tensor

from ..._registry import LossInfo, register_loss
from ..._types import ClassWeights, Mode, Reduction
from ..._validation import check_number
from .._base import SegLoss
from .._prepare import Prepared, prepare
from .._stats import channel_mean, reduce, weighted_terms
from ..distribution.bce import cross_entropy_mean_stage
from ..region.dice import dice_score_stage


def check_lambdas(**weights: float) -> None:
    """Every term weight is a number >= 0."""
    for name, value in weights.items():
        check_number(value, name, low=0.0)


def dice_per_sample_stage(prep: Prepared, *, smooth: float) -> Tensor:
    """The soft Dice loss per sample, (B,): ``1 - DSC`` averaged over the channels used."""
    return channel_mean(1.0 - dice_score_stage(prep, smooth=smooth), prep)


def dice_ce_loss(logits: Tensor, target: Tensor, mask: Tensor | None = None, *,
                 mode: Mode = "auto", from_logits: bool = True, reduction: Reduction = "mean",
                 include_background: bool = True, ignore_index: int | None = None,
                 class_weights: ClassWeights = None, lambda_dice: float = 1.0,
                 lambda_ce: float = 1.0, smooth: float = 1.0) -> Tensor:
    r"""Dice loss plus cross-entropy.

    .. math::
        L = \lambda_{dice}\, L_{dice} + \lambda_{ce}\, L_{ce}

    Compound loss (the default of nnU-Net, Isensee et al. 2021). ``L_dice`` is
    :func:`~seglosses.losses.region.dice.dice_loss` with ``smooth``, ``L_ce`` is
    :func:`~seglosses.losses.distribution.bce.bce_loss` (binary cross-entropy, categorical in
    multiclass mode). Both are computed from one prepared input, so the value equals the
    weighted sum of the two losses called separately. ``include_background`` affects the Dice
    term only; ``class_weights`` average the Dice channels and weigh the cross-entropy voxels.

    Args:
        logits: (B, C, *S) logits (probabilities with ``from_logits=False``).
        target: see :func:`seglosses.losses._prepare.prepare`.
        mask: optional bool (B, 1, *S) or (B, *S); False voxels count nowhere.
        mode, from_logits, reduction, include_background, ignore_index, class_weights: the
            shared parameters (``docs/api.md``).
        lambda_dice: weight of the Dice loss (>= 0).
        lambda_ce: weight of the cross-entropy (>= 0).
        smooth: s of the Dice loss, added to its numerator and denominator (>= 0).

    Shape:
        Output: scalar for ``"mean"``/``"sum"``, (B,) for ``"none"``.

    Raises:
        ValueError: negative weights or ``smooth``; bad input.

    Example:
        >>> import torch
        >>> logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]])
        >>> target = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
        >>> dice_ce_loss(logits, target)
        tensor(0.4094)

    References:
        Isensee, Jaeger, Kohl, Petersen, Maier-Hein, "nnU-Net: a self-configuring method for
        deep learning-based biomedical image segmentation", Nature Methods 2021,
        arXiv:1809.10486.
    """
    check_lambdas(lambda_dice=lambda_dice, lambda_ce=lambda_ce)
    check_number(smooth, "smooth", low=0.0)
    prep = prepare(logits, target, mask, mode=mode, from_logits=from_logits,
                   include_background=include_background, ignore_index=ignore_index,
                   class_weights=class_weights)
    dice = dice_per_sample_stage(prep, smooth=smooth)
    ce = cross_entropy_mean_stage(prep)
    return reduce(weighted_terms((lambda_dice, dice), (lambda_ce, ce)), reduction)


@register_loss(LossInfo(
    name="dice_ce", family="compound", source="Isensee et al. 2021 (nnU-Net)",
    arxiv="1809.10486",
    summary="lambda_dice * Dice loss + lambda_ce * cross-entropy.",
    params={"lambda_dice": "weight of the Dice loss", "lambda_ce": "weight of the cross-entropy",
            "smooth": "Dice smooth, added to numerator and denominator"},
))
class DiceCELoss(SegLoss):
    """Module form of :func:`dice_ce_loss`."""

    function = staticmethod(dice_ce_loss)

    def __init__(self, *, lambda_dice: float = 1.0, lambda_ce: float = 1.0, smooth: float = 1.0,
                 **shared: object) -> None:
        super().__init__(lambda_dice=lambda_dice, lambda_ce=lambda_ce,  # type: ignore[arg-type]
                         smooth=smooth, **shared)
