"""Soft confusion statistics and the reductions every loss ends with."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from torch import Tensor

from .._types import REDUCTIONS
from .._validation import check_choice
from ._prepare import Prepared


class SoftStats(NamedTuple):
    """Soft TP, FP, FN, TN per (B, C) (or (1, C) when pooled over the batch)."""

    tp: Tensor
    fp: Tensor
    fn: Tensor
    tn: Tensor


def weighted_sum(x: Tensor, prep: Prepared, batch: bool = False) -> Tensor:
    """Sum ``x`` (B, C or 1, *S) over the valid voxels: (B, C), or (1, C) with ``batch``."""
    if prep.weight is not None:
        x = x * prep.weight
    dims = prep.spatial_dims
    out = x.sum(dim=dims) if dims else x
    if batch:
        out = out.sum(dim=0, keepdim=True)
    return out


def valid_count(prep: Prepared, batch: bool = False) -> Tensor:
    """Number of valid voxels N per (B, C) (or (1, C))."""
    shape = prep.values.shape
    if prep.weight is None:
        n = torch.full(shape[:2], float(math.prod(shape[2:])), dtype=prep.values.dtype,
                       device=prep.values.device)
    elif prep.weight.shape[1] == 1:
        # every channel counts the same voxels: sum once, not once per channel
        n = prep.weight.sum(dim=prep.spatial_dims).expand(shape[:2]).contiguous()
    else:
        n = prep.weight.expand(shape).sum(dim=prep.spatial_dims)
    return n.sum(dim=0, keepdim=True) if batch else n


class _SoftSums(torch.autograd.Function):
    """``(sum p t w, sum p w)`` per (B, C) over the spatial dims, with a fused backward.

    The values are those of ``weighted_sum(p * t)`` and ``weighted_sum(p)``. The gradient
    ``w (g_tp t + g_p)`` is built in one buffer, where autograd would allocate the product
    and the sum of the two branch gradients separately (on CPU every fresh full-size buffer
    costs page faults). ``t`` and ``w`` are constants here (see :func:`soft_stats`).
    """

    @staticmethod
    def forward(ctx: Any, p: Tensor, t: Tensor, w: Tensor | None,
                dims: tuple[int, ...]) -> tuple[Tensor, Tensor]:
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(t, w)
        pt = p * t
        if w is not None:
            pt.mul_(w)
            return pt.sum(dim=dims), (p * w).sum(dim=dims)
        return pt.sum(dim=dims), p.sum(dim=dims)

    @staticmethod
    def backward(ctx: Any, g_tp: Tensor | None,
                 g_p: Tensor | None) -> tuple[Tensor | None, None, None, None]:
        t, w = ctx.saved_tensors
        if g_tp is None and g_p is None:
            return None, None, None, None
        tail = (1,) * (t.dim() - 2)
        if torch.is_grad_enabled():  # double backward: out of place, so it is recorded
            grad = t * g_tp.view(*g_tp.shape, *tail) if g_tp is not None else 0.0
            if g_p is not None:
                grad = grad + g_p.view(*g_p.shape, *tail)
            if w is not None:
                grad = grad * w
            return torch.broadcast_to(grad, t.shape), None, None, None
        if g_tp is not None:
            grad = t * g_tp.view(*g_tp.shape, *tail)
            if g_p is not None:
                grad.add_(g_p.view(*g_p.shape, *tail))
        else:
            grad = g_p.view(*g_p.shape, *tail).expand(t.shape).clone()
        if w is not None:
            grad.mul_(w)
        return grad, None, None, None


def _sum_pt_and_p(p: Tensor, prep: Prepared) -> tuple[Tensor, Tensor]:
    """``weighted_sum(p * t)`` and ``weighted_sum(p)`` per (B, C), unpooled."""
    t, w = prep.target, prep.weight
    fused = (p.shape == t.shape and not t.requires_grad
             and (w is None or not w.requires_grad)
             and not torch.compiler.is_compiling())
    if fused:
        tp, sum_p = _SoftSums.apply(p, t, w, prep.spatial_dims)
        return tp, sum_p
    return weighted_sum(p * t, prep), weighted_sum(p, prep)


def soft_stats(prep: Prepared, batch: bool = False, prob: Tensor | None = None) -> SoftStats:
    """Soft TP = sum p t, FP = sum p (1 - t), FN = sum (1 - p) t, TN = sum (1 - p)(1 - t).

    Sums run over the valid voxels of each (sample, channel), and over the batch too when
    ``batch`` is true. ``prob`` overrides ``prep.prob`` (e.g. for a detached or transformed p).
    """
    p = prep.prob if prob is None else prob
    t = prep.target
    tp, sum_p = _sum_pt_and_p(p, prep)
    sum_t = weighted_sum(t, prep)
    if batch:
        tp, sum_p, sum_t = (v.sum(dim=0, keepdim=True) for v in (tp, sum_p, sum_t))
    n = valid_count(prep, batch)
    fp = sum_p - tp
    fn = sum_t - tp
    tn = n - sum_p - sum_t + tp
    return SoftStats(tp, fp, fn, tn)


def channel_mean(per_channel: Tensor, prep: Prepared) -> Tensor:
    """Average a region term L[b, c] over the channels used (weighted by ``class_weights``)."""
    used = per_channel if len(prep.channels) == per_channel.shape[1] else \
        per_channel[:, prep.channels]
    if prep.class_weights is None:
        return used.mean(dim=1)
    w = prep.class_weights[prep.channels]
    return (used * (w / w.sum())).sum(dim=1)


def class_weight_map(prep: Prepared) -> Tensor | None:
    """``class_weights`` shaped (1, C, 1, ...) for per-voxel weighting, or ``None``."""
    if prep.class_weights is None:
        return None
    return prep.class_weights.view(1, -1, *([1] * len(prep.spatial_dims)))


def pixel_mean(per_voxel: Tensor, prep: Prepared, class_weighted: bool = True) -> Tensor:
    """Mean of l[b, c, i] over valid voxels and channels, per sample: shape (B,).

    ``per_voxel`` has shape (B, C, *S) (a term per channel; ``class_weights`` multiply channel
    c when ``class_weighted``) or (B, 1, *S) (a term already summed over classes). Samples with
    no valid voxel give 0.
    """
    cw = class_weight_map(prep)
    if class_weighted and cw is not None and per_voxel.shape[1] == prep.num_classes:
        per_voxel = per_voxel * cw
    shape = per_voxel.shape
    if prep.weight is None:
        total = per_voxel.flatten(1).sum(dim=1)
        return total / float(per_voxel[0].numel())
    if prep.weight.shape[1] == 1:
        # the same voxels count in every channel: count them once, without an expanded copy
        # (0/1 weights: the count is an exact integer either way)
        total = (per_voxel * prep.weight).flatten(1).sum(dim=1)
        count = prep.weight.flatten(1).sum(dim=1) * shape[1]
        return total / count.clamp_min(1.0)
    w = prep.weight.expand(shape) if prep.weight.shape[1] == 1 else \
        prep.weight.expand(shape[0], prep.weight.shape[1], *shape[2:])
    if w.shape[1] != shape[1]:  # per-channel weights with a class-summed term
        w = w.amax(dim=1, keepdim=True)
    total = (per_voxel * w).flatten(1).sum(dim=1)
    count = w.flatten(1).sum(dim=1)
    return total / count.clamp_min(1.0)


def reduce(per_sample: Tensor, reduction: str) -> Tensor:
    """Apply ``reduction`` ("mean", "sum" or "none") over the batch of per-sample values."""
    check_choice(reduction, "reduction", REDUCTIONS)
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "sum":
        return per_sample.sum()
    return per_sample
