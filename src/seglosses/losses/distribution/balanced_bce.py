"""Balanced binary cross-entropy (Xie & Tu's class-balanced weighting)."""

from __future__ import annotations

from torch import Tensor

from ..._registry import LossInfo, register_loss
from ..._types import ClassWeights, Mode, Reduction
from .._base import SegLoss
from .._prepare import Prepared, prepare
from .._stats import reduce, valid_count, weighted_sum
from .weighted_bce import channel_view, weighted_bce_mean_stage


def balance_stage(prep: Prepared) -> Tensor:
    """``beta = 1 - sum t / N`` per (sample, channel) over the valid voxels, detached: (B, C).

    A (sample, channel) with no valid voxel gets ``beta = 1`` (it contributes nothing).
    """
    t = prep.target.detach()
    return 1.0 - weighted_sum(t, prep) / valid_count(prep).clamp_min(1.0)


def balanced_bce_loss(logits: Tensor, target: Tensor, mask: Tensor | None = None, *,
                      mode: Mode = "auto", from_logits: bool = True,
                      reduction: Reduction = "mean", include_background: bool = True,
                      ignore_index: int | None = None,
                      class_weights: ClassWeights = None) -> Tensor:
    r"""Balanced binary cross-entropy: positives weighted by ``beta``, negatives by ``1 - beta``.

    .. math::
        \ell_i = -[\beta\, t_i \log p_i + (1 - \beta)(1 - t_i) \log(1 - p_i)], \qquad
        \beta = 1 - \frac{\sum_i t_i}{N}

    Distribution-based loss (survey eq. 3; Xie & Tu 2015). ``beta`` is the fraction of
    negative target mass among the N valid voxels, computed per sample and channel and
    detached, so each class's total weight is the other class's share. A target that is empty
    (``beta = 1``) or full (``beta = 0``) leaves only one term, which is then zero: such a
    sample gives 0 and no gradient, as the definition implies. Multiclass mode applies the
    formula per class channel to the softmax output and the one-hot target (one-vs-rest).
    ``L[b]`` is the mean over valid voxels and channels.

    Args:
        logits: (B, C, *S) logits (probabilities with ``from_logits=False``).
        target: see :func:`seglosses.losses._prepare.prepare`.
        mask: optional bool (B, 1, *S) or (B, *S); False voxels count nowhere.
        mode, from_logits, reduction, include_background, ignore_index, class_weights: the
            shared parameters (``docs/api.md``); ``class_weights`` weigh the voxels of channel c.

    Shape:
        Output: scalar for ``"mean"``/``"sum"``, (B,) for ``"none"``.

    Example:
        >>> import torch
        >>> logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]])
        >>> target = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
        >>> balanced_bce_loss(logits, target)
        tensor(0.1204)

    References:
        Xie, Tu, "Holistically-nested edge detection", ICCV 2015, arXiv:1504.06375.
        Jadon, "A survey of loss functions for semantic segmentation", CIBCB 2020,
        arXiv:2006.14822, eq. 3.
    """
    prep = prepare(logits, target, mask, mode=mode, from_logits=from_logits,
                   include_background=include_background, ignore_index=ignore_index,
                   class_weights=class_weights)
    beta = channel_view(balance_stage(prep), prep)
    return reduce(weighted_bce_mean_stage(prep, beta, 1.0 - beta), reduction)


@register_loss(LossInfo(
    name="balanced_bce", family="distribution", source="Xie & Tu 2015 (survey eq. 3)",
    arxiv="1504.06375",
    summary="Cross-entropy with positives weighted by beta = 1 - sum t / N, negatives by "
            "1 - beta.",
    params={},
    notes="beta per sample and channel over valid voxels, detached; multiclass mode is "
          "one-vs-rest per class channel.",
))
class BalancedBCELoss(SegLoss):
    """Module form of :func:`balanced_bce_loss`."""

    function = staticmethod(balanced_bce_loss)

    def __init__(self, **shared: object) -> None:
        super().__init__(**shared)  # type: ignore[arg-type]
