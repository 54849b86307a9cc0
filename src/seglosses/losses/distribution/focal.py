"""Focal loss."""

from __future__ import annotations

import torch
from torch import Tensor

from ..._registry import LossInfo, register_loss
from ..._types import ClassWeights, Mode, Reduction
from ..._validation import check_number
from .._base import SegLoss
from .._pixel import binary_focal_mean, softmax_focal_mean
from .._prepare import Prepared, prepare
from .._stats import class_weight_map, reduce


def check_focal_params(alpha: float | None, gamma: float) -> None:
    """``alpha`` in [0, 1] or ``None``, ``gamma >= 0``."""
    check_number(alpha, "alpha", low=0.0, high=1.0, allow_none=True)
    check_number(gamma, "gamma", low=0.0)


def focal_map(prep: Prepared, *, alpha: float | None, gamma: float) -> Tensor:
    """Per-voxel focal term: (B, C, *S) for binary/multilabel, (B, 1, *S) for multiclass.

    The modulating factors ``(1 - p)^gamma`` and ``p^gamma`` are ``exp(gamma * log(.))`` of the
    log-space probabilities, so they are exact and have finite gradients for any
    ``gamma >= 0`` (and are exactly 1 for ``gamma = 0``). Multiclass:
    ``-sum_c w_c t_c (1 - p_c)^gamma log p_c`` with class weights ``w_c``; ``alpha`` does not
    enter (the specification's multiclass term is ``-(1 - p_y)^gamma log p_y``).
    """
    t = prep.target
    log_p, log_q = prep.log_prob, prep.log_one_minus_prob
    if prep.mode == "multiclass":
        term = t * torch.exp(gamma * log_q) * log_p
        cw = class_weight_map(prep)
        if cw is not None:
            term = term * cw
        return -term.sum(dim=1, keepdim=True)
    pos = t * torch.exp(gamma * log_q) * log_p
    neg = (1.0 - t) * torch.exp(gamma * log_p) * log_q
    if alpha is not None:
        pos, neg = alpha * pos, (1.0 - alpha) * neg
    return -(pos + neg)


def focal_mean_stage(prep: Prepared, *, alpha: float | None, gamma: float) -> Tensor:
    """Per-sample mean of :func:`focal_map` over valid voxels and channels, (B,); binary and
    multilabel from logits in one fused node (:mod:`.._pixel`)."""
    if prep.mode == "multiclass":
        return softmax_focal_mean(prep, gamma=gamma,
                                  fallback=lambda: focal_map(prep, alpha=alpha, gamma=gamma))
    pos, neg = (1.0, 1.0) if alpha is None else (float(alpha), 1.0 - float(alpha))
    return binary_focal_mean(prep, pos=pos, neg=neg, gamma_pos=gamma, gamma_neg=gamma,
                             fallback=lambda: focal_map(prep, alpha=alpha, gamma=gamma))


def focal_loss(logits: Tensor, target: Tensor, mask: Tensor | None = None, *, mode: Mode = "auto",
               from_logits: bool = True, reduction: Reduction = "mean",
               include_background: bool = True, ignore_index: int | None = None,
               class_weights: ClassWeights = None, alpha: float | None = 0.25,
               gamma: float = 2.0) -> Tensor:
    r"""Focal loss: cross-entropy down-weighted on well-classified voxels.

    .. math::
        \ell_i = -[\alpha\, t_i (1 - p_i)^{\gamma} \log p_i
                   + (1 - \alpha)(1 - t_i)\, p_i^{\gamma} \log(1 - p_i)], \qquad
        \ell_i^{mc} = -\textstyle\sum_c t_{ic} (1 - p_{ic})^{\gamma} \log p_{ic}

    Distribution-based loss (Lin et al. 2017). ``gamma = 0`` with ``alpha=None`` is the
    cross-entropy of :func:`~seglosses.losses.distribution.bce.bce_loss` (the survey says
    ``gamma = 1``; it is ``gamma = 0``). ``alpha=None`` drops the alpha factors. In multiclass
    mode the term is ``-(1 - p_y)^gamma log p_y`` for a voxel of class y (soft or one-hot
    targets: the ``t_c``-weighted sum), without ``alpha``, as the specification defines it;
    per-class weighting in multiclass mode is what ``class_weights`` is for. ``L[b]`` is the
    mean over valid voxels (and channels in binary/multilabel mode).

    Args:
        logits: (B, C, *S) logits (probabilities with ``from_logits=False``).
        target: see :func:`seglosses.losses._prepare.prepare`.
        mask: optional bool (B, 1, *S) or (B, *S); False voxels count nowhere.
        mode, from_logits, reduction, include_background, ignore_index, class_weights: the
            shared parameters (``docs/api.md``); ``class_weights`` weigh voxels of each class.
        alpha: weight of the positive (foreground) term in [0, 1] (binary and multilabel
            modes); ``None``: no weighting.
        gamma: focusing exponent (>= 0).

    Shape:
        Output: scalar for ``"mean"``/``"sum"``, (B,) for ``"none"``.

    Raises:
        ValueError: ``alpha`` outside [0, 1], negative ``gamma``; bad input.

    Example:
        >>> import torch
        >>> logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]])
        >>> target = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
        >>> focal_loss(logits, target)
        tensor(0.0086)

    References:
        Lin, Goyal, Girshick, He, Dollar, "Focal loss for dense object detection", ICCV 2017,
        arXiv:1708.02002.
    """
    check_focal_params(alpha, gamma)
    prep = prepare(logits, target, mask, mode=mode, from_logits=from_logits,
                   include_background=include_background, ignore_index=ignore_index,
                   class_weights=class_weights)
    return reduce(focal_mean_stage(prep, alpha=alpha, gamma=gamma), reduction)


@register_loss(LossInfo(
    name="focal", family="distribution", source="Lin et al. 2017", arxiv="1708.02002",
    summary="Cross-entropy scaled by (1 - p_t)^gamma, with alpha class balancing.",
    params={"alpha": "weight of the positive term (negatives: 1 - alpha; binary and multilabel "
                     "only); None: unweighted",
            "gamma": "focusing exponent; 0 with alpha=None gives cross-entropy"},
    in_paper=True,
    notes="The survey says gamma=1 gives cross-entropy; it is gamma=0. Multiclass: "
          "-(1 - p_y)^gamma log p_y without alpha (MONAI and kornia apply alpha there).",
))
class FocalLoss(SegLoss):
    """Module form of :func:`focal_loss`."""

    function = staticmethod(focal_loss)

    def __init__(self, *, alpha: float | None = 0.25, gamma: float = 2.0,
                 **shared: object) -> None:
        super().__init__(alpha=alpha, gamma=gamma, **shared)  # type: ignore[arg-type]
