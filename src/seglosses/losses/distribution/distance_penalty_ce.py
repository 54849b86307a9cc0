"""Distance-map-penalised cross-entropy (Caliva et al. 2019)."""

from __future__ import annotations

import torch
from torch import Tensor

from ..._registry import LossInfo, register_loss
from ..._types import ClassWeights, Mode, Reduction
from ..._validation import check_number
from .._base import SegLoss
from .._distance import Spacing, check_spacing, distance_to_boundary
from .._prepare import prepare
from .._stats import pixel_mean, reduce
from .bce import cross_entropy_map


def distance_penalty_ce_loss(logits: Tensor, target: Tensor, mask: Tensor | None = None, *,
                             mode: Mode = "auto", from_logits: bool = True,
                             reduction: Reduction = "mean", include_background: bool = True,
                             ignore_index: int | None = None, class_weights: ClassWeights = None,
                             scale: float = 1.0, spacing: Spacing = None) -> Tensor:
    r"""Cross-entropy weighted by an inverted, normalised distance map of the target.

    .. math::
        \ell_i = (1 + \phi_i)\, CE_i, \qquad
        \phi_i = \mathrm{scale} \left(1 - \frac{d_i}{\max_j d_j}\right), \qquad
        d = \mathrm{dist\_to\_boundary}(t > 0.5)

    Distribution-based loss of Caliva et al. 2019: voxels near the target boundary weigh up to
    ``1 + scale``, the voxels farthest from it weigh 1. ``max d`` runs over the valid voxels
    of each (sample, channel); ``phi = 0`` where ``max d = 0`` (an empty or full target).
    ``CE`` is the per-voxel binary cross-entropy (per channel) or, in multiclass mode, the
    categorical cross-entropy, whose voxel takes ``phi`` of the map of its own class,
    ``sum_c t_c phi_c`` (for C = 2 this equals binary mode). The map comes from the detached
    target and carries no gradient; masked and ignored voxels take no part in it.
    ``include_background`` has no effect (as in
    :func:`~seglosses.losses.distribution.bce.bce_loss`).

    Args:
        logits: (B, C, *S) logits (probabilities with ``from_logits=False``).
        target: see :func:`seglosses.losses._prepare.prepare`.
        mask: optional bool (B, 1, *S) or (B, *S); False voxels count nowhere.
        mode, from_logits, reduction, include_background, ignore_index, class_weights: the
            shared parameters (``docs/api.md``); ``class_weights`` weigh voxels of each class.
        scale: weight of the penalty term (>= 0); 0 gives plain cross-entropy.
        spacing: voxel size, one number or one per spatial dim (``None``: 1).

    Shape:
        Output: scalar for ``"mean"``/``"sum"``, (B,) for ``"none"``.

    Raises:
        ValueError: negative ``scale``, bad ``spacing``; bad input (see ``prepare``).

    Example:
        >>> import torch
        >>> logits = torch.tensor([[[[2.0, -1.0, 0.5], [0.5, -3.0, 1.0]]]])
        >>> target = torch.tensor([[[[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]]])
        >>> distance_penalty_ce_loss(logits, target)
        tensor(0.6219)

    References:
        Caliva, Iriondo, Martinez, Majumdar, Pedoia, "Distance map loss penalty term for
        semantic segmentation", MIDL 2019, arXiv:1908.03679.
    """
    check_number(scale, "scale", low=0.0)
    prep = prepare(logits, target, mask, mode=mode, from_logits=from_logits,
                   include_background=include_background, ignore_index=ignore_index,
                   class_weights=class_weights)
    space = check_spacing(spacing, len(prep.spatial_dims))
    dtype = prep.dtype
    d = distance_to_boundary(prep.target.detach() > 0.5, prep.valid, space, dtype)
    d_max = d.flatten(2).amax(-1).view(*d.shape[:2], *([1] * len(prep.spatial_dims)))
    phi = torch.where(d_max > 0, scale * (1.0 - d / d_max.clamp_min(1e-12)), torch.zeros_like(d))
    if prep.mode == "multiclass":
        phi = (prep.target.detach() * phi).sum(dim=1, keepdim=True)
    per_voxel = (1.0 + phi) * cross_entropy_map(prep)
    return reduce(pixel_mean(per_voxel, prep), reduction)


@register_loss(LossInfo(
    name="distance_penalty_ce", family="distribution", source="Caliva et al. 2019",
    arxiv="1908.03679",
    summary="Cross-entropy weighted by 1 + an inverted, normalised target distance map.",
    params={"scale": "weight of the distance-map penalty (0: plain cross-entropy)",
            "spacing": "voxel size for the distance map, one number or one per spatial dim"},
    compilable=False, needs_distance_maps=True,
    notes="Multiclass: each voxel takes the penalty of its own class's map (sum_c t_c phi_c). "
          "Masked and ignored voxels take no part in the distance map.",
))
class DistancePenaltyCELoss(SegLoss):
    """Module form of :func:`distance_penalty_ce_loss`."""

    function = staticmethod(distance_penalty_ce_loss)

    def __init__(self, *, scale: float = 1.0, spacing: Spacing = None,
                 **shared: object) -> None:
        super().__init__(scale=scale, spacing=spacing, **shared)  # type: ignore[arg-type]
