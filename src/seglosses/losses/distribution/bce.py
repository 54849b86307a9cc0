"""Binary cross-entropy (categorical cross-entropy in multiclass mode)."""

from __future__ import annotations

from torch import Tensor

from ..._registry import LossInfo, register_loss
from ..._types import ClassWeights, Mode, Reduction
from .._base import SegLoss
from .._pixel import binary_focal_mean, softmax_focal_mean
from .._prepare import Prepared, prepare
from .._stats import class_weight_map, reduce


def cross_entropy_map(prep: Prepared) -> Tensor:
    """Per-voxel cross-entropy: (B, C, *S) for binary/multilabel, (B, 1, *S) for multiclass.

    Binary/multilabel: ``-[t log p + (1 - t) log(1 - p)]`` per channel. Multiclass:
    ``-sum_c w_c t_c log p_c`` with the class weights ``w_c`` (1 when none are given).
    """
    t = prep.target
    if prep.mode == "multiclass":
        term = t * prep.log_prob
        cw = class_weight_map(prep)
        if cw is not None:
            term = term * cw
        return -term.sum(dim=1, keepdim=True)
    return prep.binary_cross_entropy()


def cross_entropy_mean_stage(prep: Prepared) -> Tensor:
    """Per-sample mean of :func:`cross_entropy_map` over valid voxels and channels, (B,);
    binary and multilabel from logits in one fused node (:mod:`.._pixel`)."""
    if prep.mode == "multiclass":
        return softmax_focal_mean(prep, gamma=0.0, fallback=lambda: cross_entropy_map(prep))
    return binary_focal_mean(prep, fallback=lambda: cross_entropy_map(prep))


def bce_loss(logits: Tensor, target: Tensor, mask: Tensor | None = None, *, mode: Mode = "auto",
             from_logits: bool = True, reduction: Reduction = "mean",
             include_background: bool = True, ignore_index: int | None = None,
             class_weights: ClassWeights = None) -> Tensor:
    r"""Binary cross-entropy, or categorical cross-entropy in multiclass mode.

    .. math::
        \ell_i = -[t_i \log p_i + (1 - t_i) \log(1 - p_i)], \qquad
        \ell_i^{mc} = -\textstyle\sum_c t_{ic} \log p_{ic}

    Distribution-based loss (survey eq. 1). Logs come from log-sigmoid / log-softmax of the
    logits. ``L[b]`` is the mean over valid voxels (and channels in binary/multilabel mode).

    Args:
        logits: (B, C, *S) logits (probabilities with ``from_logits=False``).
        target: see :func:`seglosses.losses._prepare.prepare`.
        mask: optional bool (B, 1, *S) or (B, *S).
        mode, from_logits, reduction, include_background, ignore_index, class_weights: the
            shared parameters (``docs/api.md``); ``class_weights`` weigh voxels of each class.

    Shape:
        Output: scalar for ``"mean"``/``"sum"``, (B,) for ``"none"``.

    Raises:
        ValueError, TypeError: bad input (see :func:`~seglosses.losses._prepare.prepare`).

    Example:
        >>> import torch
        >>> logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]])
        >>> target = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
        >>> bce_loss(logits, target)
        tensor(0.2407)

    References:
        Jadon, "A survey of loss functions for semantic segmentation", CIBCB 2020,
        arXiv:2006.14822, eq. 1.
    """
    prep = prepare(logits, target, mask, mode=mode, from_logits=from_logits,
                   include_background=include_background, ignore_index=ignore_index,
                   class_weights=class_weights)
    return reduce(cross_entropy_mean_stage(prep), reduction)


@register_loss(LossInfo(
    name="bce", family="distribution", source="Jadon 2020 (survey eq. 1)", arxiv="2006.14822",
    summary="Binary cross-entropy; categorical cross-entropy in multiclass mode.",
    in_paper=True,
))
class BCELoss(SegLoss):
    """Module form of :func:`bce_loss`."""

    function = staticmethod(bce_loss)

    def __init__(self, **shared: object) -> None:
        super().__init__(**shared)  # type: ignore[arg-type]
