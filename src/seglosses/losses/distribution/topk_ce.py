"""Top-k cross-entropy (hard voxel mining)."""

from __future__ import annotations

import torch
from torch import Tensor

from ..._registry import LossInfo, register_loss
from ..._types import ClassWeights, Mode, Reduction
from ..._validation import check_number
from .._base import SegLoss
from .._prepare import Prepared, prepare
from .._stats import class_weight_map, reduce
from .bce import cross_entropy_map


def topk_mean_stage(per_voxel: Tensor, prep: Prepared, *, k: float) -> Tensor:
    """Mean of the largest ``ceil(k N)`` valid entries of each sample of ``per_voxel``: (B,).

    ``per_voxel`` is (B, C, *S) (every (channel, voxel) entry is a candidate; ``class_weights``
    multiply channel c) or (B, 1, *S) (a term already summed over classes). Masked and ignored
    entries are not candidates and N counts the valid ones only; the count is at least 1, and a
    sample with no valid entry gives 0. ``k N`` is rounded down by a relative 1e-12 before the
    ceiling so that float noise (``0.1 * 70 = 7.000000000000001``) does not add an entry.
    """
    cw = class_weight_map(prep)
    if cw is not None and per_voxel.shape[1] == prep.num_classes:
        per_voxel = per_voxel * cw
    b = per_voxel.shape[0]
    flat = per_voxel.reshape(b, -1)
    if prep.weight is None:
        n = torch.full((b,), flat.shape[1], dtype=torch.float64, device=flat.device)
        candidates = flat
    else:
        valid = prep.weight.expand(per_voxel.shape).reshape(b, -1) > 0
        n = valid.sum(dim=1).to(torch.float64)
        candidates = torch.where(valid, flat, torch.full_like(flat, -torch.inf))
    count = torch.minimum(torch.ceil(n * k * (1.0 - 1e-12)).clamp_min(1.0), n)
    ranked = candidates.sort(dim=1, descending=True, stable=True).values
    rank = torch.arange(flat.shape[1], device=flat.device)
    chosen = torch.where(rank.unsqueeze(0) < count.long().unsqueeze(1), ranked,
                         torch.zeros_like(ranked))
    return chosen.sum(dim=1) / count.clamp_min(1.0).to(flat.dtype)


def topk_ce_loss(logits: Tensor, target: Tensor, mask: Tensor | None = None, *,
                 mode: Mode = "auto", from_logits: bool = True, reduction: Reduction = "mean",
                 include_background: bool = True, ignore_index: int | None = None,
                 class_weights: ClassWeights = None, k: float = 0.1) -> Tensor:
    r"""Top-k cross-entropy: the mean of the largest ``k`` fraction of per-voxel CE values.

    .. math::
        L = \frac{1}{K} \sum_{i \in \mathrm{top}_K(\ell)} \ell_i, \qquad
        K = \max(1, \lceil k\, N_{valid} \rceil)

    Distribution-based loss (Wu et al. 2016, bootstrapped cross-entropy), with the per-voxel
    cross-entropy of :func:`~seglosses.losses.distribution.bce.bce_loss`. The selection runs
    per sample over its valid voxels only (masked and ignored voxels are never selected and
    do not count in N). In binary/multilabel mode every (channel, voxel) entry is a candidate;
    in multiclass mode a voxel's term is already summed over classes. ``k = 1`` gives
    :func:`~seglosses.losses.distribution.bce.bce_loss`. Gradients reach the selected voxels
    only.

    Args:
        logits: (B, C, *S) logits (probabilities with ``from_logits=False``).
        target: see :func:`seglosses.losses._prepare.prepare`.
        mask: optional bool (B, 1, *S) or (B, *S); False voxels count nowhere.
        mode, from_logits, reduction, include_background, ignore_index, class_weights: the
            shared parameters (``docs/api.md``); ``class_weights`` weigh voxels of each class
            before the selection.
        k: fraction of the valid voxels kept, in (0, 1].

    Shape:
        Output: scalar for ``"mean"``/``"sum"``, (B,) for ``"none"``.

    Raises:
        ValueError: ``k`` outside (0, 1]; bad input.

    Example:
        >>> import torch
        >>> logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]])
        >>> target = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
        >>> topk_ce_loss(logits, target, k=0.5)
        tensor(0.3937)

    References:
        Wu, Shen, van den Hengel, "Bridging category-level and instance-level semantic image
        segmentation", arXiv:1605.06885, 2016.
    """
    check_number(k, "k", low=0.0, high=1.0, low_open=True)
    prep = prepare(logits, target, mask, mode=mode, from_logits=from_logits,
                   include_background=include_background, ignore_index=ignore_index,
                   class_weights=class_weights)
    return reduce(topk_mean_stage(cross_entropy_map(prep), prep, k=k), reduction)


@register_loss(LossInfo(
    name="topk_ce", family="distribution", source="Wu et al. 2016", arxiv="1605.06885",
    summary="Mean of the largest k fraction of the per-voxel cross-entropy values per sample.",
    params={"k": "fraction of the valid voxels kept, in (0, 1]"},
    notes="Candidates are the valid voxels of the sample (every (channel, voxel) entry in "
          "binary/multilabel mode); masked and ignored voxels are never selected.",
))
class TopKCELoss(SegLoss):
    """Module form of :func:`topk_ce_loss`."""

    function = staticmethod(topk_ce_loss)

    def __init__(self, *, k: float = 0.1, **shared: object) -> None:
        super().__init__(k=k, **shared)  # type: ignore[arg-type]
