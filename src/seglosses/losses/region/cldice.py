"""Soft clDice loss."""

from __future__ import annotations

import functools
import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from ..._registry import LossInfo, register_loss
from ..._types import ClassWeights, Mode, Reduction
from ..._validation import check_int, check_number
from .._base import SegLoss
from .._prepare import prepare
from .._stats import channel_mean, reduce, weighted_sum


def _window3(x: Tensor, dim: int, op: Callable[[Tensor, Tensor], Tensor],
             fill: float) -> Tensor:
    """``op`` of each voxel with its two neighbours along ``dim``; outside counts as ``fill``.

    Built from shifted views and elementwise ``minimum``/``maximum`` rather than max pooling,
    so that it runs in 1 to 3 dims and its backward is deterministic on every device (CUDA's
    ``max_pool3d`` backward is not).
    """
    n = x.shape[dim]
    edge = torch.full_like(x.narrow(dim, 0, 1), fill)
    before = torch.cat([edge, x.narrow(dim, 0, n - 1)], dim=dim)
    after = torch.cat([x.narrow(dim, 1, n - 1), edge], dim=dim)
    return op(op(x, before), after)


def soft_erode(x: Tensor) -> Tensor:
    """Soft erosion: minimum over each voxel and its face-connected neighbours.

    Voxels outside the image take no part.
    """
    dims = range(2, x.dim())
    out = [_window3(x, d, torch.minimum, math.inf) for d in dims]
    return functools.reduce(torch.minimum, out)


def soft_dilate(x: Tensor) -> Tensor:
    """Soft dilation: maximum over the full 3^d neighbourhood (separable along the axes)."""
    for d in range(2, x.dim()):
        x = _window3(x, d, torch.maximum, -math.inf)
    return x


def soft_skeleton(x: Tensor, iterations: int) -> Tensor:
    """Soft skeleton of Shit et al. 2021 (Algorithm 1) for (B, C, *S) maps in [0, 1]."""
    skeleton = F.relu(x - soft_dilate(soft_erode(x)))
    for _ in range(iterations):
        x = soft_erode(x)
        delta = F.relu(x - soft_dilate(soft_erode(x)))
        skeleton = skeleton + F.relu(delta - skeleton * delta)
    return skeleton


def cldice_loss(logits: Tensor, target: Tensor, mask: Tensor | None = None, *,
                mode: Mode = "auto", from_logits: bool = True, reduction: Reduction = "mean",
                include_background: bool = True, ignore_index: int | None = None,
                class_weights: ClassWeights = None, iterations: int = 3,
                smooth: float = 1.0) -> Tensor:
    r"""Soft clDice loss: Dice of topological precision and sensitivity on soft skeletons.

    .. math::
        T_{prec} = \frac{\sum S_p\, t + s}{\sum S_p + s}, \quad
        T_{sens} = \frac{\sum S_t\, p + s}{\sum S_t + s}, \quad
        L = 1 - \frac{2\, T_{prec}\, T_{sens}}{T_{prec} + T_{sens}}

    Region-based (topology-preserving) loss of Shit et al. 2021, per (sample, channel), then
    averaged over the channels. ``S_p`` and ``S_t`` are soft skeletons of ``p`` and ``t``:
    ``iterations`` rounds of soft erosion (minimum over the face-connected neighbourhood) and
    soft opening (erosion then maximum over the full 3^d neighbourhood), in 1, 2 or 3
    spatial dims, built from elementwise minima and maxima of shifted views (deterministic
    backward on every device). Masked and ignored voxels are set to 0 in ``p`` and ``t``
    before the skeletons are taken, so their values change nothing and get no gradient; they
    read as background to their neighbours. ``L`` lies in [0, 1]. The minima and maxima make
    the loss piecewise smooth, with kinks wherever two compared values are equal.

    Args:
        logits: (B, C, *S) logits (probabilities with ``from_logits=False``).
        target: see :func:`seglosses.losses._prepare.prepare`.
        mask: optional bool (B, 1, *S) or (B, *S); False voxels count nowhere.
        mode, from_logits, reduction, include_background, ignore_index, class_weights: the
            shared parameters (``docs/api.md``).
        iterations: rounds of the soft skeleton (>= 0); about the largest radius of the
            structures.
        smooth: s, added to numerators and denominators of both ratios (>= 0).

    Shape:
        Output: scalar for ``"mean"``/``"sum"``, (B,) for ``"none"``.

    Raises:
        ValueError: negative ``iterations`` or ``smooth``; bad input (see ``prepare``).

    Example:
        >>> import torch
        >>> logits = torch.tensor([[[[-4.0, 3.0, -4.0], [-3.0, 2.0, -2.0], [-4.0, 1.0, -4.0]]]])
        >>> target = torch.tensor([[[[0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 1.0, 0.0]]]])
        >>> cldice_loss(logits, target)
        tensor(0.0668)

    References:
        Shit, Paetzold, Sekuboyina, Ezhov, Unger, Zhylka, Pluim, Bauer, Menze, "clDice - a
        novel topology-preserving loss function for tubular structure segmentation",
        CVPR 2021, arXiv:2003.07311.
    """
    check_int(iterations, "iterations", low=0)
    check_number(smooth, "smooth", low=0.0)
    prep = prepare(logits, target, mask, mode=mode, from_logits=from_logits,
                   include_background=include_background, ignore_index=ignore_index,
                   class_weights=class_weights)
    p, t = prep.prob, prep.target
    if prep.weight is not None:
        p = p * prep.weight
    skel_p = soft_skeleton(p, iterations)
    skel_t = soft_skeleton(t, iterations)
    t_prec = (weighted_sum(skel_p * t, prep) + smooth) / (weighted_sum(skel_p, prep) + smooth)
    t_sens = (weighted_sum(skel_t * p, prep) + smooth) / (weighted_sum(skel_t, prep) + smooth)
    total = t_prec + t_sens
    safe = torch.where(total > 0, total, torch.ones_like(total))
    score = 2.0 * t_prec * t_sens / safe
    return reduce(channel_mean(1.0 - score, prep), reduction)


@register_loss(LossInfo(
    name="cldice", family="region", source="Shit et al. 2021", arxiv="2003.07311",
    summary="1 - Dice of topological precision and sensitivity on soft skeletons.",
    params={"iterations": "rounds of soft erosion in the soft skeleton",
            "smooth": "added to numerators and denominators of both ratios"},
    value_range=(0.0, 1.0),
))
class ClDiceLoss(SegLoss):
    """Module form of :func:`cldice_loss`."""

    function = staticmethod(cldice_loss)

    def __init__(self, *, iterations: int = 3, smooth: float = 1.0, **shared: object) -> None:
        super().__init__(iterations=iterations, smooth=smooth, **shared)  # type: ignore[arg-type]
