"""Distance-map stages shared by the distance-based losses.

Distance maps are computed from detached boolean masks with :mod:`seglosses.ops` (exact,
batched, on the tensor's own device) and carry no gradient. Masked and ignored voxels take no
part in them: a valid voxel's distance is to the nearest *valid* voxel on the other side of the
mask, so what lies under a masked voxel changes nothing. Without masked voxels the maps are
exactly those of SPEC section 2: ``dist_to_boundary(m) = edt(m) + edt(~m)`` and
``signed_distance(m) = edt(~m) - edt(m)``; a (sample, channel) whose valid voxels are all inside
or all outside has an all-zero map.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import ops
from ..ops.edt import Spacing, check_spacing
from ._prepare import Prepared
from ._stats import class_weight_map, pixel_mean

__all__ = ["Spacing", "boundary_voxels", "channel_pixel_mean", "check_spacing",
           "distance_to_boundary", "predicted_region", "signed_distance"]


def _inside_outside(region: Tensor, valid: Tensor | None) -> tuple[Tensor, Tensor]:
    if valid is None:
        return region, ~region
    valid = valid.expand_as(region)
    return region & valid, ~region & valid


def distance_to_boundary(region: Tensor, valid: Tensor | None,
                         spacing: tuple[float, ...] | None = None,
                         dtype: torch.dtype = torch.float32,
                         spatial_dims: int | None = None) -> Tensor:
    """``dist_to_boundary`` of a bool (B, C, *S) mask among the valid voxels.

    Inside voxels get the distance to the nearest valid outside voxel, outside voxels the
    distance to the nearest valid inside voxel, invalid voxels 0. A (b, c) with no valid inside
    or no valid outside voxel gives all zeros. Extra leading dims (e.g. target and prediction
    stacked, with ``spatial_dims`` given) are batched into the same call.
    """
    region = region.detach()
    inside, outside = _inside_outside(region, valid)
    nd = region.dim() - 2 if spatial_dims is None else spatial_dims
    # one batched call: squared distances to the nearest outside voxel and to the nearest
    # inside voxel (exact integers for unit spacing), square root in the compute dtype
    both = ops.squared_edt(torch.stack((~outside, ~inside)), spacing=spacing, spatial_dims=nd)
    both = both.to(dtype).sqrt()
    zero = torch.zeros((), dtype=dtype, device=both.device)
    dist = torch.where(inside, both[0], torch.where(outside, both[1], zero))
    lead = region.dim() - nd
    present = inside.flatten(lead).any(-1) & outside.flatten(lead).any(-1)
    return torch.where(present.view(*present.shape, *([1] * nd)), dist, zero)


def signed_distance(region: Tensor, valid: Tensor | None,
                    spacing: tuple[float, ...] | None = None,
                    dtype: torch.dtype = torch.float32) -> Tensor:
    """``signed_distance`` of a bool (B, C, *S) mask among the valid voxels (negative inside)."""
    dist = distance_to_boundary(region, valid, spacing, dtype)
    inside, _ = _inside_outside(region.detach(), valid)
    return torch.where(inside, -dist, dist)


def predicted_region(prep: Prepared) -> Tensor:
    """The hard prediction per channel as a bool (B, C, *S) mask, detached.

    Binary and multilabel: ``p > 0.5``. Multiclass: the one-hot of the arg-max class (the
    first on ties). This is ``p_c > 0.5`` wherever some class exceeds 0.5 and assigns the
    voxels where none does to their most probable class rather than to no class at all.
    """
    p = prep.prob.detach()
    if prep.mode == "multiclass":
        return F.one_hot(p.argmax(dim=1), prep.num_classes).movedim(-1, 1).bool()
    return p > 0.5


def boundary_voxels(region: Tensor, valid: Tensor | None) -> Tensor:
    """Voxels of a bool (B, C, *S) mask with a face neighbour outside it.

    Voxels beyond the image count as outside; invalid neighbours count as neither, so they
    never make a voxel a boundary voxel. Invalid voxels are never boundary voxels.
    """
    region = region.detach()
    inside, outside = _inside_outside(region, valid)
    nd = region.dim() - 2
    padded = F.pad(outside.to(torch.uint8), (1, 1) * nd, value=1)
    core = [slice(1, -1)] * nd
    near_outside = torch.zeros_like(inside)
    for k in range(nd):
        for shift in (slice(0, -2), slice(2, None)):
            index = list(core)
            index[k] = shift
            near_outside |= padded[(..., *index)].bool()
    return inside & near_outside


def channel_pixel_mean(per_voxel: Tensor, prep: Prepared) -> Tensor:
    """Mean of a per-channel term l[b, c, i] over valid voxels and the channels used.

    ``class_weights`` multiply channel c (not normalised); multiclass with
    ``include_background=False`` leaves channel 0 out.
    """
    cw = class_weight_map(prep)
    if cw is not None:
        per_voxel = per_voxel * cw
    if len(prep.channels) != prep.num_classes:
        per_voxel = per_voxel[:, prep.channels]
    return pixel_mean(per_voxel, prep, class_weighted=False)
