"""Dice + top-k cross-entropy."""

from __future__ import annotations

from torch import Tensor

from ..._registry import LossInfo, register_loss
from ..._types import ClassWeights, Mode, Reduction
from ..._validation import check_number
from .._base import SegLoss
from .._prepare import prepare
from .._stats import reduce, weighted_terms
from ..distribution.bce import cross_entropy_map
from ..distribution.topk_ce import topk_mean_stage
from .dice_ce import check_lambdas, dice_per_sample_stage


def dice_topk_loss(logits: Tensor, target: Tensor, mask: Tensor | None = None, *,
                   mode: Mode = "auto", from_logits: bool = True, reduction: Reduction = "mean",
                   include_background: bool = True, ignore_index: int | None = None,
                   class_weights: ClassWeights = None, lambda_dice: float = 1.0,
                   lambda_topk: float = 1.0, smooth: float = 1.0, k: float = 0.1) -> Tensor:
    r"""Dice loss plus top-k cross-entropy.

    .. math::
        L = \lambda_{dice}\, L_{dice} + \lambda_{topk}\, L_{topk}

    Compound loss (Ma et al. 2021, the best compound of their benchmark). ``L_dice`` is
    :func:`~seglosses.losses.region.dice.dice_loss` with ``smooth``; ``L_topk`` is
    :func:`~seglosses.losses.distribution.topk_ce.topk_ce_loss` with ``k``, so the value equals
    the weighted sum of the two losses called separately. ``include_background`` affects the
    Dice term only.

    Args:
        logits: (B, C, *S) logits (probabilities with ``from_logits=False``).
        target: see :func:`seglosses.losses._prepare.prepare`.
        mask: optional bool (B, 1, *S) or (B, *S); False voxels count nowhere.
        mode, from_logits, reduction, include_background, ignore_index, class_weights: the
            shared parameters (``docs/api.md``).
        lambda_dice: weight of the Dice loss (>= 0).
        lambda_topk: weight of the top-k cross-entropy (>= 0).
        smooth: s of the Dice loss (>= 0).
        k: fraction of the valid voxels kept by the top-k cross-entropy, in (0, 1].

    Shape:
        Output: scalar for ``"mean"``/``"sum"``, (B,) for ``"none"``.

    Raises:
        ValueError: negative weights or ``smooth``, ``k`` outside (0, 1]; bad input.

    Example:
        >>> import torch
        >>> logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]])
        >>> target = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
        >>> dice_topk_loss(logits, target, k=0.5)
        tensor(0.5624)

    References:
        Ma, Chen, Ng, Huang, Li, Li, Yang, Martel, "Loss odyssey in medical image
        segmentation", Medical Image Analysis 2021, arXiv:2005.13449.
    """
    check_lambdas(lambda_dice=lambda_dice, lambda_topk=lambda_topk)
    check_number(smooth, "smooth", low=0.0)
    check_number(k, "k", low=0.0, high=1.0, low_open=True)
    prep = prepare(logits, target, mask, mode=mode, from_logits=from_logits,
                   include_background=include_background, ignore_index=ignore_index,
                   class_weights=class_weights)
    dice = dice_per_sample_stage(prep, smooth=smooth)
    topk = topk_mean_stage(cross_entropy_map(prep), prep, k=k)
    return reduce(weighted_terms((lambda_dice, dice), (lambda_topk, topk)), reduction)


@register_loss(LossInfo(
    name="dice_topk", family="compound", source="Ma et al. 2021 (Loss odyssey)",
    arxiv="2005.13449",
    summary="lambda_dice * Dice loss + lambda_topk * top-k cross-entropy.",
    params={"lambda_dice": "weight of the Dice loss",
            "lambda_topk": "weight of the top-k cross-entropy",
            "smooth": "Dice smooth, added to numerator and denominator",
            "k": "fraction of the valid voxels kept by the top-k cross-entropy"},
))
class DiceTopKLoss(SegLoss):
    """Module form of :func:`dice_topk_loss`."""

    function = staticmethod(dice_topk_loss)

    def __init__(self, *, lambda_dice: float = 1.0, lambda_topk: float = 1.0,
                 smooth: float = 1.0, k: float = 0.1, **shared: object) -> None:
        super().__init__(lambda_dice=lambda_dice, lambda_topk=lambda_topk,  # type: ignore[arg-type]
                         smooth=smooth, k=k, **shared)
