"""Fused Triton kernels vs float64 references written from the formulas, value and gradient.

Every check runs the kernel on float16/bfloat16/float32/float64 logits and an independent
float64 reference (plain torch ops, autograd for its gradient) on the same values, and compares
the outputs and the gradient of a random weighted sum of them.

Tolerances: float32 and float64 as stated per dtype below. For float16 and bfloat16 logits the
kernels still compute in float32 on exactly the values the reference sees (the reference takes
the same half-precision numbers in float64), so the sums keep the float32 tolerance; only the
gradient, returned in the logits' dtype, carries one rounding to 11 (float16) or 8 (bfloat16)
significant bits, i.e. a relative error up to 4.9e-4 or 3.9e-3.

Without a GPU the kernels run through Triton's interpreter (see conftest.py), which is slow:
tensors stay at a few thousand elements.
"""

from __future__ import annotations

import os
import subprocess
import sys
from types import ModuleType
from typing import Any, Callable

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

#: (value rtol, value atol, gradient rtol, gradient atol) per logits dtype.
TOL = {
    torch.float64: (1e-9, 1e-12, 1e-9, 1e-12),
    torch.float32: (1e-5, 1e-6, 1e-5, 1e-6),
    torch.float16: (1e-5, 1e-6, 1e-3, 1e-6),
    torch.bfloat16: (1e-5, 1e-6, 8e-3, 1e-6),
}

FUNCTIONS = ["sigmoid_stats", "softmax_stats", "binary_focal", "softmax_focal"]


# ---------------------------------------------------------------------------------------------
# float64 references, from the formulas
# ---------------------------------------------------------------------------------------------


def _spatial(x: Tensor) -> tuple[int, ...]:
    return tuple(range(2, x.dim()))


def _wsum(v: Tensor, w: Tensor | None) -> Tensor:
    """sum_S w v per (B, C); a zero-dim spatial part sums nothing."""
    if w is not None:
        v = v * w
    dims = _spatial(v)
    return v.sum(dim=dims) if dims else v


def _per_row(value: float | Tensor, x: Tensor) -> float | Tensor:
    """A float stays; a (B, C) or (1, C) tensor is viewed against (B, C, *S)."""
    if isinstance(value, Tensor):
        return value.to(x).reshape(*value.shape, *([1] * (x.dim() - 2)))
    return value


def ref_stats(p: Tensor, t: Tensor, w: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
    return _wsum(p * t, w), _wsum(p, w), _wsum(t, w)


def ref_sigmoid_stats(x: Tensor, t: Tensor, w: Tensor | None) -> tuple[Tensor, ...]:
    return ref_stats(torch.sigmoid(x), t, w)


def ref_softmax_stats(x: Tensor, t: Tensor, w: Tensor | None) -> tuple[Tensor, ...]:
    return ref_stats(torch.softmax(x, dim=1), t, w)


def ref_binary_focal(x: Tensor, t: Tensor, w: Tensor | None, pos: float | Tensor,
                     neg: float | Tensor, gamma: float,
                     gamma_neg: float | None = None) -> tuple[Tensor]:
    log_p, log_q = F.logsigmoid(x), F.logsigmoid(-x)
    pos, neg = _per_row(pos, x), _per_row(neg, x)
    gamma_neg = gamma if gamma_neg is None else gamma_neg
    loss = -(pos * t * torch.exp(gamma * log_q) * log_p
             + neg * (1 - t) * torch.exp(gamma_neg * log_p) * log_q)
    return (_wsum(loss, w),)


def ref_softmax_focal(x: Tensor, t: Tensor, w: Tensor | None, class_weights: Tensor | None,
                      gamma: float) -> tuple[Tensor]:
    log_p = torch.log_softmax(x, dim=1)
    # log(1 - p_c) = logsumexp over the other channels minus logsumexp over all: exact in fp64
    c = x.shape[1]
    eye = torch.eye(c, dtype=torch.bool, device=x.device).view(c, 1, c, *([1] * (x.dim() - 2)))
    others = torch.where(eye, torch.full_like(x, float("-inf")), x.unsqueeze(0))
    log_1mp = (torch.logsumexp(others, dim=2) - torch.logsumexp(x, dim=1)).movedim(0, 1)
    terms = t * torch.exp(gamma * log_1mp) * log_p
    if class_weights is not None:
        terms = terms * class_weights.to(x).view(1, c, *([1] * (x.dim() - 2)))
    loss = -terms.sum(dim=1, keepdim=True)
    return (_wsum(loss, w).sum(dim=1),)


# ---------------------------------------------------------------------------------------------
# running and comparing
# ---------------------------------------------------------------------------------------------


def _calls(kernels: ModuleType, name: str, **kw: Any) -> tuple[Callable, Callable]:
    """(kernel call, reference call), each (x, t, w) -> tuple of outputs."""
    if name == "sigmoid_stats":
        return kernels.sigmoid_stats, ref_sigmoid_stats
    if name == "softmax_stats":
        return kernels.softmax_stats, ref_softmax_stats
    if name == "binary_focal":
        args = (kw.get("pos", 0.25), kw.get("neg", 0.75), kw.get("gamma", 2.0))
        gamma_neg = kw.get("gamma_neg")
        return ((lambda x, t, w: (kernels.binary_focal_sums(x, t, w, *args,
                                                             gamma_neg=gamma_neg),)),
                (lambda x, t, w: ref_binary_focal(x, t, w, *args, gamma_neg)))
    args = (kw.get("class_weights"), kw.get("gamma", 2.0))
    return ((lambda x, t, w: (kernels.softmax_focal_sums(x, t, w, *args),)),
            (lambda x, t, w: ref_softmax_focal(x, t, w, *args)))


def _grad(outputs: tuple[Tensor, ...], weights: list[Tensor], x: Tensor) -> Tensor:
    total = sum((wt.to(o) * o).sum() for wt, o in zip(weights, outputs))
    (g,) = torch.autograd.grad(total, x)
    return g


def check(kernels: ModuleType, name: str, x: Tensor, t: Tensor, w: Tensor | None = None, *,
          tol: tuple[float, float, float, float] | None = None,
          **kw: Any) -> tuple[tuple[Tensor, ...], Tensor]:
    """Compare kernel and reference values and gradients; return the kernel's.

    ``tol`` = (value rtol, value atol, gradient rtol, gradient atol) overrides ``TOL``.
    """
    run, ref = _calls(kernels, name, **kw)
    rtol, atol, grad_rtol, grad_atol = tol or TOL[x.dtype]
    xk = x.detach().clone().requires_grad_()
    out = run(xk, t, w)
    x64 = x.detach().double().requires_grad_()
    expected = ref(x64, t.double(), None if w is None else w.double())
    acc = torch.float64 if x.dtype == torch.float64 else torch.float32
    for o, e in zip(out, expected, strict=True):
        assert o.dtype == acc and o.shape == e.shape
        torch.testing.assert_close(o.double(), e, rtol=rtol, atol=atol)
    weights = _grad_weights(expected, x.device)
    gx = _grad(out, weights, xk)
    assert gx.dtype == x.dtype and gx.shape == x.shape
    assert torch.isfinite(gx).all()
    torch.testing.assert_close(gx.double(), _grad(expected, weights, x64), rtol=grad_rtol,
                               atol=grad_atol)
    return out, gx


def _grad_weights(outputs: tuple[Tensor, ...], device: torch.device) -> list[Tensor]:
    """The random weights of the outputs whose weighted sum ``check`` differentiates."""
    gen = torch.Generator().manual_seed(1)
    return [torch.randn(o.shape, generator=gen, dtype=torch.float64).to(device) for o in outputs]


def check_labels(kernels: ModuleType, name: str, x: Tensor, labels: Tensor,
                 w: Tensor | None = None, *, tol: tuple[float, float, float, float] | None = None,
                 **kw: Any) -> None:
    """``check`` a softmax function on the one-hot target of ``labels``, then require the same
    values and gradient, at the same tolerance, from int32 and int64 ``labels`` (B, *S)."""
    one_hot = F.one_hot(labels.long(), x.shape[1]).movedim(-1, 1).float()
    out, gx = check(kernels, name, x, one_hot, w, tol=tol, **kw)
    run, _ = _calls(kernels, name, **kw)
    rtol, atol, grad_rtol, grad_atol = tol or TOL[x.dtype]
    for dtype in (torch.int32, torch.int64):
        xk = x.detach().clone().requires_grad_()
        out_labels = run(xk, labels.to(dtype), w)
        for o, e in zip(out_labels, out, strict=True):
            assert o.dtype == e.dtype
            torch.testing.assert_close(o.detach(), e.detach(), rtol=rtol, atol=atol)
        g = _grad(out_labels, _grad_weights(out, x.device), xk)
        assert g.dtype == gx.dtype
        torch.testing.assert_close(g, gx, rtol=grad_rtol, atol=grad_atol)


def make(shape: tuple[int, ...], device: torch.device, *, dtype: torch.dtype = torch.float32,
         seed: int = 0) -> tuple[Tensor, Tensor]:
    """Logits (standard deviation 3) and a soft target uniform in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    x = (3.0 * torch.randn(shape, generator=g)).to(dtype)
    t = torch.rand(shape, generator=g)
    return x.to(device), t.to(device)


def weights(kind: str | None, shape: tuple[int, ...], device: torch.device,
            seed: int = 2) -> Tensor | None:
    """None, shared (B, 1, *S) or per-channel (B, C, *S) weights with about 30% zeros."""
    if kind is None:
        return None
    g = torch.Generator().manual_seed(seed)
    wshape = (shape[0], 1, *shape[2:]) if kind == "shared" else shape
    w = torch.rand(wshape, generator=g) * 2
    w[torch.rand(wshape, generator=g) < 0.3] = 0
    return w.to(device)


def class_labels(shape: tuple[int, ...], device: torch.device, *, seed: int = 0) -> Tensor:
    """Random int64 class indices (B, *S) in [0, C) for logits of ``shape`` (B, C, *S)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(shape[1], (shape[0], *shape[2:]), generator=g).to(device)


def softmax_target(shape: tuple[int, ...], device: torch.device, *, seed: int = 0,
                   hard: bool = False) -> Tensor:
    """One-hot (of ``class_labels``) or soft (rows summing to 1) multiclass target."""
    if hard:
        labels = class_labels(shape, device, seed=seed)
        return F.one_hot(labels, shape[1]).movedim(-1, 1).float()
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(torch.randn(shape, generator=g) * 2, dim=1).to(device)


# ---------------------------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------------------------

SHAPES = [(3, 2), (2, 3, 37), (2, 2, 9, 7), (1, 2, 3, 4, 5)]  # 0 to 3 spatial dims, N odd


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{len(s) - 2}d")
@pytest.mark.parametrize("wkind", [None, "shared", "channel"])
def test_sigmoid_stats_reference_values(kernels: ModuleType, device: torch.device,
                                        shape: tuple[int, ...], wkind: str | None) -> None:
    x, t = make(shape, device)
    check(kernels, "sigmoid_stats", x, t, weights(wkind, shape, device))


@pytest.mark.parametrize("shape", [(2, 2, 37), (2, 5, 9, 7), (1, 5, 3, 4, 5)],
                         ids=["1d-c2", "2d-c5", "3d-c5"])
@pytest.mark.parametrize("wkind", [None, "shared", "channel"])
def test_softmax_stats_reference_values(kernels: ModuleType, device: torch.device,
                                        shape: tuple[int, ...], wkind: str | None) -> None:
    x, _ = make(shape, device)
    check(kernels, "softmax_stats", x, softmax_target(shape, device), weights(wkind, shape, device))


#: (gamma, gamma_neg) pairs with two different exponents, one of them 0 or both positive.
TWO_EXPONENTS = [(0.0, 0.5), (0.5, 0.0), (2.0, 0.25), (0.0, 2.0)]


@pytest.mark.parametrize(("gamma", "gamma_neg"),
                         [(0.0, None), (0.5, None), (2.0, None), *TWO_EXPONENTS])
@pytest.mark.parametrize("pos_neg", ["floats", "bc", "1c"])
@pytest.mark.parametrize("wkind", [None, "shared", "channel"])
def test_binary_focal_reference_values(kernels: ModuleType, device: torch.device, gamma: float,
                                       gamma_neg: float | None, pos_neg: str,
                                       wkind: str | None) -> None:
    shape = (2, 3, 6, 7)
    x, t = make(shape, device)
    if pos_neg == "floats":
        pos, neg = 0.25, 0.75
    else:
        rows = shape[0] if pos_neg == "bc" else 1
        g = torch.Generator().manual_seed(3)
        pos, neg = torch.rand(rows, 3, generator=g), torch.rand(rows, 3, generator=g)
        pos, neg = pos.to(device), neg.to(device)
    check(kernels, "binary_focal", x, t, weights(wkind, shape, device), pos=pos, neg=neg,
          gamma=gamma, gamma_neg=gamma_neg)


def test_binary_focal_gamma_neg_defaults_to_gamma(kernels: ModuleType,
                                                  device: torch.device) -> None:
    x, t = make((2, 3, 20), device)
    results = []
    for kw in ({}, {"gamma_neg": 0.5}):
        xk = x.clone().requires_grad_()
        out = kernels.binary_focal_sums(xk, t, None, 0.25, 0.75, 0.5, **kw)
        results.append((out, torch.autograd.grad(out.sum(), xk)[0]))
    for a, b in zip(*results):
        assert torch.equal(a, b)


@pytest.mark.parametrize(("gamma", "gamma_neg"), TWO_EXPONENTS)
@pytest.mark.parametrize("case", ["saturated", "far-tail", "fp16", "bf16"])
def test_binary_focal_two_exponents(kernels: ModuleType, device: torch.device, gamma: float,
                                    gamma_neg: float, case: str) -> None:
    # the coverage of the single-exponent tests below, for two different exponents
    kw: dict[str, Any] = {"gamma": gamma, "gamma_neg": gamma_neg}
    g = torch.Generator().manual_seed(5)
    if case == "saturated":
        # logits +-100 and in between, hard targets, (B, C) pos/neg, weights with zeros
        shape = (2, 3, 4, 8)
        x = torch.tensor([-100.0, -30.0, -17.0, -1.0, 0.0, 1.0, 17.0, 30.0, 100.0])
        x = x[torch.randint(9, shape, generator=g)]
        t = (torch.rand(shape, generator=g) > 0.5).float()
        pos, neg = torch.rand(2, 3, generator=g).to(device), torch.rand(2, 3, generator=g)
        out, _ = check(kernels, "binary_focal", x.to(device), t.to(device),
                       weights("shared", shape, device), pos=pos, neg=neg.to(device), **kw)
        assert torch.isfinite(out[0]).all()
    elif case == "far-tail":
        # confident right predictions, |x| in [12, 25]: relative accuracy entry by entry
        shape = (2, 2, 60)
        sign = torch.where(torch.rand(shape, generator=g) < 0.5, -1.0, 1.0)
        x = sign * (12.0 + 13.0 * torch.rand(shape, generator=g))
        check(kernels, "binary_focal", x.to(device), (sign > 0).float().to(device), pos=0.25,
              neg=0.75, tol=RELATIVE, **kw)
    else:
        # half-precision logits, float16 soft target, bfloat16 per-channel weights
        shape = (2, 3, 7, 9)
        dtype = torch.float16 if case == "fp16" else torch.bfloat16
        x, t = make(shape, device, dtype=dtype)
        w = weights("channel", shape, device)
        check(kernels, "binary_focal", x, t.to(torch.float16), w.to(torch.bfloat16), pos=0.25,
              neg=torch.rand(1, 3, generator=g).to(device), **kw)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("channels", [2, 5])
@pytest.mark.parametrize("class_weights", [False, True])
@pytest.mark.parametrize("wkind", [None, "shared"])
def test_softmax_focal_reference_values(kernels: ModuleType, device: torch.device, gamma: float,
                                        channels: int, class_weights: bool,
                                        wkind: str | None) -> None:
    shape = (2, channels, 5, 6)
    x, _ = make(shape, device)
    cw = torch.linspace(0.5, 2.0, channels, device=device) if class_weights else None
    check(kernels, "softmax_focal", x, softmax_target(shape, device), weights(wkind, shape, device),
          class_weights=cw, gamma=gamma)


@pytest.mark.parametrize("channels", [2, 5, 64])
@pytest.mark.parametrize("wkind", [None, "shared", "channel"])
def test_softmax_stats_labels(kernels: ModuleType, device: torch.device, channels: int,
                              wkind: str | None) -> None:
    # integer class indices give what their one-hot target gives; sum_t counts the voxels
    shape = (2, channels, 5, 3)
    x, _ = make(shape, device)
    labels = class_labels(shape, device, seed=channels)
    w = weights(wkind, shape, device)
    check_labels(kernels, "softmax_stats", x, labels, w)
    one_hot = F.one_hot(labels, channels).movedim(-1, 1).float()
    _, _, sum_t = kernels.softmax_stats(x, labels, w)
    expected = one_hot if w is None else one_hot * w
    torch.testing.assert_close(sum_t, expected.sum(dim=(2, 3)), rtol=1e-6, atol=0.0)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("channels", [2, 5, 64])
@pytest.mark.parametrize("class_weights", [False, True])
@pytest.mark.parametrize("wkind", [None, "shared"])
def test_softmax_focal_labels(kernels: ModuleType, device: torch.device, gamma: float,
                              channels: int, class_weights: bool, wkind: str | None) -> None:
    shape = (2, channels, 5, 3)
    x, _ = make(shape, device)
    cw = torch.linspace(0.5, 2.0, channels, device=device) if class_weights else None
    check_labels(kernels, "softmax_focal", x, class_labels(shape, device, seed=channels),
                 weights(wkind, shape, device), class_weights=cw, gamma=gamma)


@pytest.mark.parametrize("name", ["softmax_stats", "softmax_focal"])
@pytest.mark.parametrize("n", [40, 150], ids=["below-block", "not-multiple"])
def test_softmax_labels_block_boundaries(small_blocks: ModuleType, device: torch.device,
                                         name: str, n: int) -> None:
    shape = (2, 3, n)
    x, _ = make(shape, device)
    check_labels(small_blocks, name, x, class_labels(shape, device), weights("shared", shape,
                                                                             device))


@pytest.mark.parametrize("name", ["softmax_stats", "softmax_focal"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64],
                         ids=["fp16", "bf16", "fp64"])
def test_softmax_labels_input_dtypes(kernels: ModuleType, device: torch.device, name: str,
                                     dtype: torch.dtype) -> None:
    shape = (2, 3, 7, 9)
    x, _ = make(shape, device, dtype=dtype)
    check_labels(kernels, name, x, class_labels(shape, device),
                 weights("shared", shape, device).to(torch.bfloat16), gamma=0.5)


def test_softmax_labels_strided_and_empty(kernels: ModuleType, device: torch.device) -> None:
    # strided labels are copied once; an empty spatial part gives zeros and a gradient
    shape = (2, 3, 6, 5)
    x, _ = make(shape, device)
    labels = class_labels((2, 3, 6, 10), device)[..., ::2]
    assert not labels.is_contiguous()
    check_labels(kernels, "softmax_stats", x, labels)
    check_labels(kernels, "softmax_focal", x, labels, gamma=2.0)
    x = torch.zeros(2, 3, 0, 4, device=device, requires_grad=True)
    empty = torch.zeros(2, 0, 4, dtype=torch.int64, device=device)
    out = (*kernels.softmax_stats(x, empty), kernels.softmax_focal_sums(x, empty, None, None, 2.0))
    assert all((o == 0).all() for o in out)
    (g,) = torch.autograd.grad(out[0].sum() + out[3].sum(), x)
    assert g.shape == x.shape


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("n", [40, 64, 150], ids=["below-block", "one-block", "not-multiple"])
def test_block_boundaries(small_blocks: ModuleType, device: torch.device, name: str,
                          n: int) -> None:
    # BLOCK = 64 voxels per program (32 per softmax tile at C = 3, padded to 4)
    channels = 3
    shape = (2, channels, n)
    x, t = make(shape, device)
    if name.startswith("softmax"):
        t = softmax_target(shape, device)
    wkind = "shared" if name == "softmax_focal" else "channel"
    check(small_blocks, name, x, t, weights(wkind, shape, device))


@pytest.mark.parametrize("name", FUNCTIONS)
def test_default_block_several_programs(kernels: ModuleType, device: torch.device,
                                        name: str) -> None:
    # N = 2500 > MAX_BLOCK = 2048 voxels and > the softmax tile of 1024 voxels at C = 2
    shape = (1, 2, 50, 50)
    x, t = make(shape, device)
    if name.startswith("softmax"):
        t = softmax_target(shape, device)
    check(kernels, name, x, t, weights("shared", shape, device))


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64],
                         ids=["fp16", "bf16", "fp64"])
def test_input_dtypes(kernels: ModuleType, device: torch.device, name: str,
                      dtype: torch.dtype) -> None:
    shape = (2, 3, 7, 9)
    x, t = make(shape, device, dtype=dtype)
    if name.startswith("softmax"):
        t = softmax_target(shape, device)
    w = weights("shared", shape, device)
    # target and weights in half precision too: any float dtype is read as is
    check(kernels, name, x, t.to(torch.float16), None if w is None else w.to(torch.bfloat16),
          gamma=0.5)


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_saturated_logits_and_hard_targets(kernels: ModuleType, device: torch.device, name: str,
                                           gamma: float) -> None:
    # logits +-100 and in between, targets exactly 0 and 1: finite and accurate
    shape = (2, 3, 4, 8)
    g = torch.Generator().manual_seed(5)
    x = torch.tensor([-100.0, -30.0, -17.0, -1.0, 0.0, 1.0, 17.0, 30.0, 100.0])
    x = x[torch.randint(9, shape, generator=g)].to(device)
    w = weights("shared", shape, device)
    cw = torch.tensor([1.0, 2.0, 0.5], device=device)
    if name.startswith("softmax"):
        # one-hot target, and the same as integer class indices
        check_labels(kernels, name, x, class_labels(shape, device), w, gamma=gamma,
                     class_weights=cw)
        t = softmax_target(shape, device, hard=True)
    else:
        t = (torch.rand(shape, generator=g) > 0.5).float().to(device)
    out, gx = check(kernels, name, x, t, w, gamma=gamma, class_weights=cw)
    assert all(torch.isfinite(o).all() for o in out)


#: Relative only: the tests below compare values and gradients far below 1e-6 entry by entry.
RELATIVE = (1e-5, 0.0, 1e-5, 0.0)


@pytest.mark.parametrize("name", ["sigmoid_stats", "binary_focal"])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_binary_far_tail_relative_accuracy(kernels: ModuleType, device: torch.device, name: str,
                                           gamma: float) -> None:
    # confident right predictions, |x| in [12, 25]: 1 - p from 6e-6 down to 1e-11, the loss
    # terms down to 1e-33; each must keep its relative accuracy (1 - p not formed as 1 - p,
    # log(1 + e) not rounded to 0 where e < float32 epsilon)
    shape = (2, 2, 60)
    g = torch.Generator().manual_seed(7)
    sign = torch.where(torch.rand(shape, generator=g) < 0.5, -1.0, 1.0)
    x = sign * (12.0 + 13.0 * torch.rand(shape, generator=g))
    t = (sign > 0).float()
    check(kernels, name, x.to(device), t.to(device), gamma=gamma, pos=0.25, neg=0.75,
          tol=RELATIVE)


@pytest.mark.parametrize("gamma", [0.0, 0.25, 0.5, 2.0])
def test_softmax_focal_dominant_class(kernels: ModuleType, device: torch.device,
                                      gamma: float) -> None:
    # the labelled class ahead by 8 to 22: 1 - p_c from 3e-4 down to 3e-10, far below float32
    # epsilon; (1 - p)^gamma, the loss and every gradient entry keep their relative accuracy.
    # (Not further: the float64 reference's own gradient p_c - 1 then loses digits.)
    shape = (2, 3, 40)
    g = torch.Generator().manual_seed(6)
    x = torch.randn(shape, generator=g)
    lead = torch.randint(3, (2, 40), generator=g)
    gap = torch.linspace(8.0, 22.0, 40).expand(2, 40)
    x = x + F.one_hot(lead, 3).movedim(-1, 1) * gap[:, None]
    # the one-hot target of `lead`, and `lead` itself as int32 / int64 class indices
    check_labels(kernels, "softmax_focal", x.to(device), lead.to(device), gamma=gamma,
                 tol=RELATIVE)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_non_contiguous_input(kernels: ModuleType, device: torch.device, name: str) -> None:
    shape = (2, 3, 6, 10)
    base, t = make(shape, device)
    if name.startswith("softmax"):
        t = softmax_target(shape, device)
    sliced = make((2, 3, 6, 20), device, seed=4)[0][..., ::2]            # strided
    channels_last = base.contiguous(memory_format=torch.channels_last)
    assert not sliced.is_contiguous() and not channels_last.is_contiguous()
    w = weights("shared", shape, device)
    check(kernels, name, sliced, t, w)
    out_cl, g_cl = check(kernels, name, channels_last, t.transpose(2, 3).contiguous()
                         .transpose(2, 3), w)
    out, g = check(kernels, name, base, t, w)
    for a, b in zip(out_cl, out):
        assert torch.equal(a, b)
    assert torch.equal(g_cl, g)


def test_channel_broadcast_weights(kernels: ModuleType, device: torch.device) -> None:
    # (B, C, *S) weights that are a channel broadcast give the same as (B, 1, *S)
    shape = (2, 3, 5, 7)
    x, t = make(shape, device)
    w = weights("shared", shape, device)
    expanded, _ = check(kernels, "sigmoid_stats", x, t, w.expand(shape))
    shared, _ = check(kernels, "sigmoid_stats", x, t, w)
    for a, b in zip(expanded, shared):
        assert torch.equal(a, b)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_zero_weight_gets_zero_gradient(kernels: ModuleType, device: torch.device,
                                        name: str) -> None:
    shape = (2, 3, 6, 6)
    x, t = make(shape, device)
    if name.startswith("softmax"):
        t = softmax_target(shape, device)
    w = weights("shared", shape, device)
    _, gx = check(kernels, name, x, t, w)
    assert (gx.masked_select(w.expand(shape) == 0) == 0).all()


@pytest.mark.parametrize("name", ["sigmoid_stats", "softmax_stats"])
@pytest.mark.parametrize("used", [(0,), (1,), (0, 2)], ids=["tp", "sum_p", "tp-sum_t"])
def test_stats_with_unused_outputs(kernels: ModuleType, device: torch.device, name: str,
                                   used: tuple[int, ...]) -> None:
    # outputs left out of the graph reach the backward as None
    shape = (2, 3, 20)
    x, t = make(shape, device)
    w = weights("shared", shape, device)
    run, ref = _calls(kernels, name)
    xk = x.clone().requires_grad_()
    x64 = x.double().requires_grad_()
    out, expected = run(xk, t, w), ref(x64, t.double(), w.double())
    (g,) = torch.autograd.grad(sum(out[i].sum() for i in used), xk)
    (g_ref,) = torch.autograd.grad(sum(expected[i].sum() for i in used), x64)
    torch.testing.assert_close(g.double(), g_ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["softmax_stats", "softmax_focal"])
@pytest.mark.parametrize("channels", [64, 100])
def test_softmax_many_channels(kernels: ModuleType, device: torch.device, name: str,
                               channels: int) -> None:
    shape = (1, channels, 20)
    x, _ = make(shape, device)
    check(kernels, name, x, softmax_target(shape, device), weights("shared", shape, device))


@pytest.mark.parametrize("name", FUNCTIONS)
def test_empty_spatial(kernels: ModuleType, device: torch.device, name: str) -> None:
    x = torch.zeros(2, 3, 0, 4, device=device, requires_grad=True)
    run, _ = _calls(kernels, name)
    out = run(x, torch.zeros_like(x), None)
    assert all((o == 0).all() for o in out)
    (g,) = torch.autograd.grad(out[0].sum(), x)
    assert g.shape == x.shape


@pytest.mark.parametrize("name", FUNCTIONS)
def test_deterministic(kernels: ModuleType, device: torch.device, name: str) -> None:
    shape = (2, 3, 30)
    x, t = make(shape, device)
    run, _ = _calls(kernels, name)
    results = []
    for _ in range(2):
        xk = x.clone().requires_grad_()
        out = run(xk, t, None)
        results.append((*out, torch.autograd.grad(out[0].sum(), xk)[0]))
    for a, b in zip(*results):
        assert torch.equal(a, b)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_outputs_modifiable_in_place(kernels: ModuleType, device: torch.device,
                                     name: str) -> None:
    # each output is its own tensor, not one of several views of a shared buffer
    x, t = make((2, 3, 10), device)
    x.requires_grad_()
    run, _ = _calls(kernels, name)
    out = run(x, t, None)
    expected = [o.detach() + 1 for o in out]
    for o in out:
        o.add_(1)
    for o, e in zip(out, expected):
        assert torch.equal(o.detach(), e)
    (g,) = torch.autograd.grad(out[0].sum(), x)
    assert torch.isfinite(g).all()


@pytest.mark.parametrize("name", FUNCTIONS)
def test_double_backward_raises(kernels: ModuleType, device: torch.device, name: str) -> None:
    shape = (1, 2, 8)
    x, t = make(shape, device)
    x.requires_grad_()
    run, _ = _calls(kernels, name)
    out = run(x, t, None)
    with pytest.raises(RuntimeError, match="create_graph=True is not supported"):
        torch.autograd.grad(out[0].sum(), x, create_graph=True)


def test_errors(kernels: ModuleType, device: torch.device,
                monkeypatch: pytest.MonkeyPatch) -> None:
    x, t = make((2, 3, 8), device)
    k = kernels
    with pytest.raises(TypeError, match="`x` must be a floating-point tensor"):
        k.sigmoid_stats(x.long(), t)
    with pytest.raises(TypeError, match="`t` must be a torch.Tensor; got list"):
        k.sigmoid_stats(x, [0.0])
    with pytest.raises(ValueError, match=r"`x` must have shape \(B, C, \*S\).*got 1 dims"):
        k.sigmoid_stats(x[0, 0], t[0, 0])
    with pytest.raises(ValueError, match=r"`t` must have the shape of `x` \(2, 3, 8\); "
                                         r"got \(2, 3, 7\)"):
        k.binary_focal_sums(x, t[..., :7], None, 1.0, 1.0, 0.0)
    with pytest.raises(ValueError, match=r"`w` must be None or have shape \(B, 1, \*S\) = "
                                         r"\(2, 1, 8\) or .*got \(2, 2, 8\)"):
        k.sigmoid_stats(x, t, t[:, :2])
    with pytest.raises(ValueError, match=r"`w` must be None or have shape \(B, 1, \*S\) = "
                                         r"\(2, 1, 8\); got \(2, 3, 8\)"):
        k.softmax_focal_sums(x, t, t, None, 0.0)
    with pytest.raises(ValueError, match="at least 2 channels"):
        k.softmax_stats(x[:, :1], t[:, :1])
    with pytest.raises(ValueError, match=r"`pos` must be a float or a tensor of shape \(B, C\) "
                                         r"= \(2, 3\) or \(1, C\) = \(1, 3\); got \(3, 3\)"):
        k.binary_focal_sums(x, t, None, torch.ones(3, 3), 1.0, 0.0)
    with pytest.raises(TypeError, match="`neg` must be a float"):
        k.binary_focal_sums(x, t, None, 1.0, "1", 0.0)
    with pytest.raises(ValueError, match="`gamma` must be a finite float >= 0; got -1.0"):
        k.binary_focal_sums(x, t, None, 1.0, 1.0, -1.0)
    with pytest.raises(ValueError, match="`gamma_neg` must be a finite float >= 0; got -1.0"):
        k.binary_focal_sums(x, t, None, 1.0, 1.0, 0.0, gamma_neg=-1.0)
    with pytest.raises(ValueError, match="`gamma_neg` must be a finite float >= 0; got inf"):
        k.binary_focal_sums(x, t, None, 1.0, 1.0, 2.0, gamma_neg=float("inf"))
    with pytest.raises(TypeError, match="`gamma_neg` must be a float >= 0; got str"):
        k.binary_focal_sums(x, t, None, 1.0, 1.0, 0.0, gamma_neg="2")
    with pytest.raises(TypeError, match="positional argument"):
        k.binary_focal_sums(x, t, None, 1.0, 1.0, 0.0, 2.0)  # gamma_neg is keyword-only
    labels = torch.zeros(2, 8, dtype=torch.int64, device=device)
    for bad in (labels[:, None].expand(2, 3, 8), labels[:1], labels[:, :7]):
        for dtype in (torch.int32, torch.int64):
            with pytest.raises(ValueError, match=r"`t` of integer class indices must have shape "
                                                 r"\(B, \*S\) = \(2, 8\); got "
                                                 rf"\({', '.join(map(str, bad.shape))},?\)"):
                k.softmax_stats(x, bad.to(dtype))
            with pytest.raises(ValueError, match="`t` of integer class indices must have shape"):
                k.softmax_focal_sums(x, bad.to(dtype), None, None, 0.0)
    # other integer dtypes, bool, and integer targets of the per-channel functions: TypeError
    for bad in (labels.to(torch.int16), labels.to(torch.uint8), labels.bool()):
        with pytest.raises(TypeError, match=rf"`t` must be a floating-point tensor .*got dtype "
                                            rf"{bad.dtype}"):
            k.softmax_stats(x, bad)
    with pytest.raises(TypeError, match="`t` must be a floating-point tensor"):
        k.sigmoid_stats(x, labels[:, None].expand(2, 3, 8))
    with pytest.raises(TypeError, match="`t` must be a floating-point tensor"):
        k.binary_focal_sums(x, t.long(), None, 1.0, 1.0, 0.0)
    with pytest.raises(ValueError, match=r"`class_weights` must be None or have shape \(C,\) = "
                                         r"\(3,\); got \(2,\)"):
        k.softmax_focal_sums(x, t, None, torch.ones(2), 0.0)
    monkeypatch.setattr(kernels, "MAX_CHANNELS", 2)
    with pytest.raises(ValueError, match="at most 2 channels"):
        k.softmax_focal_sums(x, t, None, None, 0.0)


def test_package_import_stays_free_of_triton() -> None:
    code = ("import sys, seglosses, seglosses.kernels as k\n"
            "assert 'triton' not in sys.modules, 'triton imported by seglosses'\n"
            "assert k.is_available() is True and 'triton' in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True)


COMPILE_FOR_SM90 = """
import triton
import triton.language as tl
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from seglosses.kernels import triton_losses as K

kernels = [getattr(K, name) for name in sorted(dir(K)) if name.endswith("_kernel")]
assert len(kernels) == 8, kernels
#: flags compiled also flipped alone against all the others
SINGLE = ("LABELS", "FOCAL_POS", "FOCAL_NEG")
# (logits, float target/weights, integer labels, accumulation dtype, every constexpr flag)
for xd, td, ld, acc, flag in (("bf16", "fp16", "i32", "fp32", True),
                              ("fp32", "fp32", "i64", "fp32", False),
                              ("fp64", "fp64", "i64", "fp64", True)):
    for fn in kernels:
        names = [param.name for param in fn.params if param.is_constexpr]
        variants = [{}] + [{name: not flag} for name in SINGLE if name in names]
        for variant in variants:
            sig, constexprs = {}, {}
            for param in fn.params:
                name = param.name
                if param.is_constexpr:
                    constexprs[name] = {"ACC": tl.float64 if acc == "fp64" else tl.float32,
                                        "BLOCK": K.MAX_BLOCK, "C_PAD": 8,
                                        "BLOCK_S": K.TILE // 8}.get(name, variant.get(name, flag))
                elif name in ("x_ptr", "gx_ptr"):
                    sig[name] = "*" + xd
                elif name in ("t_ptr", "w_ptr"):
                    sig[name] = "*" + td
                elif name.endswith("_ptr"):
                    sig[name] = "*" + acc
                else:
                    sig[name] = "fp32" if name.startswith("gamma") else "i32"
            if constexprs.get("LABELS"):
                sig["t_ptr"] = "*" + ld
            sig.update(dict.fromkeys(constexprs, "constexpr"))
            compiled = triton.compile(ASTSource(fn, sig, constexprs),
                                      target=GPUTarget("cuda", 90, 32), options={"num_warps": 8})
            assert compiled.asm["cubin"], (fn, constexprs)
"""


@pytest.mark.slow
def test_kernels_compile_for_sm90(tmp_path: Any) -> None:
    # the interpreter accepts code the compiler rejects: compile every kernel ahead of time for
    # an H100 (sm_90) target, which needs no GPU, in a process without TRITON_INTERPRET
    pytest.importorskip("triton")
    try:
        from triton.backends.compiler import GPUTarget  # noqa: F401
        from triton.compiler import ASTSource  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"Triton's ahead-of-time compile API is not available: {exc}")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path)
    subprocess.run([sys.executable, "-c", COMPILE_FOR_SM90], check=True, env=env)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cpu_input_rejected_by_compiled_kernels(kernels: ModuleType) -> None:
    x, t = make((1, 2, 8), torch.device("cpu"))
    with pytest.raises(ValueError, match="`x` must be a CUDA tensor .*got device cpu"):
        kernels.sigmoid_stats(x, t)
    with pytest.raises(ValueError, match=r"`t` must be on the same device as `x` \(cuda"):
        kernels.sigmoid_stats(x.cuda(), t)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", FUNCTIONS)
def test_cuda_full_size(kernels: ModuleType, name: str) -> None:
    # 16 x 1 x 512 x 512 (16 x 2 x 512 x 512 for the softmax kernels, which need C >= 2)
    device = torch.device("cuda")
    shape = (16, 2 if name.startswith("softmax") else 1, 512, 512)
    x, t = make(shape, device)
    w = weights("shared", shape, device)
    cw = torch.tensor([0.3, 1.7], device=device)
    if name.startswith("softmax"):
        t = softmax_target(shape, device)
        check_labels(kernels, name, x, class_labels(shape, device), w, gamma=2.0,
                     class_weights=cw)
    check(kernels, name, x, t, w, gamma=2.0, class_weights=cw)
    if name == "binary_focal":
        check(kernels, name, x, t, w, gamma=0.0, gamma_neg=2.0)
