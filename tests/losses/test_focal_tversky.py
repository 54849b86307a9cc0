"""Focal Tversky loss: reference values, identities, finite gradients at the optimum, peers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seglosses.functional import focal_tversky_loss, tversky_loss
from seglosses.losses.region.focal_tversky import focal_power
from tests.reference import np_region as ref

P = torch.tensor([[[[0.9, 0.2], [0.6, 0.1]]]], dtype=torch.float64)
T = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]], dtype=torch.float64)


@pytest.mark.parametrize("case", ref.CASES, ids=ref.case_id)
def test_reference_values(case):
    logits, target, mask, kw = ref.build(case, seed=2)
    x, y, m = ref.as_torch(logits, target, mask)
    params = dict(alpha=0.4, beta=0.6, gamma=0.6, smooth=0.5)
    got = focal_tversky_loss(x, y, m, **params, **kw)
    want = ref.focal_tversky(logits, target, mask, **params, **kw)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-12)


def test_hand_computed():
    # TI = 2.5 / 2.94 (see test_tversky); L = (1 - TI) ** 0.75
    got = focal_tversky_loss(P, T, from_logits=False)
    assert got.item() == pytest.approx((1 - 2.5 / 2.94) ** 0.75, rel=1e-12)


@pytest.mark.parametrize("mode", ["binary", "multilabel", "multiclass"])
def test_gamma_one_is_tversky(mode):
    logits, target, _, _ = ref.build((mode, (5, 4), {}), seed=5)
    x, y, _ = ref.as_torch(logits, target, None)
    kw = dict(mode=mode, reduction="none", alpha=0.2, beta=0.8)
    torch.testing.assert_close(focal_tversky_loss(x, y, gamma=1.0, **kw), tversky_loss(x, y, **kw),
                               rtol=1e-12, atol=1e-12)


def test_exponent_per_channel_before_mean():
    logits, target, _, _ = ref.build(("multilabel", (5, 4), {}), seed=6)
    x, y, _ = ref.as_torch(logits, target, None)
    per_channel = torch.stack([
        tversky_loss(x[:, c:c + 1], y[:, c:c + 1], mode="binary", reduction="none")
        for c in range(3)], dim=1)
    got = focal_tversky_loss(x, y, mode="multilabel", reduction="none")
    torch.testing.assert_close(got, (per_channel ** 0.75).mean(dim=1), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_finite_gradient_at_perfect_prediction(dtype):
    """(1 - TI) ** gamma with gamma < 1 at TI = 1: value 0, finite (zero) gradient."""
    target = torch.tensor([[[[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]]]], dtype=dtype)
    probs = target.clone().requires_grad_(True)
    value = focal_tversky_loss(probs, target, from_logits=False, gamma=0.3)
    value.backward()
    assert value.item() == 0.0
    assert torch.isfinite(probs.grad).all()
    logits = ((2 * target - 1) * 50).requires_grad_(True)
    value = focal_tversky_loss(logits, target, gamma=0.3)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(logits.grad).all()


def test_focal_power():
    base = torch.tensor([0.0, -1e-9, 1e-40, 0.25, 1.0], dtype=torch.float64, requires_grad=True)
    out = focal_power(base, 0.5)
    out.sum().backward()
    assert out[0].item() == 0.0 and out[1].item() == 0.0
    assert out[3].item() == 0.5 and out[4].item() == 1.0
    assert torch.isfinite(base.grad).all()
    assert base.grad[0].item() == 0.0 and base.grad[3].item() == pytest.approx(1.0)
    # gamma = 0: x ** 0 = 1, also at x = 0
    assert torch.equal(focal_power(base.detach(), 0.0), torch.ones(5, dtype=torch.float64))


def test_errors():
    with pytest.raises(ValueError, match="gamma"):
        focal_tversky_loss(P, T, gamma=0.0)
    with pytest.raises(ValueError, match="alpha"):
        focal_tversky_loss(P, T, alpha=-1.0)
    with pytest.raises(TypeError, match="gamma"):
        focal_tversky_loss(P, T, gamma="0.75")


@pytest.mark.parametrize("ndim", [1, 2])
def test_matches_smp_single_channel(ndim):
    """smp pools over the batch and applies gamma after the channel mean: equal for C = 1."""
    smp_losses = pytest.importorskip("segmentation_models_pytorch.losses")
    logits, target, _, _ = ref.build(("binary", (6, 5)[:ndim], {}), seed=7)
    x, y, _ = ref.as_torch(logits, target, None)
    peer = smp_losses.TverskyLoss("binary", smooth=1.0, alpha=0.3, beta=0.7, gamma=0.75)
    torch.testing.assert_close(focal_tversky_loss(x, y, batch=True), peer(x, y),
                               rtol=1e-10, atol=1e-12)


def test_smp_differs_with_several_channels():
    """Documented difference: smp's (mean_c L_c) ** gamma is not our mean_c (L_c ** gamma)."""
    smp_losses = pytest.importorskip("segmentation_models_pytorch.losses")
    logits, target, _, _ = ref.build(("multilabel", (6, 5), {}), seed=8)
    x, y, _ = ref.as_torch(logits, target, None)
    peer = smp_losses.TverskyLoss("multilabel", smooth=1.0, alpha=0.3, beta=0.7, gamma=0.75)
    per_channel = torch.cat([tversky_loss(x[:, c:c + 1], y[:, c:c + 1], batch=True,
                                          reduction="none") for c in range(3)])
    torch.testing.assert_close(peer(x, y), per_channel.mean() ** 0.75, rtol=1e-10, atol=1e-12)
    ours = focal_tversky_loss(x, y, mode="multilabel", batch=True)
    torch.testing.assert_close(ours, (per_channel ** 0.75).mean(), rtol=1e-10, atol=1e-12)
    assert abs(ours.item() - peer(x, y).item()) > 1e-4
