"""Exact Euclidean distance transforms of batched boolean masks: the public entry points."""

from __future__ import annotations

import math
from typing import Sequence, Union

import torch
from torch import Tensor

from .._validation import check_int, check_tensor, shape_str
from . import _edt_torch

Spacing = Union[float, Sequence[float], Tensor, None]

__all__ = ["dist_to_boundary", "edt", "signed_distance"]


def check_spacing(spacing: Spacing, spatial_dims: int, name: str = "spacing") -> tuple[float, ...]:
    """Resolve ``spacing`` to one positive finite float per spatial dim.

    ``None`` means 1 along every axis; one number applies to every axis.

    Raises:
        TypeError: ``spacing`` is not a number or a sequence of numbers.
        ValueError: wrong length, or a value that is not finite and positive.
    """
    if spacing is None:
        return (1.0,) * spatial_dims
    if isinstance(spacing, Tensor):
        spacing = spacing.detach().cpu().flatten().tolist()
    values = [spacing] if isinstance(spacing, (int, float)) else spacing
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise TypeError(
            f"`{name}` must be a positive number or a sequence of {spatial_dims} positive "
            f"numbers; got {type(spacing).__name__} {spacing!r}"
        )
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in values):
        raise TypeError(
            f"`{name}` must hold numbers; got {spacing!r}"
        )
    out = tuple(float(v) for v in values)
    if len(out) == 1 and spatial_dims > 1:
        out = out * spatial_dims
    if len(out) != spatial_dims:
        raise ValueError(
            f"`{name}` must hold one value per spatial dim ({spatial_dims}); got {len(out)} "
            f"values {list(out)}"
        )
    if not all(math.isfinite(v) and v > 0 for v in out):
        raise ValueError(f"`{name}` values must be finite and > 0; got {list(out)}")
    return out


def _resolve_spatial_dims(mask: Tensor, spatial_dims: int | None) -> int:
    if spatial_dims is None:
        nd = mask.dim() - 2
        if nd < 1 or nd > 3:
            raise ValueError(
                f"`mask` must have shape (B, C, *S) with 1 to 3 spatial dims (3 to 5 dims) "
                f"when `spatial_dims` is not given; got {mask.dim()} dims with shape "
                f"{shape_str(mask.shape)}; pass `spatial_dims` for other layouts"
            )
        return nd
    check_int(spatial_dims, "spatial_dims")
    if spatial_dims < 1 or spatial_dims > 3:
        raise ValueError(f"`spatial_dims` must lie in [1, 3]; got {spatial_dims}")
    if spatial_dims > mask.dim():
        raise ValueError(
            f"`spatial_dims` ({spatial_dims}) must not exceed the number of dims of `mask`; "
            f"got `mask` of shape {shape_str(mask.shape)}"
        )
    return spatial_dims


def _check_mask(mask: Tensor) -> None:
    check_tensor(mask, "mask")
    if mask.dtype != torch.bool:
        raise TypeError(
            f"`mask` must be a bool tensor; got dtype {mask.dtype} (use `mask > 0.5` or "
            f"`mask.bool()`)"
        )


def edt(mask: Tensor, spacing: Spacing = None, spatial_dims: int | None = None) -> Tensor:
    r"""Exact Euclidean distance transform of a batch of boolean masks.

    For every True voxel, the Euclidean distance (scaled by ``spacing``) to the nearest False
    voxel of the same item; 0 on False voxels:

    .. math::

        \mathrm{edt}(m)_x = \min_{y : m_y = 0} \lVert (x - y) \odot s \rVert_2

    Per item this equals ``scipy.ndimage.distance_transform_edt(item, sampling=spacing)``,
    except that an item with no False voxel gives ``inf`` everywhere (SciPy measures to the
    edge of the array instead). Computed on the mask's own device with a separable exact
    algorithm vectorised over all lines of the batch; no gradient flows through it.

    Args:
        mask: bool tensor ``(*B, *S)``: any number of leading batch dims, then 1 to 3 spatial
            dims.
        spacing: voxel size along each spatial dim: ``None`` (1), one number, or a sequence
            of ``spatial_dims`` positive numbers.
        spatial_dims: how many trailing dims are spatial (1 to 3). Default
            ``mask.dim() - 2``, the (B, C, *S) layout.

    Returns:
        float32 tensor of the mask's shape and device.

    Raises:
        TypeError: ``mask`` is not a bool tensor; ``spacing`` is not numeric.
        ValueError: spatial dims outside 1..3; ``spacing`` of the wrong length or not positive.

    Example:
        >>> from seglosses.ops import edt
        >>> m = torch.tensor([[[0, 1, 1, 1, 1, 0]]], dtype=torch.bool)
        >>> edt(m)
        tensor([[[0., 1., 2., 2., 1., 0.]]])
        >>> edt(m, spacing=0.5)
        tensor([[[0.0000, 0.5000, 1.0000, 1.0000, 0.5000, 0.0000]]])
    """
    return squared_edt(mask, spacing, spatial_dims).sqrt_()


def squared_edt(mask: Tensor, spacing: Spacing = None, spatial_dims: int | None = None) -> Tensor:
    """The square of :func:`edt` (exact up to float32 rounding; avoids the square root)."""
    _check_mask(mask)
    nd = _resolve_spatial_dims(mask, spatial_dims)
    steps = check_spacing(spacing, nd)
    mask = mask.detach()
    if mask.numel() == 0:
        return torch.zeros(mask.shape, dtype=torch.float32, device=mask.device)
    return _edt_torch.squared_edt(mask, steps, nd)


def _both_sides(mask: Tensor, spacing: Spacing, spatial_dims: int | None) -> tuple[Tensor, Tensor, int]:
    """``edt(m)`` and ``edt(~m)`` from one batched call, and the number of spatial dims."""
    _check_mask(mask)
    nd = _resolve_spatial_dims(mask, spatial_dims)
    both = edt(torch.stack((mask, ~mask)), spacing, nd)
    return both[0], both[1], nd


def _zero_trivial(dist: Tensor, mask: Tensor, nd: int) -> Tensor:
    """Zero the items that are all True or all False (their maps are all inf otherwise)."""
    flat = mask.flatten(mask.dim() - nd)
    present = flat.any(-1) & ~flat.all(-1)
    present = present.view(*present.shape, *([1] * nd))
    return torch.where(present, dist, torch.zeros((), dtype=dist.dtype, device=dist.device))


def dist_to_boundary(mask: Tensor, spacing: Spacing = None,
                     spatial_dims: int | None = None) -> Tensor:
    r"""Unsigned distance to the mask's boundary: ``edt(m) + edt(~m)``.

    Inside voxels get the distance to the nearest outside voxel, outside voxels the distance
    to the nearest inside voxel. An item that is empty or full gives all zeros.

    Args:
        mask: bool tensor ``(*B, *S)``, as for :func:`edt`.
        spacing: voxel size, as for :func:`edt`.
        spatial_dims: number of trailing spatial dims, as for :func:`edt`.

    Returns:
        float32 tensor of the mask's shape and device.

    Example:
        >>> from seglosses.ops import dist_to_boundary
        >>> m = torch.tensor([[[0, 0, 1, 1, 1, 0]]], dtype=torch.bool)
        >>> dist_to_boundary(m)
        tensor([[[2., 1., 1., 2., 1., 1.]]])
    """
    inside, outside, nd = _both_sides(mask, spacing, spatial_dims)
    return _zero_trivial(inside + outside, mask, nd)


def signed_distance(mask: Tensor, spacing: Spacing = None,
                    spatial_dims: int | None = None) -> Tensor:
    r"""Signed distance map ``edt(~m) - edt(m)``: negative inside, positive outside.

    An item that is empty or full gives all zeros.

    Args:
        mask: bool tensor ``(*B, *S)``, as for :func:`edt`.
        spacing: voxel size, as for :func:`edt`.
        spatial_dims: number of trailing spatial dims, as for :func:`edt`.

    Returns:
        float32 tensor of the mask's shape and device.

    Example:
        >>> from seglosses.ops import signed_distance
        >>> m = torch.tensor([[[0, 0, 1, 1, 1, 0]]], dtype=torch.bool)
        >>> signed_distance(m)
        tensor([[[ 2.,  1., -1., -2., -1.,  1.]]])
    """
    inside, outside, nd = _both_sides(mask, spacing, spatial_dims)
    return _zero_trivial(outside - inside, mask, nd)
