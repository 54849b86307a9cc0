"""The binary cross-entropy family of per-voxel terms, summed in one fused node.

Binary cross-entropy, its weighted and balanced forms, the focal loss and the asymmetric focal
term of the unified focal loss are all, per channel of a sigmoid output,

.. math::
    \\ell = -[\\,\\mathrm{pos}\\; t\\, q^{\\gamma_+} \\log p
            + \\mathrm{neg}\\; (1 - t)\\, p^{\\gamma_-} \\log q\\,], \\qquad
    p = \\sigma(x),\\; q = 1 - p,

with per-(sample, channel) factors ``pos`` and ``neg``. Its derivative in the logit is

.. math::
    \\frac{\\partial \\ell}{\\partial x} = -\\mathrm{pos}\\; t\\, q^{\\gamma_+}
        (q - \\gamma_+ p \\log p) - \\mathrm{neg}\\; (1 - t)\\, p^{\\gamma_-}
        (\\gamma_- q \\log q - p).

:func:`binary_focal_mean` returns the per-sample mean of ``l`` over the valid voxels and the
channels, as :func:`~seglosses.losses._stats.pixel_mean` of the per-voxel map would. On CPU it
computes the sums and the gradient in one forward pass that shares ``exp(-|x|)``, ``p`` and the
logs between value and gradient, and keeps one gradient buffer for the backward (a product with
the incoming per-(sample, channel) gradient); the plain formula would run some twenty autograd
nodes. On CUDA the Triton kernels of :mod:`seglosses.kernels` compute the same sums. Elsewhere
(and whenever the target, weights or factors carry a gradient, for probabilities instead of
logits, and under ``torch.compile``) the per-voxel formula of the calling loss is used.

The multiclass counterpart, :func:`softmax_focal_mean`, runs the categorical cross-entropy as
PyTorch's ``F.cross_entropy`` (on the integer labels when there are any) and fuses the softmax
focal loss ``l = -sum_c w_c t_c (1 - p_c)^gamma log p_c`` the same way as above; with
``G_c = w_c t_c q_c^gamma (1 - gamma p_c log(p_c) / q_c)`` (``q_c = 1 - p_c``) its
derivative is ``dl/dx_k = p_k sum_c G_c - G_k``.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import kernels
from ._prepare import Prepared, _softplus_neg_abs, binary_cross_entropy_from_logits
from ._stats import mean_of_sums, pixel_mean

Factor = float | Tensor


def _as_channel_factor(f: Factor, ndim: int) -> Factor:
    """A number, or a (B or 1, C, ...) tensor viewed as (B or 1, C, 1, ...) for ``ndim`` dims."""
    if not isinstance(f, Tensor):
        return float(f)
    f = f.reshape(f.shape[0], f.shape[1]) if f.dim() > 2 else f
    return f.reshape(*f.shape, *([1] * (ndim - 2)))


def _is_one(f: Factor) -> bool:
    return not isinstance(f, Tensor) and f == 1.0


def _power(base: Tensor, log_base: Tensor, gamma: float) -> Tensor:
    """``base ** gamma`` for ``gamma > 0``: repeated products for small integers (exact and
    cheap), else ``exp(gamma * log base)`` from the accurate log."""
    if gamma == 1.0:
        return base.clone()
    if gamma == 2.0:
        return base * base
    if gamma == 3.0:
        return base * base * base
    return torch.exp(log_base * gamma)


def _value_and_grad(x: Tensor, t: Tensor, pos: Factor, neg: Factor, gamma_pos: float,
                    gamma_neg: float, p: Tensor | None, need_grad: bool
                    ) -> tuple[Tensor, Tensor | None]:
    """Per-voxel ``l`` and ``dl/dx`` (``None`` unless ``need_grad``), without autograd.

    ``p`` is ``sigmoid(x)`` when the caller already has it.
    """
    plain = _is_one(pos) and _is_one(neg) and gamma_pos == 0.0 and gamma_neg == 0.0
    if plain:
        # the binary cross-entropy without cancellation (see the function); gradient p - t
        value = binary_cross_entropy_from_logits(x, t)
        if not need_grad:
            return value, None
        return value, (torch.sigmoid(x).sub_(t) if p is None else torch.sub(p, t))
    term = _softplus_neg_abs(x)                      # log(1 + exp(-|x|))
    log_p = x.clamp(max=0.0).sub_(term)              # log sigmoid(x)
    log_q = term.neg_().add_(x.neg().clamp_(max=0.0))  # log sigmoid(-x), reusing term's buffer
    if p is None:
        p = torch.sigmoid(x)
    q = torch.sigmoid(-x)
    # a = pos t q^g+ ; b = neg (1 - t) p^g-
    a = t * pos if gamma_pos == 0.0 else _power(q, log_q, gamma_pos).mul_(t).mul_(pos)
    b = (1.0 - t).mul_(neg) if gamma_neg == 0.0 else \
        _power(p, log_p, gamma_neg).mul_(1.0 - t).mul_(neg)
    value = (a * log_p).addcmul_(b, log_q).neg_()
    if not need_grad:
        return value, None
    # dl/dx = -a (q - g+ p log p) - b (g- q log q - p)
    u = q if gamma_pos == 0.0 else torch.addcmul(q, p, log_p, value=-gamma_pos)
    v = p.neg() if gamma_neg == 0.0 else torch.addcmul(p.neg(), q, log_q, value=gamma_neg)
    grad = u.mul_(a).addcmul_(b, v).neg_()
    return value, grad


def _grad_formula(x: Tensor, t: Tensor, pos: Factor, neg: Factor, gamma_pos: float,
                  gamma_neg: float) -> Tensor:
    """``dl/dx`` written with differentiable operations of ``x`` (for double backward)."""
    p, q = torch.sigmoid(x), torch.sigmoid(-x)
    log_p, log_q = F.logsigmoid(x), F.logsigmoid(-x)
    a = pos * t * torch.exp(gamma_pos * log_q)
    b = neg * (1.0 - t) * torch.exp(gamma_neg * log_p)
    return -a * (q - gamma_pos * p * log_p) - b * (gamma_neg * q * log_q - p)


class _BinaryFocalSums(torch.autograd.Function):
    """Sums over the spatial dims of ``w l`` per (sample, channel), with the gradient computed
    in the forward pass and kept for the backward (see the module docstring)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, t: Tensor, w: Tensor | None, pos: Factor, neg: Factor,
                gamma_pos: float, gamma_neg: float, p: Tensor | None) -> Tensor:
        need_grad = bool(ctx.needs_input_grad[0])
        value, grad = _value_and_grad(x, t, pos, neg, gamma_pos, gamma_neg,
                                      None if p is None else p.detach(), need_grad)
        if w is not None:
            value.mul_(w)
            if grad is not None:
                grad.mul_(w)
        dims = tuple(range(2, x.dim()))
        sums = value.sum(dim=dims) if dims else value
        ctx.save_for_backward(x, t, w)
        ctx.grad = grad  # not an input or output: kept as is and consumed in place
        ctx.params = (pos, neg, gamma_pos, gamma_neg)
        ctx.spent = False
        return sums

    @staticmethod
    def backward(ctx: Any, go: Tensor) -> tuple[Tensor | None, ...]:
        x, t, w = ctx.saved_tensors
        grad = ctx.grad
        go = go.reshape(*go.shape, *([1] * (x.dim() - 2)))
        if torch.is_grad_enabled():  # double backward: a differentiable function of x
            g = _grad_formula(x, t, *ctx.params) * go
            if w is not None:
                g = g * w
            return (g,) + (None,) * 7
        if ctx.spent:  # a second backward (retain_graph): the buffer was used in place
            _, grad = _value_and_grad(x, t, *ctx.params, None, True)
            if w is not None:
                grad.mul_(w)
        ctx.spent, ctx.grad = True, None
        return (grad.mul_(go),) + (None,) * 7


def _fusable(prep: Prepared, *factors: Factor) -> bool:
    t, w = prep.target, prep.weight
    return (prep.from_logits and prep.mode != "multiclass"
            and not torch.compiler.is_compiling()
            and not t.requires_grad and (w is None or not w.requires_grad)
            and not any(isinstance(f, Tensor) and f.requires_grad for f in factors))


def binary_focal_sums(prep: Prepared, *, pos: Factor = 1.0, neg: Factor = 1.0,
                      gamma_pos: float = 0.0, gamma_neg: float = 0.0) -> Tensor | None:
    """Per (sample, channel) sums of ``w l`` over the voxels, (B, C), from one fused node (CUDA:
    a Triton kernel; CPU: :class:`_BinaryFocalSums`); ``None`` where no fused path applies.

    ``pos`` and ``neg`` are numbers or tensors of shape (B or 1, C) (or that shape followed by
    singleton spatial dims).
    """
    if not _fusable(prep, pos, neg):
        return None
    ndim = prep.raw.dim()
    pos_f, neg_f = _as_channel_factor(pos, ndim), _as_channel_factor(neg, ndim)
    if kernels.use_for(prep.raw):
        from ..kernels import triton_losses
        pos_k, neg_k = (f.reshape(f.shape[:2]) if isinstance(f, Tensor) else f
                        for f in (pos_f, neg_f))
        return triton_losses.binary_focal_sums(prep.raw, prep.target, prep.weight, pos_k, neg_k,
                                               float(gamma_pos), gamma_neg=float(gamma_neg))
    if prep.raw.device.type == "cpu":
        return _BinaryFocalSums.apply(prep.values, prep.target, prep.weight, pos_f, neg_f,
                                      float(gamma_pos), float(gamma_neg), vars(prep).get("prob"))
    return None


def binary_focal_mean(prep: Prepared, *, pos: Factor = 1.0, neg: Factor = 1.0,
                      gamma_pos: float = 0.0, gamma_neg: float = 0.0,
                      fallback: Callable[[], Tensor]) -> Tensor:
    """Per-sample mean of ``l`` over valid voxels and channels, (B,) (see the module
    docstring): :func:`binary_focal_sums` where it applies, else ``pixel_mean`` of
    ``fallback()``, the per-voxel map (B, C, *S) by the calling loss's own formula."""
    sums = binary_focal_sums(prep, pos=pos, neg=neg, gamma_pos=gamma_pos, gamma_neg=gamma_neg)
    return pixel_mean(fallback(), prep) if sums is None else mean_of_sums(sums, prep)


def _softmax_value_and_grad(x: Tensor, t: Tensor, cw: Tensor | None, gamma: float,
                            need_grad: bool) -> tuple[Tensor, Tensor | None]:
    """Per-voxel ``l`` (B, 1, *S) and ``dl/dx`` (B, C, *S) of the softmax focal term, without
    autograd (``gamma = 0``: the categorical cross-entropy)."""
    log_p = torch.log_softmax(x, dim=1)
    a = t if cw is None else t * cw                  # w_c t_c
    if gamma != 0.0:
        q = torch.expm1(log_p).neg_()                # 1 - p_c, accurate where p_c is near 1
        a = a * (q * q if gamma == 2.0 else q.log().mul_(gamma).exp_())
    value = (a * log_p).sum(dim=1, keepdim=True).neg_()
    if not need_grad:
        return value, None
    p = log_p.exp()
    if gamma != 0.0:
        # G = a (1 - gamma p log p / q); log p / q -> -1 where q -> 0, and q = 0 only where
        # a = 0 (gamma > 0), so a clamped denominator leaves G exact and finite
        ratio = log_p.div_(q.clamp_(min=torch.finfo(q.dtype).tiny))
        a = a - a * p * ratio.mul_(gamma)
    grad = p.mul_(a.sum(dim=1, keepdim=True)).sub_(a)
    return value, grad


class _SoftmaxFocalSums(torch.autograd.Function):
    """Per-sample sums of ``w l`` of the softmax focal term, with the gradient computed in the
    forward pass and kept for the backward (see the module docstring)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, t: Tensor, w: Tensor | None, cw: Tensor | None,
                gamma: float) -> Tensor:
        value, grad = _softmax_value_and_grad(x, t, cw, gamma, bool(ctx.needs_input_grad[0]))
        if w is not None:
            value.mul_(w)
            if grad is not None:
                grad.mul_(w)
        ctx.save_for_backward(x, t, w, cw)
        ctx.grad, ctx.gamma, ctx.spent = grad, gamma, False
        return value.flatten(1).sum(dim=1)

    @staticmethod
    def backward(ctx: Any, go: Tensor) -> tuple[Tensor | None, ...]:
        x, t, w, cw = ctx.saved_tensors
        go = go.reshape(-1, *([1] * (x.dim() - 1)))
        if torch.is_grad_enabled():  # double backward: differentiate the formula itself
            value = _softmax_formula(x, t, cw, ctx.gamma)
            if w is not None:
                value = value * w
            (g,) = torch.autograd.grad(value, x, go.expand_as(value), create_graph=True)
            return (g, None, None, None, None)
        grad = ctx.grad
        if ctx.spent:  # a second backward (retain_graph): the buffer was used in place
            _, grad = _softmax_value_and_grad(x, t, cw, ctx.gamma, True)
            if w is not None:
                grad.mul_(w)
        ctx.spent, ctx.grad = True, None
        return (grad.mul_(go), None, None, None, None)


def _softmax_formula(x: Tensor, t: Tensor, cw: Tensor | None, gamma: float) -> Tensor:
    """The softmax focal term with autograd, (B, 1, *S)."""
    log_p = torch.log_softmax(x, dim=1)
    term = t * log_p
    if gamma != 0.0:
        term = term * torch.exp(gamma * torch.log(-torch.expm1(log_p)))
    if cw is not None:
        term = term * cw
    return -term.sum(dim=1, keepdim=True)


def softmax_focal_mean(prep: Prepared, *, gamma: float,
                       fallback: Callable[[], Tensor]) -> Tensor:
    """Per-sample mean over valid voxels of ``l = -sum_c w_c t_c (1 - p_c)^gamma log p_c``,
    (B,), multiclass from logits.

    ``gamma = 0`` (the categorical cross-entropy) runs PyTorch's fused log-softmax + NLL
    (``F.cross_entropy`` takes the class indices, or the soft class probabilities, and the
    class weights directly) on every device; ``gamma > 0`` one fused node (a Triton kernel on
    CUDA, :class:`_SoftmaxFocalSums` on CPU; see the module docstring). ``fallback`` returns
    the per-voxel map (B, 1, *S) by the calling loss's own formula, used for probabilities, a
    target with a gradient, and the focal term where no fused node applies (under
    ``torch.compile``; off CPU without the Triton kernels).
    """
    w = prep.weight
    # integer labels: the one-hot target is not built unless needed (never for gamma = 0)
    usable = (prep.from_logits and prep.mode == "multiclass"
              and (prep.labels is not None or not prep.target.requires_grad)
              and (w is None or not w.requires_grad))
    if usable and gamma == 0.0:
        target = prep.target if prep.labels is None else prep.labels
        per_voxel = F.cross_entropy(prep.values, target, weight=prep.class_weights,
                                    reduction="none").unsqueeze(1)
        return pixel_mean(per_voxel, prep)
    if usable and kernels.use_for(prep.raw):
        from ..kernels import triton_losses
        labels_only = prep.labels is not None and "target" not in vars(prep)
        sums = triton_losses.softmax_focal_sums(prep.raw,
                                                prep.labels if labels_only else prep.target,
                                                w, prep.class_weights, float(gamma))
    elif usable and prep.raw.device.type == "cpu" and not torch.compiler.is_compiling():
        cw = None if prep.class_weights is None else \
            prep.class_weights.view(1, -1, *([1] * (prep.raw.dim() - 2)))
        sums = _SoftmaxFocalSums.apply(prep.values, prep.target, w, cw, float(gamma))
    else:
        return pixel_mean(fallback(), prep)
    return mean_of_sums(sums.view(-1, 1), prep)
