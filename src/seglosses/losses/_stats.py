"""Soft confusion statistics and the reductions every loss ends with."""

from __future__ import annotations

from typing import NamedTuple

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
        n = torch.full(shape[:2], float(prep.values[0, 0].numel()), dtype=prep.values.dtype,
                       device=prep.values.device)
    else:
        n = prep.weight.expand(shape).sum(dim=prep.spatial_dims)
    return n.sum(dim=0, keepdim=True) if batch else n


def soft_stats(prep: Prepared, batch: bool = False, prob: Tensor | None = None) -> SoftStats:
    """Soft TP = sum p t, FP = sum p (1 - t), FN = sum (1 - p) t, TN = sum (1 - p)(1 - t).

    Sums run over the valid voxels of each (sample, channel), and over the batch too when
    ``batch`` is true. ``prob`` overrides ``prep.prob`` (e.g. for a detached or transformed p).
    """
    p = prep.prob if prob is None else prob
    t = prep.target
    tp = weighted_sum(p * t, prep, batch)
    sum_p = weighted_sum(p, prep, batch)
    sum_t = weighted_sum(t, prep, batch)
    n = valid_count(prep, batch)
    fp = sum_p - tp
    fn = sum_t - tp
    tn = n - sum_p - sum_t + tp
    return SoftStats(tp, fp, fn, tn)


def channel_mean(per_channel: Tensor, prep: Prepared) -> Tensor:
    """Average a region term L[b, c] over the channels used (weighted by ``class_weights``)."""
    used = per_channel[:, prep.channels]
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
