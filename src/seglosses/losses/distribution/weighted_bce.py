"""Weighted binary cross-entropy: positives weighted by ``beta``."""

from __future__ import annotations

import torch
from torch import Tensor

from ..._registry import LossInfo, register_loss
from ..._types import ClassWeights, Mode, Reduction
from ..._validation import check_number
from .._base import SegLoss
from .._pixel import Factor, binary_focal_mean
from .._prepare import Prepared, prepare
from .._stats import pixel_mean, reduce, valid_count, weighted_sum

#: Bounds of the automatic ``beta = N_neg / N_pos``.
BETA_MIN, BETA_MAX = 1e-3, 1e3


def weighted_bce_map(prep: Prepared, pos_weight: Tensor | float,
                     neg_weight: Tensor | float = 1.0) -> Tensor:
    """Per-voxel ``-[w_pos t log p + w_neg (1 - t) log(1 - p)]`` per channel, (B, C, *S).

    Applied per class channel in every mode (one-vs-rest on the softmax output in multiclass
    mode). The weights are numbers or tensors broadcasting against (B, C, *S).
    """
    t = prep.target
    return -(pos_weight * t * prep.log_prob + neg_weight * (1.0 - t) * prep.log_one_minus_prob)


def weighted_bce_mean_stage(prep: Prepared, pos_weight: Factor,
                            neg_weight: Factor = 1.0) -> Tensor:
    """Per-sample mean of :func:`weighted_bce_map` over valid voxels and channels, (B,);
    binary and multilabel from logits in one fused node (:mod:`.._pixel`). The weights are
    numbers or (B or 1, C, 1, ...) tensors."""
    if prep.mode == "multiclass":
        return pixel_mean(weighted_bce_map(prep, pos_weight, neg_weight), prep)
    return binary_focal_mean(prep, pos=pos_weight, neg=neg_weight,
                             fallback=lambda: weighted_bce_map(prep, pos_weight, neg_weight))


def channel_view(per_channel: Tensor, prep: Prepared) -> Tensor:
    """Reshape a (B or 1, C) tensor to (B or 1, C, 1, ...) to broadcast over the voxels."""
    return per_channel.reshape(*per_channel.shape[:2], *([1] * len(prep.spatial_dims)))


def auto_beta_stage(prep: Prepared) -> Tensor:
    """``beta_c = N_neg / N_pos`` of channel c over the valid voxels of the whole batch, (1, C).

    Detached and clamped to [1e-3, 1e3]; a channel with no positive voxel gets 1e3 (its
    positive term is zero anyway) rather than a division by zero.
    """
    t = prep.target.detach()
    n_pos = weighted_sum(t, prep, batch=True)
    n_neg = valid_count(prep, batch=True) - n_pos
    ratio = n_neg.clamp_min(0.0) / n_pos.clamp_min(torch.finfo(n_pos.dtype).tiny)
    return ratio.clamp(BETA_MIN, BETA_MAX)


def weighted_bce_loss(logits: Tensor, target: Tensor, mask: Tensor | None = None, *,
                      mode: Mode = "auto", from_logits: bool = True,
                      reduction: Reduction = "mean", include_background: bool = True,
                      ignore_index: int | None = None, class_weights: ClassWeights = None,
                      beta: float | None = None) -> Tensor:
    r"""Weighted binary cross-entropy: the positive term is multiplied by ``beta``.

    .. math::
        \ell_i = -[\beta\, t_i \log p_i + (1 - t_i) \log(1 - p_i)], \qquad
        \beta_{\text{auto}} = \mathrm{clamp}\Big(\frac{N_{neg}}{N_{pos}}, 10^{-3}, 10^{3}\Big)

    Distribution-based loss (survey eq. 2). ``beta > 1`` reduces false negatives, ``beta < 1``
    false positives. With ``beta=None``, ``beta`` is the ratio of negative to positive target
    mass over the valid voxels of the whole batch (so a sample's value depends on the other
    samples), per channel, detached. Multilabel mode uses one ``beta_c`` per channel.
    Multiclass mode applies the binary formula per class channel to the softmax output and the
    one-hot target (one-vs-rest), with its own ``beta_c`` per class; with ``beta=1`` it is
    therefore the per-channel BCE of the softmax output, not the categorical cross-entropy of
    :func:`~seglosses.losses.distribution.bce.bce_loss`. ``L[b]`` is the mean over valid voxels
    and channels.

    Args:
        logits: (B, C, *S) logits (probabilities with ``from_logits=False``).
        target: see :func:`seglosses.losses._prepare.prepare`.
        mask: optional bool (B, 1, *S) or (B, *S); False voxels count nowhere.
        mode, from_logits, reduction, include_background, ignore_index, class_weights: the
            shared parameters (``docs/api.md``); ``class_weights`` weigh the voxels of channel c.
        beta: weight of the positive term (>= 0), or ``None`` for ``N_neg / N_pos``.

    Shape:
        Output: scalar for ``"mean"``/``"sum"``, (B,) for ``"none"``.

    Raises:
        ValueError: negative ``beta``; bad input.

    Example:
        >>> import torch
        >>> logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]])
        >>> target = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
        >>> weighted_bce_loss(logits, target, beta=3.0)
        tensor(0.5412)

    References:
        Jadon, "A survey of loss functions for semantic segmentation", CIBCB 2020,
        arXiv:2006.14822, eq. 2.
    """
    check_number(beta, "beta", low=0.0, allow_none=True)
    prep = prepare(logits, target, mask, mode=mode, from_logits=from_logits,
                   include_background=include_background, ignore_index=ignore_index,
                   class_weights=class_weights)
    pos_weight = channel_view(auto_beta_stage(prep), prep) if beta is None else float(beta)
    return reduce(weighted_bce_mean_stage(prep, pos_weight), reduction)


@register_loss(LossInfo(
    name="weighted_bce", family="distribution", source="Jadon 2020 (survey eq. 2)",
    arxiv="2006.14822",
    summary="Cross-entropy with the positive term weighted by beta (default N_neg/N_pos).",
    params={"beta": "weight of the positive term; None: N_neg/N_pos of the batch target, "
            "per channel, clamped to [1e-3, 1e3]"},
    in_paper=True, batch_dependent=True,
    notes="beta=None computes N_neg/N_pos from the batch (the survey's code uses a fixed "
          "constant); multiclass mode is one-vs-rest per class channel with beta_c per class.",
))
class WeightedBCELoss(SegLoss):
    """Module form of :func:`weighted_bce_loss`."""

    function = staticmethod(weighted_bce_loss)

    def __init__(self, *, beta: float | None = None, **shared: object) -> None:
        super().__init__(beta=beta, **shared)  # type: ignore[arg-type]
