"""Focal loss: reference values, identities, torchvision and MONAI cross-checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from seglosses import functional as SF
from tests.reference import np_pixel as ref

CASES = [pytest.param(*row[1:], id=row[0]) for row in ref.STANDARD_CASES]
PARAMS = [pytest.param(0.25, 2.0, id="default"), pytest.param(None, 0.5, id="noalpha-g0.5"),
          pytest.param(0.7, 0.0, id="a0.7-g0")]


@pytest.mark.parametrize("alpha,gamma", PARAMS)
@pytest.mark.parametrize("mode,ndim,option", CASES)
def test_reference_values(mode, ndim, option, alpha, gamma):
    logits, target, mask, kw = ref.build_case(mode, ndim, option)
    ref.assert_matches_reference(SF.focal_loss, ref.focal, logits, target, mask, alpha=alpha,
                                 gamma=gamma, **kw)


def test_hand_computed():
    # x = 2, t = 1: p = sigmoid(2); l = -alpha (1 - p)^2 log p
    # x = -1, t = 0: l = -(1 - alpha) p^2 log(1 - p), p = sigmoid(-1)
    logits = torch.tensor([[[2.0, -1.0]]], dtype=torch.float64)
    target = torch.tensor([[[1.0, 0.0]]], dtype=torch.float64)
    s = 1 / (1 + math.exp(-2.0))
    q = 1 / (1 + math.exp(1.0))
    expected = (0.25 * (1 - s) ** 2 * -math.log(s) + 0.75 * q ** 2 * -math.log(1 - q)) / 2
    assert SF.focal_loss(logits, target).item() == pytest.approx(expected, rel=1e-12)
    # multiclass 1 voxel: p = (1/4, 3/4) with label 1 -> -(1/4)^2 log(3/4); no alpha factor
    x = torch.tensor([[[0.0], [math.log(3.0)]]], dtype=torch.float64)
    y = torch.tensor([[1]])
    assert SF.focal_loss(x, y).item() == pytest.approx(0.0625 * -math.log(0.75), rel=1e-12)
    # label 0 -> -(3/4)^2 log(1/4), whatever alpha is
    y0 = torch.tensor([[0]])
    for alpha in (0.25, 0.9, None):
        assert SF.focal_loss(x, y0, alpha=alpha).item() == \
            pytest.approx(0.5625 * -math.log(0.25), rel=1e-12)


@pytest.mark.parametrize("mode,ndim,option", CASES)
def test_gamma_zero_without_alpha_is_bce(mode, ndim, option):
    """focal(gamma=0, alpha=None) == bce (the survey says gamma=1; it is gamma=0)."""
    logits, target, mask, kw = ref.build_case(mode, ndim, option)
    args = [torch.from_numpy(np.ascontiguousarray(a)) if a is not None else None
            for a in (logits, target, mask)]
    torch.testing.assert_close(SF.focal_loss(*args, alpha=None, gamma=0.0, reduction="none", **kw),
                               SF.bce_loss(*args, reduction="none", **kw), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("alpha", [None])
def test_binary_equals_two_class_multiclass(alpha):
    """Binary focal on x == multiclass focal on logits (0, x) without alpha weighting."""
    logits, target = ref.random_case("binary", 2, seed=7)
    x, t = torch.from_numpy(logits), torch.from_numpy(target)
    two = torch.cat([torch.zeros_like(x), x], dim=1)
    labels = t[:, 0].long()
    torch.testing.assert_close(SF.focal_loss(two, labels, alpha=alpha, reduction="none"),
                               SF.focal_loss(x, t, alpha=alpha, reduction="none"))


@pytest.mark.parametrize("alpha", [0.25, None])
@pytest.mark.parametrize("mode", ["binary", "multilabel"])
def test_matches_torchvision(mode, alpha):
    ops = pytest.importorskip("torchvision.ops", reason="torchvision not installed")
    logits, target = ref.random_case(mode, 2, seed=8)
    x, t = torch.from_numpy(logits), torch.from_numpy(target)
    tv = ops.sigmoid_focal_loss(x, t, alpha=-1 if alpha is None else alpha, gamma=2.0,
                                reduction="none")
    torch.testing.assert_close(SF.focal_loss(x, t, mode=mode, alpha=alpha, reduction="none"),
                               tv.flatten(1).mean(1))


@pytest.mark.parametrize("gamma", [2.0, 0.5])
@pytest.mark.parametrize("mode", ["binary", "multilabel", "multiclass"])
def test_matches_monai(mode, gamma):
    losses = pytest.importorskip("monai.losses", reason="MONAI not installed")
    logits, target = ref.random_case(mode, 3, seed=9)
    x, t = torch.from_numpy(logits), torch.from_numpy(target)
    if mode == "multiclass":
        peer = losses.FocalLoss(to_onehot_y=True, use_softmax=True, gamma=gamma, alpha=None,
                                reduction="none")
        expected = peer(x, t.unsqueeze(1)).sum(1).flatten(1).mean(1)
    else:
        peer = losses.FocalLoss(gamma=gamma, alpha=0.25, reduction="none")
        expected = peer(x, t).flatten(1).mean(1)
    got = SF.focal_loss(x, t, mode=mode, gamma=gamma, reduction="none")
    torch.testing.assert_close(got.float(), expected.float(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("mode", ["binary", "multiclass"])
def test_matches_kornia(mode):
    kl = pytest.importorskip("kornia.losses", reason="kornia not installed")
    logits, target = ref.random_case(mode, 2, seed=17)
    x, t = torch.from_numpy(logits), torch.from_numpy(target)
    if mode == "multiclass":
        peer = kl.focal_loss(x, t, alpha=None, gamma=2.0, reduction="none").sum(1)
    else:
        peer = kl.binary_focal_loss_with_logits(x, t, alpha=0.25, gamma=2.0, reduction="none")
    torch.testing.assert_close(SF.focal_loss(x, t, reduction="none"), peer.flatten(1).mean(1))


def test_soft_labels_differ_from_torchvision():
    """Documented difference: torchvision modulates the whole CE by (1 - p_t)^gamma with
    p_t = p t + (1 - p)(1 - t); we modulate each term, as the formula is written."""
    ops = pytest.importorskip("torchvision.ops", reason="torchvision not installed")
    x = torch.tensor([[[1.0, -0.5]]], dtype=torch.float64)
    t = torch.tensor([[[0.7, 0.2]]], dtype=torch.float64)
    p = torch.sigmoid(x)
    ours = -(0.25 * t * (1 - p) ** 2 * torch.log(p) + 0.75 * (1 - t) * p ** 2 * torch.log(1 - p))
    assert SF.focal_loss(x, t).item() == pytest.approx(ours.mean().item(), rel=1e-12)
    tv = ops.sigmoid_focal_loss(x, t, alpha=0.25, gamma=2.0, reduction="mean")
    assert abs(tv.item() - ours.mean().item()) > 1e-3


@pytest.mark.parametrize("mode", ["binary", "multiclass"])
@pytest.mark.parametrize("gamma", [0.3, 2.0])
def test_edge_cases(mode, gamma):
    """gamma < 1 and saturated logits: finite values and gradients; perfect prediction ~0."""
    logits, target = ref.random_case(mode, 2, seed=10)
    t = torch.from_numpy(target)
    onehot = torch.nn.functional.one_hot(t, 3).movedim(-1, 1).double() if mode == "multiclass" \
        else t
    for magnitude, dtype in ((50.0, torch.float32), (10.0, torch.float16), (200.0, torch.float64)):
        for sign in (1.0, -1.0):
            x = (sign * (2 * onehot - 1) * magnitude).to(dtype).requires_grad_(True)
            value = SF.focal_loss(x, t, gamma=gamma)
            value.backward()
            assert torch.isfinite(value) and torch.isfinite(x.grad).all()
            if sign > 0:
                assert value.item() < 1e-4
    # from_logits=False with exact 0/1 probabilities
    p = onehot.clone().requires_grad_(True)
    SF.focal_loss(p, t, from_logits=False, gamma=gamma).backward()
    assert torch.isfinite(p.grad).all()


def test_errors():
    x, t = torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)
    with pytest.raises(ValueError, match=r"`alpha` must lie in \[0.0, 1.0\]; got 1.5"):
        SF.focal_loss(x, t, alpha=1.5)
    with pytest.raises(ValueError, match=r"`gamma` must lie in \[0.0, inf\]; got -1.0"):
        SF.focal_loss(x, t, gamma=-1.0)
    with pytest.raises(TypeError, match="`alpha` must be a number"):
        SF.focal_loss(x, t, alpha="0.25")
