"""Exponential logarithmic loss."""

from __future__ import annotations

import torch
from torch import Tensor

from ..._registry import LossInfo, register_loss
from ..._types import ClassWeights, Mode, Reduction
from ..._validation import check_number
from .._base import SegLoss
from .._prepare import Prepared, prepare
from .._stats import channel_mean, class_weight_map, pixel_mean, reduce, valid_count, weighted_sum
from ..region.dice import dice_score_stage
from ..region.focal_tversky import focal_power


def label_weight_stage(mass: Tensor, total: Tensor) -> Tensor:
    """``w_l = (N / N_l) ** 0.5`` from label masses ``N_l`` and valid counts ``N``, detached.

    A label absent from the sample (``N_l = 0``) gets weight 0: it has no voxel to weigh.
    """
    mass, total = mass.detach(), total.detach()
    present = mass > 0
    return torch.where(present, (total / torch.where(present, mass, torch.ones_like(mass))).sqrt(),
                       torch.zeros_like(mass))


def exp_log_cross_map(prep: Prepared, *, gamma: float, balanced: bool) -> Tensor:
    """Per-voxel ``w_y (-ln p_y) ** gamma``: (B, C, *S) binary/multilabel, (B, 1, *S) multiclass.

    Soft targets weigh each label by its target value (``sum_l t_l w_l (-ln p_l) ** gamma``),
    which is the definition for one-hot targets. Label masses ``N_l`` and counts ``N`` run over
    the valid voxels of each sample.
    """
    t = prep.target
    if prep.mode == "multiclass":
        term = t * focal_power(-prep.log_prob, gamma)
        if balanced:
            w = label_weight_stage(weighted_sum(t, prep), valid_count(prep))
            term = term * w.reshape(*w.shape, *([1] * len(prep.spatial_dims)))
        cw = class_weight_map(prep)
        if cw is not None:
            term = term * cw
        return term.sum(dim=1, keepdim=True)
    pos = t * focal_power(-prep.log_prob, gamma)
    neg = (1.0 - t) * focal_power(-prep.log_one_minus_prob, gamma)
    if balanced:
        n = valid_count(prep)
        n_pos = weighted_sum(t, prep)
        view = (*n.shape, *([1] * len(prep.spatial_dims)))
        pos = pos * label_weight_stage(n_pos, n).reshape(view)
        neg = neg * label_weight_stage(n - n_pos, n).reshape(view)
    return pos + neg


def exp_log_loss(logits: Tensor, target: Tensor, mask: Tensor | None = None, *,
                 mode: Mode = "auto", from_logits: bool = True, reduction: Reduction = "mean",
                 include_background: bool = True, ignore_index: int | None = None,
                 class_weights: ClassWeights = None, w_dice: float = 0.8, w_cross: float = 0.2,
                 gamma: float = 0.3, smooth: float = 1.0, balanced: bool = True) -> Tensor:
    r"""Exponential logarithmic loss: Dice and cross-entropy terms raised to the power ``gamma``.

    .. math::
        L = w_{dice}\, \mathrm{mean}_c \big(-\ln \mathrm{DSC}_c\big)^{\gamma}
          + w_{cross}\, \mathrm{mean}_i\, w_{y_i} \big(-\ln p_{y_i}\big)^{\gamma}, \qquad
        w_l = \Big(\frac{N}{N_l}\Big)^{1/2}

    Compound loss (Wong et al. 2018). ``DSC_c = (2 TP + s)/(sum p + sum t + s)`` per channel,
    averaged over the channels used (``include_background``, normalised ``class_weights``).
    ``p_{y_i}`` is the probability of voxel i's true label: in binary/multilabel mode each
    channel has the two labels {0, 1}, ``p`` for t = 1 and ``1 - p`` for t = 0 (soft targets
    mix the two terms by ``t``). With ``balanced``, ``w_l`` uses the count ``N_l`` of label l
    among the N valid voxels of the sample (per channel in binary/multilabel mode); a label
    absent from the sample gets no weight. ``gamma < 1`` makes ``x ** gamma`` infinitely steep
    at ``x = 0``: its base is clamped away from 0, so a perfect prediction has finite
    gradients.

    Args:
        logits: (B, C, *S) logits (probabilities with ``from_logits=False``).
        target: see :func:`seglosses.losses._prepare.prepare`.
        mask: optional bool (B, 1, *S) or (B, *S); False voxels count nowhere.
        mode, from_logits, reduction, include_background, ignore_index, class_weights: the
            shared parameters (``docs/api.md``).
        w_dice: weight of the Dice term (>= 0).
        w_cross: weight of the cross-entropy term (>= 0).
        gamma: exponent of both terms (> 0).
        smooth: s, added to the Dice numerator and denominator (> 0, as ``ln 0`` is undefined).
        balanced: weigh labels by ``(N / N_l) ** 0.5``; ``False``: weight 1.

    Shape:
        Output: scalar for ``"mean"``/``"sum"``, (B,) for ``"none"``.

    Raises:
        ValueError: negative weights, ``gamma <= 0`` or ``smooth <= 0``; bad input.

    Example:
        >>> import torch
        >>> logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]])
        >>> target = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
        >>> exp_log_loss(logits, target)
        tensor(0.6551)

    References:
        Wong, Moradi, Tang, Syeda-Mahmood, "3D segmentation with exponential logarithmic loss
        for highly unbalanced object sizes", MICCAI 2018, arXiv:1809.00076.
    """
    check_number(w_dice, "w_dice", low=0.0)
    check_number(w_cross, "w_cross", low=0.0)
    check_number(gamma, "gamma", low=0.0, low_open=True)
    check_number(smooth, "smooth", low=0.0, low_open=True)
    if not isinstance(balanced, bool):
        raise TypeError(f"`balanced` must be a bool; got {type(balanced).__name__}")
    prep = prepare(logits, target, mask, mode=mode, from_logits=from_logits,
                   include_background=include_background, ignore_index=ignore_index,
                   class_weights=class_weights)
    dsc = dice_score_stage(prep, smooth=smooth)
    dice_term = channel_mean(focal_power(-torch.log(dsc), gamma), prep)
    cross_term = pixel_mean(exp_log_cross_map(prep, gamma=gamma, balanced=balanced), prep)
    return reduce(w_dice * dice_term + w_cross * cross_term, reduction)


@register_loss(LossInfo(
    name="exp_log", family="compound", source="Wong et al. 2018", arxiv="1809.00076",
    summary="w_dice * mean (-ln Dice)^gamma + w_cross * mean w_l (-ln p_l)^gamma.",
    params={"w_dice": "weight of the Dice term", "w_cross": "weight of the cross-entropy term",
            "gamma": "exponent of both terms",
            "smooth": "added to the Dice numerator and denominator (> 0)",
            "balanced": "label weights (N / N_l) ** 0.5 over the sample's valid voxels"},
    in_paper=True,
    notes="Label frequencies N_l are counted per sample over its valid voxels; the base of "
          "x ** gamma is clamped away from 0 for finite gradients.",
))
class ExpLogLoss(SegLoss):
    """Module form of :func:`exp_log_loss`."""

    function = staticmethod(exp_log_loss)

    def __init__(self, *, w_dice: float = 0.8, w_cross: float = 0.2, gamma: float = 0.3,
                 smooth: float = 1.0, balanced: bool = True, **shared: object) -> None:
        super().__init__(w_dice=w_dice, w_cross=w_cross, gamma=gamma,  # type: ignore[arg-type]
                         smooth=smooth, balanced=balanced, **shared)
