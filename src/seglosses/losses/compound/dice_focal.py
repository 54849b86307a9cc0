"""Dice + focal loss."""

from __future__ import annotations

from torch import Tensor

from ..._registry import LossInfo, register_loss
from ..._types import ClassWeights, Mode, Reduction
from ..._validation import check_number
from .._base import SegLoss
from .._prepare import prepare
from .._stats import reduce, weighted_terms
from ..distribution.focal import check_focal_params, focal_mean_stage
from .dice_ce import check_lambdas, dice_per_sample_stage


def dice_focal_loss(logits: Tensor, target: Tensor, mask: Tensor | None = None, *,
                    mode: Mode = "auto", from_logits: bool = True,
                    reduction: Reduction = "mean", include_background: bool = True,
                    ignore_index: int | None = None, class_weights: ClassWeights = None,
                    lambda_dice: float = 1.0, lambda_focal: float = 1.0, smooth: float = 1.0,
                    alpha: float | None = 0.25, gamma: float = 2.0) -> Tensor:
    r"""Dice loss plus focal loss.

    .. math::
        L = \lambda_{dice}\, L_{dice} + \lambda_{focal}\, L_{focal}

    Compound loss. ``L_dice`` is :func:`~seglosses.losses.region.dice.dice_loss` with
    ``smooth``; ``L_focal`` is :func:`~seglosses.losses.distribution.focal.focal_loss` with
    ``alpha`` and ``gamma`` (same defaults), so the value equals the weighted sum of the two
    losses called separately. ``include_background`` affects the Dice term only.

    Args:
        logits: (B, C, *S) logits (probabilities with ``from_logits=False``).
        target: see :func:`seglosses.losses._prepare.prepare`.
        mask: optional bool (B, 1, *S) or (B, *S); False voxels count nowhere.
        mode, from_logits, reduction, include_background, ignore_index, class_weights: the
            shared parameters (``docs/api.md``).
        lambda_dice: weight of the Dice loss (>= 0).
        lambda_focal: weight of the focal loss (>= 0).
        smooth: s of the Dice loss (>= 0).
        alpha: focal positive-class weight in [0, 1], or ``None``.
        gamma: focal exponent (>= 0).

    Shape:
        Output: scalar for ``"mean"``/``"sum"``, (B,) for ``"none"``.

    Raises:
        ValueError: negative weights, ``smooth`` or ``gamma``, ``alpha`` outside [0, 1].

    Example:
        >>> import torch
        >>> logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]])
        >>> target = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
        >>> dice_focal_loss(logits, target)
        tensor(0.1773)

    References:
        Zhu et al., "AnatomyNet: deep learning for fast and fully automated whole-volume
        segmentation of head and neck anatomy", Medical Physics 2019, arXiv:1808.05238.
    """
    check_lambdas(lambda_dice=lambda_dice, lambda_focal=lambda_focal)
    check_number(smooth, "smooth", low=0.0)
    check_focal_params(alpha, gamma)
    prep = prepare(logits, target, mask, mode=mode, from_logits=from_logits,
                   include_background=include_background, ignore_index=ignore_index,
                   class_weights=class_weights)
    dice = dice_per_sample_stage(prep, smooth=smooth)
    focal = focal_mean_stage(prep, alpha=alpha, gamma=gamma)
    return reduce(weighted_terms((lambda_dice, dice), (lambda_focal, focal)), reduction)


@register_loss(LossInfo(
    name="dice_focal", family="compound", source="Zhu et al. 2019 (AnatomyNet)",
    arxiv="1808.05238",
    summary="lambda_dice * Dice loss + lambda_focal * focal loss.",
    params={"lambda_dice": "weight of the Dice loss", "lambda_focal": "weight of the focal loss",
            "smooth": "Dice smooth, added to numerator and denominator",
            "alpha": "focal positive-class weight (None: unweighted)",
            "gamma": "focal exponent"},
))
class DiceFocalLoss(SegLoss):
    """Module form of :func:`dice_focal_loss`."""

    function = staticmethod(dice_focal_loss)

    def __init__(self, *, lambda_dice: float = 1.0, lambda_focal: float = 1.0,
                 smooth: float = 1.0, alpha: float | None = 0.25, gamma: float = 2.0,
                 **shared: object) -> None:
        super().__init__(  # type: ignore[arg-type]
            lambda_dice=lambda_dice, lambda_focal=lambda_focal, smooth=smooth, alpha=alpha,
            gamma=gamma, **shared)
