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


def _stats_forward(p: Tensor, t: Tensor, w: Tensor | None, n: Tensor | float,
                   dims: tuple[int, ...], batch: bool) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """TP, FP, FN, TN by exactly the operations of the unfused formulas of :func:`soft_stats`."""
    pt = p * t
    if w is not None:
        tp = pt.mul_(w).sum(dim=dims)
        sum_p = (p * w).sum(dim=dims)
        sum_t = (t * w).sum(dim=dims)
    else:
        tp = pt.sum(dim=dims)
        sum_p = p.sum(dim=dims)
        sum_t = t.sum(dim=dims)
    del pt
    if batch:
        tp, sum_p, sum_t = (v.sum(dim=0, keepdim=True) for v in (tp, sum_p, sum_t))
    return tp, sum_p - tp, sum_t - tp, n - sum_p - sum_t + tp


def _stats_grad(t: Tensor, w: Tensor | None, grads: tuple[Tensor | None, ...],
                extra: Tensor | None = None) -> Tensor | None:
    """Gradient of the statistics with respect to p, ``w (a t + b)``, plus ``extra``.

    Every statistic is linear in p: ``a = g_tp - g_fp - g_fn + g_tn`` and ``b = g_fp - g_tn``
    per (sample, channel). Without grad mode the result is built in one fresh buffer (which
    the caller may modify in place); with grad mode (double backward) out of place.
    """
    if all(g is None for g in grads):
        return None if extra is None else (extra if torch.is_grad_enabled() else extra.clone())
    g_tp, g_fp, g_fn, g_tn = (0.0 if g is None else g for g in grads)
    a = g_tp - g_fp - g_fn + g_tn
    b = g_fp - g_tn
    tail = (1,) * (t.dim() - 2)
    a = a.view(*a.shape, *tail) if isinstance(a, Tensor) else a
    b = b.view(*b.shape, *tail) if isinstance(b, Tensor) else b
    if torch.is_grad_enabled():
        grad = t * a + b
        if w is not None:
            grad = grad * w
        grad = torch.broadcast_to(grad, t.shape)
        return grad if extra is None else grad + extra
    grad = t * a
    if not isinstance(grad, Tensor) or grad.shape != t.shape:
        grad = torch.broadcast_to(grad, t.shape).clone()
    grad.add_(b)
    if w is not None:
        grad.mul_(w)
    if extra is not None:
        grad.add_(extra)
    return grad


class _SoftStatsFunction(torch.autograd.Function):
    """TP, FP, FN, TN of :func:`soft_stats` from p, in one node with a fused backward.

    The forward runs exactly the operations of the unfused formulas (the values are the same,
    bit for bit); ``t``, ``w`` and ``n`` are constants. The gradient is built in one
    full-size buffer (see :func:`_stats_grad`), where autograd would allocate a product and a
    sum of branch gradients and run a dozen small nodes; on CPU every fresh full-size buffer
    also costs page faults.
    """

    @staticmethod
    def forward(ctx: Any, p: Tensor, t: Tensor, w: Tensor | None, n: Tensor | float,
                dims: tuple[int, ...], batch: bool) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(t, w)
        return _stats_forward(p, t, w, n, dims, batch)

    @staticmethod
    def backward(ctx: Any, *grads: Tensor | None) -> tuple[Tensor | None, ...]:
        t, w = ctx.saved_tensors
        return (_stats_grad(t, w, grads), None, None, None, None, None)


class _SigmoidSoftStatsFunction(torch.autograd.Function):
    """``p = sigmoid(x)`` and the statistics of p, in one node; returns (TP, FP, FN, TN, p).

    The backward applies the sigmoid derivative in place to the buffer of the statistics'
    gradient (with ATen's own ``sigmoid_backward`` kernel), saving the separate buffer of a
    sigmoid node. ``p`` is an output, so other uses of it are differentiated here too.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, t: Tensor, w: Tensor | None, n: Tensor | float,
                dims: tuple[int, ...], batch: bool) -> tuple[Tensor, ...]:
        ctx.set_materialize_grads(False)
        p = torch.sigmoid(x)
        ctx.save_for_backward(t, w, x, p)
        return (*_stats_forward(p, t, w, n, dims, batch), p)

    @staticmethod
    def backward(ctx: Any, *grads: Tensor | None) -> tuple[Tensor | None, ...]:
        t, w, x, p = ctx.saved_tensors
        grad = _stats_grad(t, w, grads[:4], extra=grads[4])
        if grad is None:
            return (None,) * 6
        if torch.is_grad_enabled():  # double backward: differentiable in x
            q = torch.sigmoid(x)
            grad = grad * ((1.0 - q) * q)
        else:
            torch.ops.aten.sigmoid_backward.grad_input(grad, p, grad_input=grad)
        return (grad, None, None, None, None, None)


def soft_stats(prep: Prepared, batch: bool = False, prob: Tensor | None = None) -> SoftStats:
    """Soft TP = sum p t, FP = sum p (1 - t), FN = sum (1 - p) t, TN = sum (1 - p)(1 - t).

    Sums run over the valid voxels of each (sample, channel), and over the batch too when
    ``batch`` is true. ``prob`` overrides ``prep.prob`` (e.g. for a detached or transformed p).
    """
    t = prep.target
    n: Tensor | float
    if prep.weight is None:  # the same count everywhere, as a number (exact in float)
        n = float(math.prod(t.shape[2:]) * (t.shape[0] if batch else 1))
    else:
        n = valid_count(prep, batch)
    fused = (prep.values.shape == t.shape and not t.requires_grad
             and (prep.weight is None or not prep.weight.requires_grad)
             and not torch.compiler.is_compiling())
    if fused and prob is None and "prob" not in vars(prep) and prep.from_logits \
            and prep.mode != "multiclass":
        # p = sigmoid(logits) not computed yet: compute it with the statistics, and keep it
        # as the prepared probability for every later use
        *stats, p = _SigmoidSoftStatsFunction.apply(prep.values, t, prep.weight, n,
                                                     prep.spatial_dims, batch)
        vars(prep)["prob"] = p
        return SoftStats(*stats)
    p = prep.prob if prob is None else prob
    if fused and p.shape == t.shape:
        return SoftStats(*_SoftStatsFunction.apply(p, t, prep.weight, n, prep.spatial_dims,
                                                   batch))
    tp = weighted_sum(p * t, prep, batch)
    sum_p = weighted_sum(p, prep, batch)
    sum_t = weighted_sum(t, prep, batch)
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
