"""The fused per-voxel terms of ``seglosses.losses._pixel`` against the plain formulas.

Each fused stage must give the value and gradient of ``pixel_mean`` over the per-voxel map
that the loss module writes as its formula (the map functions, run with autograd), for every
mode, weighting and dtype, and support a second backward and double backward.
"""

from __future__ import annotations

import pytest
import torch

from seglosses.losses._pixel import binary_focal_mean, softmax_focal_mean
from seglosses.losses._prepare import prepare
from seglosses.losses._stats import pixel_mean
from seglosses.losses.compound.unified_focal import (asymmetric_focal_map,
                                                     asymmetric_focal_mean_stage)
from seglosses.losses.distribution.bce import cross_entropy_map, cross_entropy_mean_stage
from seglosses.losses.distribution.focal import focal_map, focal_mean_stage
from seglosses.losses.distribution.weighted_bce import (weighted_bce_map,
                                                        weighted_bce_mean_stage)


def _case(mode: str, weighting: str, dtype: torch.dtype, scale: float = 3.0, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    b, c, shape = 3, (1 if mode == "binary" else 4), (5, 7)
    logits = (scale * torch.randn(b, c, *shape, generator=g)).to(dtype)
    if mode == "multiclass":
        target = torch.randint(0, c, (b, *shape), generator=g)
        if weighting == "soft":
            target = torch.softmax(torch.randn(b, c, *shape, generator=g), dim=1).to(dtype)
    else:
        target = (torch.rand(b, c, *shape, generator=g) > 0.6).to(dtype)
        if weighting == "soft":
            target = torch.rand(b, c, *shape, generator=g).to(dtype)
    kwargs: dict = {"mode": mode}
    mask = None
    if weighting == "mask":
        mask = torch.rand(b, 1, *shape, generator=g) > 0.3
        mask[0] = False  # one sample with no valid voxel
    if weighting == "ignore":
        kwargs["ignore_index"] = 2 if mode == "multiclass" else 0
    if weighting == "class_weights":
        kwargs["class_weights"] = [0.5, 2.0, 1.0, 0.25][:c]
    return logits, target, mask, kwargs


STAGES = {
    "bce": (lambda prep: cross_entropy_mean_stage(prep), lambda prep: cross_entropy_map(prep)),
    "focal": (lambda prep: focal_mean_stage(prep, alpha=0.25, gamma=2.0),
              lambda prep: focal_map(prep, alpha=0.25, gamma=2.0)),
    "focal_g05": (lambda prep: focal_mean_stage(prep, alpha=None, gamma=0.5),
                  lambda prep: focal_map(prep, alpha=None, gamma=0.5)),
    "focal_g3": (lambda prep: focal_mean_stage(prep, alpha=0.7, gamma=3.0),
                 lambda prep: focal_map(prep, alpha=0.7, gamma=3.0)),
    "weighted": (lambda prep: weighted_bce_mean_stage(prep, 3.0, 0.5),
                 lambda prep: weighted_bce_map(prep, 3.0, 0.5)),
    "asymmetric": (lambda prep: asymmetric_focal_mean_stage(prep, delta=0.6, gamma=0.5),
                   lambda prep: asymmetric_focal_map(prep, delta=0.6, gamma=0.5)),
}


def _value_and_grad(fn, logits, target, mask, kwargs):
    x = logits.detach().clone().requires_grad_()
    prep = prepare(x, target, mask, **kwargs)
    value = fn(prep)
    weights = torch.linspace(0.5, 1.5, value.numel(), dtype=value.dtype).view_as(value)
    (grad,) = torch.autograd.grad((value * weights).sum(), x)
    return value.detach(), grad


#: the binary-family terms whose multiclass form is the one-vs-rest formula (not fused)
BINARY_ONLY = ("weighted", "asymmetric", "focal_g3")
STAGE_MODES = [(stage, mode) for stage in sorted(STAGES)
               for mode in ("binary", "multilabel", "multiclass")
               if not (mode == "multiclass" and stage in BINARY_ONLY)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("weighting", ["none", "mask", "ignore", "class_weights", "soft"])
@pytest.mark.parametrize("stage,mode", STAGE_MODES)
def test_fused_equals_formula(stage, mode, weighting, dtype):
    """Value and gradient of the fused stage equal pixel_mean of the formula map."""
    fused, formula = STAGES[stage]
    logits, target, mask, kwargs = _case(mode, weighting, dtype)
    v1, g1 = _value_and_grad(fused, logits, target, mask, kwargs)
    v2, g2 = _value_and_grad(lambda prep: pixel_mean(formula(prep), prep), logits, target,
                             mask, kwargs)
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == torch.float32 else \
        {"rtol": 1e-11, "atol": 1e-13}
    torch.testing.assert_close(v1, v2, **tol)
    torch.testing.assert_close(g1, g2, **tol)


@pytest.mark.parametrize("mode", ["binary", "multiclass"])
@pytest.mark.parametrize("stage", ["bce", "focal", "focal_g05"])
def test_fused_extreme_logits_finite(stage, mode):
    """Logits of +-60 in float32: finite values and gradients, equal to the float64 formula."""
    fused, formula = STAGES[stage]
    logits, target, mask, kwargs = _case(mode, "none", torch.float32, scale=60.0)
    v1, g1 = _value_and_grad(fused, logits, target, mask, kwargs)
    assert torch.isfinite(v1).all() and torch.isfinite(g1).all()
    v2, g2 = _value_and_grad(lambda prep: pixel_mean(formula(prep), prep), logits.double(),
                             target.double() if target.is_floating_point() else target, mask,
                             kwargs)
    torch.testing.assert_close(v1.double(), v2, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(g1.double(), g2, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["binary", "multiclass"])
@pytest.mark.parametrize("stage", ["bce", "focal", "focal_g05"])
def test_fused_second_backward(stage, mode):
    """A second backward through a retained graph gives the same gradient (the kept buffer
    is consumed in place by the first one)."""
    fused, _ = STAGES[stage]
    logits, target, mask, kwargs = _case(mode, "mask", torch.float64)
    x = logits.clone().requires_grad_()
    loss = fused(prepare(x, target, mask, **kwargs)).sum()
    (g1,) = torch.autograd.grad(loss, x, retain_graph=True)
    (g2,) = torch.autograd.grad(loss, x)
    torch.testing.assert_close(g1, g2, rtol=0, atol=0)


@pytest.mark.parametrize("stage,mode", [(s, m) for s, m in STAGE_MODES if s != "focal_g3"])
def test_fused_gradcheck_and_gradgradcheck(stage, mode):
    """First and second derivatives in float64 by finite differences."""
    fused, _ = STAGES[stage]
    logits, target, mask, kwargs = _case(mode, "mask", torch.float64, scale=1.5)
    logits, target = logits[:2, :, :3, :4], target[:2, ..., :3, :4]
    mask = mask[:2, :, :3, :4]
    mask[0] = True

    def fn(x):
        return fused(prepare(x, target, mask, **kwargs))

    x = logits.clone().requires_grad_()
    assert torch.autograd.gradcheck(fn, (x,), eps=1e-6, atol=1e-6, rtol=1e-5)
    assert torch.autograd.gradgradcheck(fn, (x,), eps=1e-6, atol=1e-5, rtol=1e-4)


def test_fused_falls_back_for_target_with_grad():
    """A target that requires grad takes the formula path, so it gets its gradient."""
    logits, target, mask, kwargs = _case("binary", "soft", torch.float64)
    t = target.clone().requires_grad_()
    prep = prepare(logits, t, mask, **kwargs)
    value = binary_focal_mean(prep, fallback=lambda: cross_entropy_map(prep))
    (gt,) = torch.autograd.grad(value.sum(), t)
    # d/dt of -[t log p + (1 - t) log(1 - p)] = -(log p - log(1 - p)) = -x, over N voxels
    expected = -logits / logits[0].numel()
    torch.testing.assert_close(gt, expected)


def test_softmax_fused_falls_back_for_probabilities():
    """Probabilities (from_logits=False) use the formula path."""
    g = torch.Generator().manual_seed(1)
    p = torch.softmax(torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64), dim=1)
    target = torch.randint(0, 3, (2, 4, 4), generator=g)
    prep = prepare(p, target, from_logits=False)
    value = softmax_focal_mean(prep, gamma=0.0, fallback=lambda: cross_entropy_map(prep))
    expected = -torch.log(p.gather(1, target.unsqueeze(1))).flatten(1).mean(dim=1)
    torch.testing.assert_close(value, expected)


@pytest.mark.parametrize("name", ["bce", "topk_ce", "weighted_bce", "focal"])
def test_confident_voxels_keep_relative_accuracy(name):
    """A confident correct voxel's cross-entropy, log(1 + e^-20) = 2.06e-9, is not lost to
    cancellation on either side (PyTorch's binary_cross_entropy_with_logits returns 0 for
    x = -20, t = 0)."""
    import math

    import seglosses

    x = torch.tensor([-20.0, 20.0, -12.0, 12.0]).view(1, 1, 2, 2)
    t = torch.tensor([0.0, 1.0, 0.0, 1.0]).view(1, 1, 2, 2)
    params = {"k": 1.0} if name == "topk_ce" else {"alpha": None, "gamma": 0.0} \
        if name == "focal" else {"beta": 1.0} if name == "weighted_bce" else {}
    value = seglosses.get_loss(name, **params)(x, t).item()
    expected = (2 * math.log1p(math.exp(-20.0)) + 2 * math.log1p(math.exp(-12.0))) / 4
    assert value == pytest.approx(expected, rel=1e-6)
