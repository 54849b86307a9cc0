"""Generalized Dice loss."""

from __future__ import annotations

import torch
from torch import Tensor

from ..._registry import LossInfo, register_loss
from ..._types import ClassWeights, Mode, Reduction
from ..._validation import check_number
from .._base import SegLoss
from .._prepare import Prepared, prepare
from .._stats import reduce, soft_sums, weighted_sum


def _class_stats(prep: Prepared) -> tuple[Tensor, Tensor, Tensor]:
    """TP, sum p and sum t per (B, K) over the classes K that enter the loss.

    Binary mode uses the two classes {background, foreground}, with ``p_bg = 1 - p`` and
    ``t_bg = 1 - t``; the background sums are taken directly (not as differences of the
    foreground ones) so that an absent background is detected exactly.
    """
    if prep.mode != "binary":
        # the shared statistics of every channel (one fused node), then the channels used
        tp, sum_p, sum_t = soft_sums(prep)
        if len(prep.channels) != prep.num_classes:
            tp, sum_p, sum_t = (v[:, prep.channels] for v in (tp, sum_p, sum_t))
        return tp, sum_p, sum_t
    p, t = prep.prob, prep.target
    p, t = torch.cat([prep.prob_complement, p], dim=1), torch.cat([1.0 - t, t], dim=1)
    return weighted_sum(p * t, prep), weighted_sum(p, prep), weighted_sum(t, prep)


def generalized_dice_loss(logits: Tensor, target: Tensor, mask: Tensor | None = None, *,
                          mode: Mode = "auto", from_logits: bool = True,
                          reduction: Reduction = "mean", include_background: bool = True,
                          ignore_index: int | None = None, class_weights: ClassWeights = None,
                          smooth: float = 1e-5) -> Tensor:
    r"""Generalized Dice loss: one Dice ratio over all classes, weighted by inverse squared volume.

    .. math::
        w_c = \frac{1}{(\sum_i t_{ic})^2 + s}, \qquad
        L = 1 - 2\,\frac{\sum_c w_c\,TP_c}{\sum_c w_c (\sum_i p_{ic} + \sum_i t_{ic})}

    Region-based loss of Sudre et al. 2017, per sample. A class absent from the sample's target
    (``sum t_c = 0``) takes the largest weight of the present classes instead of ``1 / s``, so
    that its false positives are penalised like those of the smallest present class without
    swamping the loss. A sample in which no class is present gives ``L = 0`` and no gradient
    (no overlap can be scored; MONAI gives 0 too). Binary mode uses the two classes
    {background, foreground} (``p_bg = 1 - p``, ``t_bg = 1 - t``); multilabel mode uses the C
    channels as the classes; multiclass mode the classes selected by ``include_background``.
    ``class_weights`` multiply the weights ``w_c`` (a common factor cancels out); they have no
    effect in binary mode. ``L`` lies in [0, 1].

    Args:
        logits: (B, C, *S) logits (probabilities with ``from_logits=False``).
        target: see :func:`seglosses.losses._prepare.prepare`.
        mask: optional bool (B, 1, *S) or (B, *S); False voxels count nowhere.
        mode, from_logits, reduction, include_background, ignore_index, class_weights: the
            shared parameters (``docs/api.md``).
        smooth: s, added to the squared volume in the weights (>= 0).

    Shape:
        Output: scalar for ``"mean"``/``"sum"``, (B,) for ``"none"``.

    Raises:
        ValueError: negative ``smooth``; bad input (see ``prepare``).

    Example:
        >>> import torch
        >>> logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]])
        >>> target = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
        >>> generalized_dice_loss(logits, target)
        tensor(0.2033)

    References:
        Sudre, Li, Vercauteren, Ourselin, Cardoso, "Generalised Dice overlap as a deep learning
        loss function for highly unbalanced segmentations", DLMIA 2017, arXiv:1707.03237.
    """
    check_number(smooth, "smooth", low=0.0)
    prep = prepare(logits, target, mask, mode=mode, from_logits=from_logits,
                   include_background=include_background, ignore_index=ignore_index,
                   class_weights=class_weights)
    tp, sum_p, sum_t = _class_stats(prep)
    present = sum_t > 0
    inverse = 1.0 / (sum_t.clamp_min(0.0) ** 2 + smooth).clamp_min(torch.finfo(sum_t.dtype).tiny)
    weight = torch.where(present, inverse, torch.zeros_like(inverse))
    largest = weight.amax(dim=1, keepdim=True)
    weight = torch.where(present, weight, largest.expand_as(weight))
    if prep.class_weights is not None and prep.mode != "binary":
        weight = weight * prep.class_weights[prep.channels]
    numerator = 2.0 * (weight * tp).sum(dim=1)
    denominator = (weight * (sum_p + sum_t)).sum(dim=1)
    any_present = present.any(dim=1) & (denominator > 0)
    safe = torch.where(any_present, denominator, torch.ones_like(denominator))
    loss = torch.where(any_present, 1.0 - numerator / safe, torch.zeros_like(numerator))
    return reduce(loss, reduction)


@register_loss(LossInfo(
    name="generalized_dice", family="region", source="Sudre et al. 2017", arxiv="1707.03237",
    summary="1 - Dice ratio summed over classes weighted by inverse squared target volume.",
    params={"smooth": "added to the squared target volume in the class weights"},
    value_range=(0.0, 1.0),
    notes="Absent classes take the largest present weight (as MONAI); all absent gives 0.",
))
class GeneralizedDiceLoss(SegLoss):
    """Module form of :func:`generalized_dice_loss`."""

    function = staticmethod(generalized_dice_loss)

    def __init__(self, *, smooth: float = 1e-5, **shared: object) -> None:
        super().__init__(smooth=smooth, **shared)  # type: ignore[arg-type]
