"""Boundary (surface) loss (Kervadec et al. 2019)."""

from __future__ import annotations

import math

from torch import Tensor

from ..._registry import LossInfo, register_loss
from ..._types import ClassWeights, Mode, Reduction
from .._base import SegLoss
from .._distance import Spacing, channel_pixel_mean, check_spacing, signed_distance
from .._prepare import prepare
from .._stats import reduce


def boundary_loss(logits: Tensor, target: Tensor, mask: Tensor | None = None, *,
                  mode: Mode = "auto", from_logits: bool = True, reduction: Reduction = "mean",
                  include_background: bool = True, ignore_index: int | None = None,
                  class_weights: ClassWeights = None, spacing: Spacing = None) -> Tensor:
    r"""Probabilities integrated against the signed distance map of the target.

    .. math::
        \ell_i = p_i \, \mathrm{signed\_distance}(t > 0.5)_i, \qquad
        \mathrm{signed\_distance}(m) = \mathrm{edt}(\lnot m) - \mathrm{edt}(m)

    Boundary-based loss of Kervadec et al. 2019: a regional integral that equals, up to a
    constant, a distance between the predicted and the target contours. The signed distance
    is negative inside the target, so the loss is **negative** at a good prediction and its
    minimum depends on the target; it is meant to be added to a regional loss (e.g.
    ``dice + 0.01 * boundary``). Per class channel, ``L[b]`` is the mean over valid voxels and
    the channels used (multiclass with ``include_background=False`` leaves class 0 out). The
    map comes from the detached target and carries no gradient; masked and ignored voxels
    take no part in it; an empty or full target channel has an all-zero map.

    Args:
        logits: (B, C, *S) logits (probabilities with ``from_logits=False``).
        target: see :func:`seglosses.losses._prepare.prepare`.
        mask: optional bool (B, 1, *S) or (B, *S); False voxels count nowhere.
        mode, from_logits, reduction, include_background, ignore_index, class_weights: the
            shared parameters (``docs/api.md``); ``class_weights`` multiply channel c.
        spacing: voxel size, one number or one per spatial dim (``None``: 1).

    Shape:
        Output: scalar for ``"mean"``/``"sum"``, (B,) for ``"none"``.

    Raises:
        ValueError: bad ``spacing``; bad input (see ``prepare``).

    Example:
        >>> import torch
        >>> logits = torch.tensor([[[[2.0, -1.0, 0.5], [0.5, -3.0, 1.0]]]])
        >>> target = torch.tensor([[[[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]]])
        >>> boundary_loss(logits, target)
        tensor(0.2534)

    References:
        Kervadec, Bouchtiba, Desrosiers, Granger, Dolz, Ben Ayed, "Boundary loss for highly
        unbalanced segmentation", MIDL 2019 / Medical Image Analysis 2021, arXiv:1812.07032.
    """
    prep = prepare(logits, target, mask, mode=mode, from_logits=from_logits,
                   include_background=include_background, ignore_index=ignore_index,
                   class_weights=class_weights)
    space = check_spacing(spacing, len(prep.spatial_dims))
    sd = signed_distance(prep.target.detach() > 0.5, prep.valid, space, prep.dtype)
    return reduce(channel_pixel_mean(prep.prob * sd, prep), reduction)


@register_loss(LossInfo(
    name="boundary", family="boundary", source="Kervadec et al. 2019", arxiv="1812.07032",
    summary="Mean of p times the signed distance map of the target (negative inside).",
    params={"spacing": "voxel size for the distance map, one number or one per spatial dim"},
    value_range=(-math.inf, math.inf), compilable=False, needs_distance_maps=True,
    notes="Signed distance edt(~m) - edt(m) as SPEC section 2; Kervadec's reference code "
          "shifts the inside by 1 (boundary voxels 0). Negative values are expected.",
))
class BoundaryLoss(SegLoss):
    """Module form of :func:`boundary_loss`."""

    function = staticmethod(boundary_loss)

    def __init__(self, *, spacing: Spacing = None, **shared: object) -> None:
        super().__init__(spacing=spacing, **shared)  # type: ignore[arg-type]
