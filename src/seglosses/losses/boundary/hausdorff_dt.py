"""Hausdorff-distance loss from distance transforms (Karimi & Salcudean 2019)."""

from __future__ import annotations

import torch
from torch import Tensor

from ..._registry import LossInfo, register_loss
from ..._types import ClassWeights, Mode, Reduction
from ..._validation import check_number
from .._base import SegLoss
from .._distance import (Spacing, channel_pixel_mean, check_spacing, distance_to_boundary,
                         predicted_region)
from .._prepare import prepare
from .._stats import reduce


def hausdorff_dt_loss(logits: Tensor, target: Tensor, mask: Tensor | None = None, *,
                      mode: Mode = "auto", from_logits: bool = True,
                      reduction: Reduction = "mean", include_background: bool = True,
                      ignore_index: int | None = None, class_weights: ClassWeights = None,
                      alpha: float = 2.0, spacing: Spacing = None) -> Tensor:
    r"""Squared error weighted by the distance maps of target and prediction.

    .. math::
        \ell_i = (p_i - t_i)^2 \left(d_{t,i}^{\,\alpha} + d_{p,i}^{\,\alpha}\right), \qquad
        d_t = \mathrm{dist\_to\_boundary}(t > 0.5), \quad
        d_p = \mathrm{dist\_to\_boundary}(p > 0.5)

    Boundary-based loss of Karimi & Salcudean 2019 (the "HD-DT" loss): an error far from both
    boundaries costs most, which approximates the one-sided Hausdorff distances. Per class
    channel, ``L[b]`` is the mean over valid voxels and the channels used (multiclass with
    ``include_background=False`` leaves class 0 out). ``d_p`` comes from the hard prediction:
    ``p > 0.5`` per channel, and in multiclass mode the arg-max class, which equals
    ``p_c > 0.5`` wherever some class exceeds 0.5 and keeps the other voxels in their most
    probable class instead of in no class. Both maps come from detached masks and carry no
    gradient; masked and ignored voxels take no part in them.

    Args:
        logits: (B, C, *S) logits (probabilities with ``from_logits=False``).
        target: see :func:`seglosses.losses._prepare.prepare`.
        mask: optional bool (B, 1, *S) or (B, *S); False voxels count nowhere.
        mode, from_logits, reduction, include_background, ignore_index, class_weights: the
            shared parameters (``docs/api.md``); ``class_weights`` multiply channel c.
        alpha: exponent of the distances (>= 0).
        spacing: voxel size, one number or one per spatial dim (``None``: 1).

    Shape:
        Output: scalar for ``"mean"``/``"sum"``, (B,) for ``"none"``.

    Raises:
        ValueError: negative ``alpha``, bad ``spacing``; bad input (see ``prepare``).

    Example:
        >>> import torch
        >>> logits = torch.tensor([[[[2.0, -1.0, 0.5], [0.5, -3.0, 1.0]]]])
        >>> target = torch.tensor([[[[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]]])
        >>> hausdorff_dt_loss(logits, target)
        tensor(0.8454)

    References:
        Karimi, Salcudean, "Reducing the Hausdorff distance in medical image segmentation with
        convolutional neural networks", IEEE TMI 2019, arXiv:1904.10030.
    """
    check_number(alpha, "alpha", low=0.0)
    prep = prepare(logits, target, mask, mode=mode, from_logits=from_logits,
                   include_background=include_background, ignore_index=ignore_index,
                   class_weights=class_weights)
    space = check_spacing(spacing, len(prep.spatial_dims))
    dtype = prep.dtype
    masks = torch.stack((prep.target.detach() > 0.5, predicted_region(prep)))
    d_t, d_p = distance_to_boundary(masks, prep.valid, space, dtype,
                                    spatial_dims=len(prep.spatial_dims)).unbind(0)
    per_voxel = (prep.prob - prep.target) ** 2 * (d_t ** alpha + d_p ** alpha)
    return reduce(channel_pixel_mean(per_voxel, prep), reduction)


@register_loss(LossInfo(
    name="hausdorff_dt", family="boundary", source="Karimi & Salcudean 2019",
    arxiv="1904.10030",
    summary="(p - t)^2 weighted by the target and prediction distance maps to the power alpha.",
    params={"alpha": "exponent of the distances",
            "spacing": "voxel size for the distance maps, one number or one per spatial dim"},
    compilable=False, needs_distance_maps=True,
    notes="Same definition as MONAI's HausdorffDTLoss (which defaults to "
          "include_background=False, 2-D/3-D only, no mask), except that in multiclass mode "
          "the predicted map comes from the arg-max class (MONAI: p_c > 0.5 per channel). "
          "Masked and ignored voxels take no part in the distance maps.",
))
class HausdorffDTLoss(SegLoss):
    """Module form of :func:`hausdorff_dt_loss`."""

    function = staticmethod(hausdorff_dt_loss)

    def __init__(self, *, alpha: float = 2.0, spacing: Spacing = None,
                 **shared: object) -> None:
        super().__init__(alpha=alpha, spacing=spacing, **shared)  # type: ignore[arg-type]
