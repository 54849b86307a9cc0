"""Asymmetric Unified Focal loss (Yeung et al. 2022): reference values, special cases, MONAI."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from seglosses.functional import bce_loss, tversky_loss, unified_focal_loss
from tests.reference import np_region as ref

P = torch.tensor([[[[0.9, 0.2], [0.6, 0.1]]]], dtype=torch.float64)
T = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]], dtype=torch.float64)


@pytest.mark.parametrize("case", ref.CASES, ids=ref.case_id)
def test_reference_values(case):
    logits, target, mask, kw = ref.build(case, seed=11, drop=("batch",))
    x, y, m = ref.as_torch(logits, target, mask)
    params = dict(weight=0.3, delta=0.7, gamma=0.4, smooth=1e-3)
    got = unified_focal_loss(x, y, m, **params, **kw)
    want = ref.unified_focal(logits, target, mask, **params, **kw)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-12)


def test_hand_computed():
    d, g = 0.6, 0.5
    # asymmetric focal, per voxel: foreground -d log p, background -(1-d) p^g log(1 - p)
    focal = (-d * math.log(0.9) - d * math.log(0.6)
             - (1 - d) * 0.2 ** g * math.log(0.8) - (1 - d) * 0.1 ** g * math.log(0.9)) / 4
    # TP = 1.5, FP = 0.3, FN = 0.5, TN = 1.7 (smooth 0)
    mti_fg = 1.5 / (1.5 + d * 0.5 + (1 - d) * 0.3)
    mti_bg = 1.7 / (1.7 + d * 0.3 + (1 - d) * 0.5)  # background: FN_bg = FP, FP_bg = FN
    tversky = 0.5 * ((1 - mti_bg) + (1 - mti_fg) ** (1 - g))
    got = unified_focal_loss(P, T, from_logits=False, smooth=0.0)
    assert got.item() == pytest.approx(0.5 * focal + 0.5 * tversky, rel=1e-12)
    got = unified_focal_loss(P, T, from_logits=False, smooth=0.0, weight=1.0)
    assert got.item() == pytest.approx(focal, rel=1e-12)
    got = unified_focal_loss(P, T, from_logits=False, smooth=0.0, weight=0.0)
    assert got.item() == pytest.approx(tversky, rel=1e-12)


@pytest.mark.parametrize("mode", ["binary", "multilabel", "multiclass"])
def test_focal_term_reduces_to_half_cross_entropy(mode):
    """weight = 1, delta = 0.5, gamma = 0: 0.5 * (binary or categorical) cross-entropy."""
    logits, target, _, _ = ref.build((mode, (5, 4), {}), seed=12)
    x, y, _ = ref.as_torch(logits, target, None)
    got = unified_focal_loss(x, y, mode=mode, weight=1.0, delta=0.5, gamma=0.0,
                             reduction="none")
    torch.testing.assert_close(got, 0.5 * bce_loss(x, y, mode=mode, reduction="none"),
                               rtol=1e-12, atol=1e-12)


def test_tversky_term_reduces_to_mean_of_background_and_foreground_dice():
    """weight = 0, delta = 0.5, gamma = 0: mean of the Tversky(0.5, 0.5) losses of bg and fg."""
    logits, target, _, _ = ref.build(("binary", (6, 5), {}), seed=13)
    x, y, _ = ref.as_torch(logits, target, None)
    p = torch.sigmoid(x)
    kw = dict(alpha=0.5, beta=0.5, smooth=1e-7, from_logits=False, reduction="none")
    want = 0.5 * (tversky_loss(p, y, **kw) + tversky_loss(1 - p, 1 - y, **kw))
    got = unified_focal_loss(x, y, weight=0.0, delta=0.5, gamma=0.0, reduction="none")
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_rare_classes_enhanced_background_suppressed():
    """Multiclass: class 0 gets the focal factor and no exponent, the others the reverse."""
    labels = torch.tensor([[0, 0, 1, 2, 0, 1]])
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(1, 3, 6, generator=g, dtype=torch.float64)
    p = torch.softmax(logits, 1)[0]
    t = torch.nn.functional.one_hot(labels[0], 3).T.double()
    d, gm = 0.6, 0.5
    focal = -((1 - d) * t[0] * (1 - p[0]) ** gm * p[0].log()
              + d * (t[1:] * p[1:].log()).sum(0)).mean()
    tp, fp, fn = (p * t).sum(1), (p * (1 - t)).sum(1), ((1 - p) * t).sum(1)
    mti = (tp + 1e-7) / (tp + d * fn + (1 - d) * fp + 1e-7)
    region = torch.stack([1 - mti[0], (1 - mti[1]) ** (1 - gm), (1 - mti[2]) ** (1 - gm)])
    got = unified_focal_loss(logits, labels)
    assert got.item() == pytest.approx((0.5 * focal + 0.5 * region.mean()).item(), rel=1e-12)
    # include_background=False drops the background's Tversky term only
    got = unified_focal_loss(logits, labels, include_background=False)
    assert got.item() == pytest.approx((0.5 * focal + 0.5 * region[1:].mean()).item(),
                                       rel=1e-12)


def test_edge_cases_finite():
    for magnitude, dtype in ((50.0, torch.float32), (10.0, torch.float16)):
        target = torch.tensor([[[[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]]])
        x = ((2 * target - 1) * magnitude).to(dtype).requires_grad_(True)
        value = unified_focal_loss(x, target)
        value.backward()
        assert torch.isfinite(value) and torch.isfinite(x.grad).all()
        assert value.item() < 1e-2
    # exact 0/1 probabilities
    probs = torch.tensor([[[1.0, 0.0, 1.0]]], requires_grad=True)
    value = unified_focal_loss(probs, probs.detach(), from_logits=False)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(probs.grad).all()


def test_errors():
    for name, bad in (("weight", 1.5), ("delta", -0.1), ("gamma", 1.0), ("smooth", -1.0)):
        with pytest.raises(ValueError, match=name):
            unified_focal_loss(P, T, **{name: bad})


@pytest.mark.parametrize("weight", [0.0, 1.0, 0.5])
def test_matches_monai(weight):
    """MONAI AsymmetricUnifiedFocalLoss (binary, probabilities in): its focal term averages the
    two class terms per voxel where the authors' code sums them, so it is half of ours."""
    monai_losses = pytest.importorskip("monai.losses")
    g = torch.Generator().manual_seed(6)
    p = torch.sigmoid(torch.randn(2, 1, 6, 5, generator=g, dtype=torch.float64) * 2)
    y = (torch.rand(2, 1, 6, 5, generator=g) > 0.6).double()
    peer = monai_losses.AsymmetricUnifiedFocalLoss(weight=weight, delta=0.6, gamma=0.5)
    focal = unified_focal_loss(p, y, from_logits=False, weight=1.0)
    region = unified_focal_loss(p, y, from_logits=False, weight=0.0)
    want = peer(p, y)
    torch.testing.assert_close(weight * 0.5 * focal + (1 - weight) * region, want,
                               rtol=1e-10, atol=1e-12)
