"""Exact Euclidean distance transforms of batched boolean masks: the public entry points."""

from __future__ import annotations

import math
from typing import Literal, Sequence, Union

import torch
from torch import Tensor

from .._validation import check_choice, check_int, check_spatial_rank, check_tensor, shape_str
from . import _edt_scipy, _edt_torch

Spacing = Union[float, Sequence[float], Tensor, None]
Backend = Literal["auto", "torch", "scipy"]
BACKENDS = ("auto", "torch", "scipy")

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
        check_spatial_rank(mask, "mask", hint="pass `spatial_dims` for other layouts")
        return mask.dim() - 2
    check_int(spatial_dims, "spatial_dims", low=1, high=3)
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


def edt(mask: Tensor, spacing: Spacing = None, spatial_dims: int | None = None, *,
        backend: Backend = "auto") -> Tensor:
    r"""Exact Euclidean distance transform of a batch of boolean masks.

    For every True voxel, the Euclidean distance (scaled by ``spacing``) to the nearest False
    voxel of the same item; 0 on False voxels:

    .. math::

        \mathrm{edt}(m)_x = \min_{y : m_y = 0} \lVert (x - y) \odot s \rVert_2

    Per item this equals ``scipy.ndimage.distance_transform_edt(item, sampling=spacing)``,
    except that an item with no False voxel gives ``inf`` everywhere (SciPy measures to the
    edge of the array instead). Computed on the mask's own device, by a separable exact
    algorithm vectorised over all lines of the batch or, for CPU masks where it is faster, by
    SciPy on the items in parallel; no gradient flows through it.

    Args:
        mask: bool tensor ``(*B, *S)``: any number of leading batch dims, then 1 to 3 spatial
            dims.
        spacing: voxel size along each spatial dim: ``None`` (1), one number, or a sequence
            of ``spatial_dims`` positive numbers.
        spatial_dims: how many trailing dims are spatial (1 to 3). Default
            ``mask.dim() - 2``, the (B, C, *S) layout.
        backend: ``"torch"``: the separable algorithm in torch, on the mask's device.
            ``"scipy"`` (CPU masks, SciPy installed): ``scipy.ndimage.distance_transform_edt``
            per item, the items spread over ``torch.get_num_threads()`` threads.
            ``"auto"`` (default): SciPy on CPU where it is measured faster (see
            :func:`scipy_is_faster`) and installed, torch otherwise. The backends agree
            exactly on squared distances with unit spacing and to float32 rounding otherwise
            (SciPy's square root is correctly rounded, torch's may be one unit in the last
            place off).

    Returns:
        float32 tensor of the mask's shape and device.

    Raises:
        TypeError: ``mask`` is not a bool tensor; ``spacing`` is not numeric.
        ValueError: spatial dims outside 1..3; ``spacing`` of the wrong length or not positive;
            an unknown ``backend``, or ``"scipy"`` for a mask not on the CPU.
        ImportError: ``backend="scipy"`` without SciPy installed.

    Example:
        >>> from seglosses.ops import edt
        >>> m = torch.tensor([[[0, 1, 1, 1, 1, 0]]], dtype=torch.bool)
        >>> edt(m)
        tensor([[[0., 1., 2., 2., 1., 0.]]])
        >>> edt(m, spacing=0.5)
        tensor([[[0.0000, 0.5000, 1.0000, 1.0000, 0.5000, 0.0000]]])
    """
    return _distances(mask, spacing, spatial_dims, backend, squared=False)


def squared_edt(mask: Tensor, spacing: Spacing = None, spatial_dims: int | None = None, *,
                backend: Backend = "auto") -> Tensor:
    """The square of :func:`edt` (exact up to float32 rounding; avoids the square root).

    Arguments, result and errors as for :func:`edt`. For unit spacing the squared distances
    are integers, and both backends return them exactly (up to 2^24).
    """
    return _distances(mask, spacing, spatial_dims, backend, squared=True)


def _distances(mask: Tensor, spacing: Spacing, spatial_dims: int | None, backend: str, *,
               squared: bool) -> Tensor:
    """Validate, pick the backend, and compute :func:`edt` or its square."""
    _check_mask(mask)
    nd = _resolve_spatial_dims(mask, spatial_dims)
    steps = check_spacing(spacing, nd)
    chosen = resolve_backend(backend, mask, nd)
    mask = mask.detach()
    if mask.numel() == 0:
        return torch.zeros(mask.shape, dtype=torch.float32, device=mask.device)
    if chosen == "scipy":
        # the square root, where wanted, is taken by the SciPy workers in the same pass
        return _edt_scipy.distances(mask, steps, nd, squared=squared)
    out = _edt_torch.squared_edt(mask, steps, nd)
    return out if squared else out.sqrt_()


# the rule of backend="auto" on CPU, from the measurements in docs/ops.md (Performance)
_LARGEST_FOR_SCIPY = {2: 1 << 19, 3: 1 << 17}   # voxels per item: 724^2, 50^3 (1-D: any)
_SMALL_ITEM = {1: 1024, 2: 1024, 3: 256}        # items below this many voxels are small ...
_MANY_ITEMS = 256                               # ... and more than this many of them go to torch


def scipy_is_faster(spatial: Sequence[int], items: int) -> bool:
    """The measured rule of ``backend="auto"`` for CPU masks: whether to run SciPy.

    SciPy for 1-D items, 2-D items of at most 2^19 voxels (e.g. 512 x 512, not 1024 x 1024)
    and 3-D items of at most 2^17 voxels (e.g. 48^3, not 64^3); the torch driver for larger
    items (where it is faster on all but salt-and-pepper masks, up to 5 times on 3-D blobs),
    and for more than 256 small items (fewer than 1024 voxels each in 1-D and 2-D, fewer than
    256 in 3-D), where SciPy's cost per call dominates while the torch driver's number of
    steps grows only with the side of the items. See the performance section of
    ``docs/ops.md`` for the measurements behind it.

    Args:
        spatial: the spatial shape of one item (1 to 3 dims).
        items: the number of items in the call (the product of the leading dims).

    Example:
        >>> from seglosses.ops.edt import scipy_is_faster
        >>> scipy_is_faster((256, 256), items=32), scipy_is_faster((48, 48, 48), items=8)
        (True, True)
        >>> scipy_is_faster((1024, 1024), items=8), scipy_is_faster((128, 128, 128), items=2)
        (False, False)
        >>> scipy_is_faster((16, 16), items=4096)
        False
    """
    voxels = math.prod(spatial)
    largest = _LARGEST_FOR_SCIPY.get(len(spatial))
    if largest is not None and voxels > largest:
        return False
    return voxels >= _SMALL_ITEM[len(spatial)] or items <= _MANY_ITEMS


def resolve_backend(backend: str, mask: Tensor, spatial_dims: int) -> str:
    """Validate ``backend`` and resolve ``"auto"``: the backend that will run, ``"torch"`` or
    ``"scipy"``.

    ``"auto"`` picks SciPy for a CPU mask when SciPy is installed and :func:`scipy_is_faster`
    says so, the torch driver otherwise (always on CUDA and other devices).

    Raises:
        ValueError: ``backend`` is not one of ``"auto"``, ``"torch"``, ``"scipy"``, or is
            ``"scipy"`` for a mask that is not on the CPU.
        ImportError: ``backend="scipy"`` without SciPy installed.
    """
    check_choice(backend, "backend", BACKENDS)
    if backend == "torch":
        return "torch"
    on_cpu = mask.device.type == "cpu"
    if backend == "scipy":
        if not on_cpu:
            raise ValueError(
                f"`backend`='scipy' runs on CPU tensors only; got `mask` on device "
                f"{mask.device} (use backend='auto' or 'torch', or move the mask with .cpu())"
            )
        if not _edt_scipy.available():
            raise ImportError(
                "`backend`='scipy' needs SciPy, which cannot be imported (pip install scipy); "
                "use backend='auto' or 'torch'"
            )
        return "scipy"
    if not on_cpu or not _edt_scipy.available():
        return "torch"
    spatial = tuple(mask.shape[mask.dim() - spatial_dims:])
    voxels = math.prod(spatial)
    items = mask.numel() // voxels if voxels else 0
    return "scipy" if scipy_is_faster(spatial, items) else "torch"


def _both_sides(mask: Tensor, spacing: Spacing, spatial_dims: int | None,
                backend: str) -> tuple[Tensor, Tensor, int]:
    """``edt(m)`` and ``edt(~m)`` from one batched call, and the number of spatial dims."""
    _check_mask(mask)
    nd = _resolve_spatial_dims(mask, spatial_dims)
    both = edt(torch.stack((mask, ~mask)), spacing, nd, backend=backend)
    return both[0], both[1], nd


def _zero_trivial(dist: Tensor, mask: Tensor, nd: int) -> Tensor:
    """Zero the items that are all True or all False (their maps are all inf otherwise)."""
    flat = mask.flatten(mask.dim() - nd)
    present = flat.any(-1) & ~flat.all(-1)
    present = present.view(*present.shape, *([1] * nd))
    return torch.where(present, dist, torch.zeros((), dtype=dist.dtype, device=dist.device))


def dist_to_boundary(mask: Tensor, spacing: Spacing = None,
                     spatial_dims: int | None = None, *, backend: Backend = "auto") -> Tensor:
    r"""Unsigned distance to the mask's boundary: ``edt(m) + edt(~m)``.

    Inside voxels get the distance to the nearest outside voxel, outside voxels the distance
    to the nearest inside voxel. An item that is empty or full gives all zeros.

    Args:
        mask: bool tensor ``(*B, *S)``, as for :func:`edt`.
        spacing: voxel size, as for :func:`edt`.
        spatial_dims: number of trailing spatial dims, as for :func:`edt`.
        backend: ``"auto"``, ``"torch"`` or ``"scipy"``, as for :func:`edt`.

    Returns:
        float32 tensor of the mask's shape and device.

    Example:
        >>> from seglosses.ops import dist_to_boundary
        >>> m = torch.tensor([[[0, 0, 1, 1, 1, 0]]], dtype=torch.bool)
        >>> dist_to_boundary(m)
        tensor([[[2., 1., 1., 2., 1., 1.]]])
    """
    inside, outside, nd = _both_sides(mask, spacing, spatial_dims, backend)
    return _zero_trivial(inside + outside, mask, nd)


def signed_distance(mask: Tensor, spacing: Spacing = None,
                    spatial_dims: int | None = None, *, backend: Backend = "auto") -> Tensor:
    r"""Signed distance map ``edt(~m) - edt(m)``: negative inside, positive outside.

    An item that is empty or full gives all zeros.

    Args:
        mask: bool tensor ``(*B, *S)``, as for :func:`edt`.
        spacing: voxel size, as for :func:`edt`.
        spatial_dims: number of trailing spatial dims, as for :func:`edt`.
        backend: ``"auto"``, ``"torch"`` or ``"scipy"``, as for :func:`edt`.

    Returns:
        float32 tensor of the mask's shape and device.

    Example:
        >>> from seglosses.ops import signed_distance
        >>> m = torch.tensor([[[0, 0, 1, 1, 1, 0]]], dtype=torch.bool)
        >>> signed_distance(m)
        tensor([[[ 2.,  1., -1., -2., -1.,  1.]]])
    """
    inside, outside, nd = _both_sides(mask, spacing, spatial_dims, backend)
    return _zero_trivial(outside - inside, mask, nd)
