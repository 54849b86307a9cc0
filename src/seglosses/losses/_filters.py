"""Separable local filters over the 1 to 3 spatial dims of a (B, C, *S) tensor.

Local statistics (SSIM means, variances, covariances; box means and standard deviations) are
normalised window averages: the window is clipped to the image and to the valid voxels, i.e.
``mean_i(x) = sum_j k(i - j) w_j x_j / sum_j k(i - j) w_j`` with the separable kernel ``k``,
the valid-voxel weights ``w`` (1 everywhere when there is no mask) and zero padding outside the
image. Padding and masked voxels therefore count nowhere, and any image size works, down to one
voxel wide.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .._validation import check_int, check_number


def check_window(window: int, name: str = "window") -> None:
    """Require an odd window width >= 1 (so that the window has a centre voxel)."""
    check_int(window, name, low=1)
    if window % 2 == 0:
        raise ValueError(f"`{name}` must be an odd window width; got {window}")


def gaussian_kernel1d(window: int, sigma: float, *, dtype: torch.dtype,
                      device: torch.device) -> Tensor:
    """Sampled Gaussian ``exp(-x^2 / (2 sigma^2))`` at offsets ``x = -(window-1)/2 ..
    (window-1)/2``, normalised to sum 1."""
    check_window(window)
    check_number(sigma, "sigma", low=0.0, low_open=True)
    x = torch.arange(window, dtype=dtype, device=device) - (window - 1) / 2.0
    k = torch.exp(-(x * x) / (2.0 * float(sigma) ** 2))
    return k / k.sum()


def box_kernel1d(window: int, *, dtype: torch.dtype, device: torch.device) -> Tensor:
    """A flat kernel of ``window`` ones.

    Left unnormalised: :func:`local_means` divides by the filtered weights anyway, and with
    unit taps the window sums of integer-valued data (binary targets, voxel counts) are exact,
    so a locally constant binary map has exactly zero local variance.
    """
    check_window(window)
    return torch.ones(window, dtype=dtype, device=device)


def separable_filter(x: Tensor, kernel: Tensor) -> Tensor:
    """Zero-padded, same-size filtering of ``x`` (N, C, *S) along every spatial dim with the
    symmetric 1-D ``kernel`` of odd length.

    Each pass views the tensor as (1, M, L, R), L the filtered dim, and runs one depthwise
    ``conv2d`` with a (k, 1) kernel over the M maps: on CPU this is one to two orders of
    magnitude faster than a batch of single-channel convolutions, and 3 times faster than
    ``conv3d`` for volumes. Autocast is switched off here: the statistics stay in the dtype of
    ``x`` (fp32 or fp64) even inside a mixed-precision training step.
    """
    with torch.autocast(device_type=x.device.type, enabled=False):
        return _separable_filter(x, kernel)


def _separable_filter(x: Tensor, kernel: Tensor) -> Tensor:
    spatial = tuple(x.shape[2:])
    radius = (kernel.numel() - 1) // 2
    taps = kernel.view(1, 1, -1, 1)
    out = x
    for axis in range(len(spatial)):
        maps = x.shape[0] * x.shape[1] * math.prod(spatial[:axis])
        view = out.reshape(1, maps, spatial[axis], math.prod(spatial[axis + 1:]))
        out = F.conv2d(view, taps.expand(maps, 1, -1, 1), padding=(radius, 0), groups=maps)
    return out.reshape(x.shape)


def local_means(values: Sequence[Tensor], weight: Tensor | None, kernel: Tensor) -> list[Tensor]:
    """Normalised local means of each (B, C, *S) tensor of ``values`` under ``kernel``.

    ``weight`` holds the valid-voxel weights, (B, 1, *S) or (B, C, *S), or ``None`` when every
    voxel counts. The values are multiplied by the weights here, so masked entries of
    ``values`` count nowhere and receive exactly zero gradient. A voxel whose window holds no
    valid voxel gets the mean 0.
    """
    ref = values[0]
    shape = ref.shape
    spatial = tuple(shape[2:])
    if weight is not None:
        values = [v * weight for v in values]
        norm = separable_filter(weight, kernel)
    else:
        ones = torch.ones((1, 1, *spatial), dtype=ref.dtype, device=ref.device)
        norm = separable_filter(ones, kernel)
    norm = torch.where(norm > 0, norm, torch.ones_like(norm))
    stacked = torch.cat([v.expand(shape) for v in values], dim=1)
    filtered = separable_filter(stacked, kernel)
    return [m / norm for m in filtered.split(shape[1], dim=1)]
