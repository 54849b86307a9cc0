"""Soft confusion statistics and the reductions every loss ends with."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from torch import Tensor

from .. import kernels
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
    shape = prep.raw.shape
    if prep.weight is None:
        n = torch.full(shape[:2], float(math.prod(shape[2:])), dtype=prep.dtype,
                       device=prep.raw.device)
    elif prep.weight.shape[1] == 1:
        # every channel counts the same voxels: sum once, not once per channel
        n = prep.weight.sum(dim=prep.spatial_dims).expand(shape[:2]).contiguous()
    else:
        n = prep.weight.expand(shape).sum(dim=prep.spatial_dims)
    return n.sum(dim=0, keepdim=True) if batch else n


class SoftSums(NamedTuple):
    """Soft TP = sum p t, sum p and sum t per (B, C) (or (1, C) when pooled over the batch)."""

    tp: Tensor
    sum_p: Tensor
    sum_t: Tensor


def _autocast_on(device_type: str) -> bool:
    """Whether autocast is active for ``device_type`` (PyTorch before 2.4 has no argument)."""
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:
        if device_type == "cpu":
            return torch.is_autocast_cpu_enabled()
        return torch.is_autocast_enabled()


def _sums_forward(p: Tensor, t: Tensor, w: Tensor | None, dims: tuple[int, ...],
                  batch: bool, scratch: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """TP, sum p, sum t of :func:`soft_sums` (the product ``p t w`` written to ``scratch``
    when given and needed)."""
    b, c = p.shape[:2]
    if w is None and dims and p.shape == t.shape and p.is_contiguous() and t.is_contiguous() \
            and not _autocast_on(p.device.type):
        # TP as one batched dot product per (sample, channel): no full-size product buffer,
        # and on CPU 1.5 to 3 times faster than the product and its sum (not under autocast,
        # which would run the matrix product in half precision)
        n = p[0, 0].numel()
        tp = torch.bmm(p.view(b * c, 1, n), t.view(b * c, 1, n).transpose(1, 2)).view(b, c)
        sum_p = p.sum(dim=dims)
        sum_t = t.sum(dim=dims)
    else:
        pt = p * t if scratch is None or scratch.shape != torch.broadcast_shapes(
            p.shape, t.shape) else torch.mul(p, t, out=scratch)
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
    return tp, sum_p, sum_t


def _sums_grad(t: Tensor, w: Tensor | None, g_tp: Tensor | None, g_sp: Tensor | None,
               extra: Tensor | None = None, out: Tensor | None = None) -> Tensor | None:
    """Gradient of TP and sum p with respect to p, ``w (g_tp t + g_sp)``, plus ``extra``.

    ``g_tp`` and ``g_sp`` are per (sample, channel) (or (1, C)); sum t does not depend on p.
    Without grad mode the result is built in one buffer, ``out`` when given (of ``t``'s shape)
    or a fresh one, which the caller may modify in place; with grad mode (double backward) out
    of place.
    """
    if g_tp is None and g_sp is None:
        return None if extra is None else (extra if torch.is_grad_enabled() else extra.clone())
    tail = (1,) * (t.dim() - 2)
    a = None if g_tp is None else g_tp.view(*g_tp.shape, *tail)
    b = None if g_sp is None else g_sp.view(*g_sp.shape, *tail)
    if torch.is_grad_enabled():
        grad = t * a if b is None else (b.expand(t.shape) if a is None else t * a + b)
        if w is not None:
            grad = grad * w
        grad = torch.broadcast_to(grad, t.shape)
        return grad if extra is None else grad + extra
    if a is None:
        grad = torch.broadcast_to(b, t.shape).clone()  # type: ignore[arg-type]
    else:
        # t * a, then + b in place: three times faster on CPU than addcmul with a
        # broadcast first argument
        grad = t * a if out is None or out.shape != t.shape else torch.mul(t, a, out=out)
        if b is not None:
            grad.add_(b)
    if grad.shape != t.shape:
        grad = torch.broadcast_to(grad, t.shape).clone()
    if w is not None:
        grad.mul_(w)
    if extra is not None:
        grad.add_(extra)
    return grad


class _SoftSumsFunction(torch.autograd.Function):
    """TP, sum p and sum t of :func:`soft_sums` from p, in one node with a fused backward.

    The forward computes TP as a batched dot product where it can (the same value as the sum of
    the products, to rounding); ``t`` and ``w`` are constants. The gradient
    ``w (g_tp t + g_sp)`` is built in one full-size buffer (see :func:`_sums_grad`), where
    autograd would allocate a product and a sum of branch gradients; on CPU every fresh
    full-size buffer also costs page faults.
    """

    @staticmethod
    def forward(ctx: Any, p: Tensor, t: Tensor, w: Tensor | None, dims: tuple[int, ...],
                batch: bool) -> tuple[Tensor, Tensor, Tensor]:
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(t, w)
        # one buffer for the product p t now and for the gradient later: on CPU a fresh
        # full-size buffer costs page faults (and fresh memory on any device)
        ctx.scratch = torch.empty_like(p) if p.shape == t.shape else None
        return _sums_forward(p, t, w, dims, batch, ctx.scratch)

    @staticmethod
    def backward(ctx: Any, g_tp: Tensor | None, g_sp: Tensor | None,
                 g_st: Tensor | None) -> tuple[Tensor | None, ...]:
        t, w = ctx.saved_tensors
        out, ctx.scratch = ctx.scratch, None  # a second backward gets a fresh buffer
        return (_sums_grad(t, w, g_tp, g_sp, out=None if torch.is_grad_enabled() else out),
                None, None, None, None)


class _SigmoidSoftSumsFunction(torch.autograd.Function):
    """``p = sigmoid(x)`` and the sums of p, in one node; returns (TP, sum p, sum t, p).

    The backward applies the sigmoid derivative in place to the buffer of the sums' gradient
    (with ATen's own ``sigmoid_backward`` kernel), saving the separate buffer of a sigmoid
    node. ``p`` is an output, so other uses of it are differentiated here too.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, t: Tensor, w: Tensor | None, dims: tuple[int, ...],
                batch: bool) -> tuple[Tensor, ...]:
        ctx.set_materialize_grads(False)
        p = torch.sigmoid(x)
        ctx.save_for_backward(t, w, x, p)
        ctx.scratch = torch.empty_like(p) if p.shape == t.shape else None  # see above
        return (*_sums_forward(p, t, w, dims, batch, ctx.scratch), p)

    @staticmethod
    def backward(ctx: Any, g_tp: Tensor | None, g_sp: Tensor | None, g_st: Tensor | None,
                 g_p: Tensor | None) -> tuple[Tensor | None, ...]:
        t, w, x, p = ctx.saved_tensors
        out, ctx.scratch = ctx.scratch, None  # a second backward gets a fresh buffer
        grad = _sums_grad(t, w, g_tp, g_sp, extra=g_p,
                          out=None if torch.is_grad_enabled() else out)
        if grad is None:
            return (None,) * 5
        if torch.is_grad_enabled():  # double backward: differentiable in x
            q = torch.sigmoid(x)
            grad = grad * ((1.0 - q) * q)
        else:
            torch.ops.aten.sigmoid_backward.grad_input(grad, p, grad_input=grad)
        return (grad, None, None, None, None)


def soft_sums(prep: Prepared, batch: bool = False, prob: Tensor | None = None) -> SoftSums:
    """Soft TP = sum p t, sum p and sum t over the valid voxels of each (sample, channel).

    Sums run over the batch too when ``batch`` is true. ``prob`` overrides ``prep.prob``
    (e.g. for a detached or transformed p).
    """
    w = prep.weight
    if prob is None and prep.from_logits and kernels.use_for(prep.raw) \
            and (w is None or not w.requires_grad):
        # CUDA: one fused Triton kernel reads the logits, the target (integer labels as they
        # are, without a one-hot copy) and the weights once
        from ..kernels import triton_losses
        labels_only = prep.mode == "multiclass" and prep.labels is not None \
            and "target" not in vars(prep)
        target = prep.labels if labels_only else prep.target
        if labels_only or (target.shape == prep.raw.shape and not target.requires_grad):
            stats = triton_losses.softmax_stats if prep.mode == "multiclass" else \
                triton_losses.sigmoid_stats
            sums = stats(prep.raw, target, w)
            if batch:
                sums = tuple(v.sum(dim=0, keepdim=True) for v in sums)
            return SoftSums(*sums)
    t = prep.target
    fused = (prep.raw.shape == t.shape and not t.requires_grad
             and (w is None or not w.requires_grad)
             and not torch.compiler.is_compiling())
    if fused and prob is None and "prob" not in vars(prep) and prep.from_logits \
            and prep.mode != "multiclass":
        # p = sigmoid(logits) not computed yet: compute it with the sums, and keep it as the
        # prepared probability for every later use
        tp, sum_p, sum_t, p = _SigmoidSoftSumsFunction.apply(prep.values, t, prep.weight,
                                                             prep.spatial_dims, batch)
        vars(prep)["prob"] = p
        return SoftSums(tp, sum_p, sum_t)
    p = prep.prob if prob is None else prob
    if fused and p.shape == t.shape:
        return SoftSums(*_SoftSumsFunction.apply(p, t, prep.weight, prep.spatial_dims, batch))
    return SoftSums(weighted_sum(p * t, prep, batch), weighted_sum(p, prep, batch),
                    weighted_sum(t, prep, batch))


def soft_stats(prep: Prepared, batch: bool = False, prob: Tensor | None = None) -> SoftStats:
    """Soft TP = sum p t, FP = sum p (1 - t), FN = sum (1 - p) t, TN = sum (1 - p)(1 - t).

    Sums run over the valid voxels of each (sample, channel), and over the batch too when
    ``batch`` is true. ``prob`` overrides ``prep.prob`` (e.g. for a detached or transformed p).
    FP, FN and TN come from :func:`soft_sums`: ``FP = sum p - TP``, ``FN = sum t - TP``,
    ``TN = N - sum p - sum t + TP``.
    """
    tp, sum_p, sum_t = soft_sums(prep, batch, prob)
    n: Tensor | float
    if prep.weight is None:  # the same count everywhere, as a number (exact in float)
        t = prep.target
        n = float(math.prod(t.shape[2:]) * (t.shape[0] if batch else 1))
    else:
        n = valid_count(prep, batch)
    return SoftStats(tp, sum_p - tp, sum_t - tp, n - sum_p - sum_t + tp)


def channel_mean(per_channel: Tensor, prep: Prepared) -> Tensor:
    """Average a region term L[b, c] over the channels used (weighted by ``class_weights``)."""
    used = per_channel if len(prep.channels) == per_channel.shape[1] else \
        per_channel[:, prep.channels]
    if prep.class_weights is None:
        # one channel: a view, not a reduction node
        return used.view(-1) if used.shape[1] == 1 else used.mean(dim=1)
    w = prep.class_weights[prep.channels]
    return (used * (w / w.sum())).sum(dim=1)


def class_weight_map(prep: Prepared) -> Tensor | None:
    """``class_weights`` shaped (1, C, 1, ...) for per-voxel weighting, or ``None``."""
    if prep.class_weights is None:
        return None
    return prep.class_weights.view(1, -1, *([1] * len(prep.spatial_dims)))


def mean_of_sums(sums: Tensor, prep: Prepared, class_weighted: bool = True) -> Tensor:
    """Per-sample mean over valid voxels and channels from per-channel sums, shape (B,).

    ``sums`` is (B, K): the sums over the valid voxels of a term with one entry per channel
    (K = C; ``class_weights`` multiply channel c when ``class_weighted``) or already summed over
    the classes (K = 1). Samples with no valid voxel give 0.
    """
    k = sums.shape[1]
    if class_weighted and prep.class_weights is not None and k == prep.num_classes:
        sums = sums * prep.class_weights
    # one channel: a view, not a reduction node
    total = sums.view(-1) if k == 1 else sums.sum(dim=1)
    w = prep.weight
    if w is None:
        return total / float(k * math.prod(prep.raw.shape[2:]))
    if w.shape[1] != k:  # per-channel weights with a class-summed term: any channel counts
        w = w.amax(dim=1, keepdim=True)
    # a (B, 1, *S) mask counts the same voxels in every channel: count it once (0/1 weights:
    # the count is an exact integer either way)
    count = w.flatten(1).sum(dim=1)
    if w.shape[1] == 1:
        count = count * k
    return total / count.clamp_min(1.0)


def pixel_mean(per_voxel: Tensor, prep: Prepared, class_weighted: bool = True) -> Tensor:
    """Mean of l[b, c, i] over valid voxels and channels, per sample: shape (B,).

    ``per_voxel`` has shape (B, C, *S) (a term per channel; ``class_weights`` multiply channel
    c when ``class_weighted``) or (B, 1, *S) (a term already summed over classes). Samples with
    no valid voxel give 0. The spatial sums go to :func:`mean_of_sums`, which the fused terms
    of ``_pixel.py`` use directly.
    """
    w = prep.weight
    if w is not None:
        if w.shape[1] not in (1, per_voxel.shape[1]):
            w = w.amax(dim=1, keepdim=True)
        per_voxel = per_voxel * w
    return mean_of_sums(per_voxel.sum(dim=prep.spatial_dims), prep, class_weighted)


def weighted_terms(*terms: tuple[float, Tensor]) -> Tensor:
    """``sum_i lambda_i term_i`` for (lambda, term) pairs; a weight of 1 multiplies nothing
    (each product of small per-sample tensors is an autograd node of its own)."""
    total: Tensor | None = None
    for weight, term in terms:
        part = term if weight == 1.0 else weight * term
        total = part if total is None else total + part
    assert total is not None
    return total


def reduce(per_sample: Tensor, reduction: str) -> Tensor:
    """Apply ``reduction`` ("mean", "sum" or "none") over the batch of per-sample values."""
    check_choice(reduction, "reduction", REDUCTIONS)
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "sum":
        return per_sample.sum()
    return per_sample
