"""Correlation maximized structural similarity loss: NumPy reference, hand cases, gradient."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import seglosses
from seglosses.functional import correlation_ssim_loss
from tests.reference.np_ssim import correlation_ssim_loss_np, make_case


CASES = [
    ("binary", (5, 7), {}),
    ("binary", (11,), {"window": 5, "beta": 0.3}),
    ("binary", (1, 8), {"c": 0.1}),
    ("binary", (3, 4, 5), {}),
    ("multilabel", (6, 5), {"beta": 0.5}),
    ("multilabel", (2, 3, 4), {"window": 5}),
    ("multiclass", (7, 4), {}),
    ("multiclass", (3, 1, 4), {"beta": 0.0}),
    ("multiclass", (9,), {"window": 1}),
]


@pytest.mark.parametrize("use_mask", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize("mode,spatial,params", CASES)
def test_reference_values(mode, spatial, params, use_mask):
    logits, target, mask = make_case(mode, spatial)
    m = mask if use_mask else None
    for reduction in ("none", "mean", "sum"):
        got = correlation_ssim_loss(logits, target, m, mode=mode, reduction=reduction, **params)
        want = correlation_ssim_loss_np(logits, target, m, mode=mode, reduction=reduction,
                                        **params)
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("mode", ["binary", "multilabel", "multiclass"])
def test_reference_values_shared_options(mode):
    """class_weights, ignore_index, soft labels, from_logits=False."""
    logits, target, mask = make_case(mode, (6, 5), seed=3, soft=True)
    c = logits.shape[1]
    kwargs = dict(mode=mode, reduction="none", class_weights=[0.5, 2.0, 1.5][:c])
    got = correlation_ssim_loss(logits, target, mask, **kwargs)
    want = correlation_ssim_loss_np(logits, target, mask, **kwargs)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)
    probs = torch.softmax(logits, 1) if mode == "multiclass" else torch.sigmoid(logits)
    got = correlation_ssim_loss(probs, target, mask, from_logits=False, **kwargs)
    want = correlation_ssim_loss_np(probs, target, mask, from_logits=False, **kwargs)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)
    if mode == "multiclass":
        labels = torch.where(mask[:, 0], target, torch.full_like(target, 255))
    else:
        hard = (target > 0.5).double()
        labels = torch.where(mask.expand_as(hard), hard, torch.full_like(hard, 255.0))
    got = correlation_ssim_loss(logits, labels, mode=mode, ignore_index=255, reduction="none")
    want = correlation_ssim_loss_np(logits, labels, mode=mode, ignore_index=255,
                                    reduction="none")
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)


def test_hand_computed():
    # 1-D, three voxels, window 3, c = 0.01; p = 0.5 everywhere (probabilities), t = [1, 0, 0].
    # p is flat: p - mu_p = 0 and sigma_p = 0 in every window, so the p-term is c / c = 1.
    # t-term: voxel 0 sees {1, 0}: mu = 1/2, sigma = 1/2 -> (1 - 1/2 + c) / (1/2 + c) = 1;
    #         voxel 1 sees {1, 0, 0}: mu = 1/3, sigma = sqrt(2)/3 -> (-1/3 + c)/(sqrt(2)/3 + c);
    #         voxel 2 sees {0, 0} (the padding is left out): mu = 0, sigma = 0 -> c / c = 1.
    # e = [0, |t1 - 1|, 0]; only voxel 1 passes e > 0.1 max e, so L = e_1 * CE_1 / 1 with
    # CE_1 = -log(1 - 0.5) = log 2.
    c = 0.01
    e1 = abs((-1 / 3 + c) / (math.sqrt(2) / 3 + c) - 1.0)
    p = torch.full((1, 1, 3), 0.5, dtype=torch.float64)
    t = torch.tensor([[[1.0, 0.0, 0.0]]], dtype=torch.float64)
    value = correlation_ssim_loss(p, t, from_logits=False)
    assert value.item() == pytest.approx(e1 * math.log(2.0), rel=1e-12)
    assert e1 == pytest.approx(1.671646, rel=1e-6)
    # A prediction equal to a hard target: e = 0 everywhere, nothing selected, L = 0.
    assert correlation_ssim_loss(t, t, from_logits=False).item() == 0.0
    # window = 1: every voxel is its own window, sigma = 0 and x - mu = 0, e = 0: L = 0.
    x = torch.randn(2, 1, 4, 5, dtype=torch.float64)
    assert correlation_ssim_loss(x, (x > 0).double(), window=1).abs().max().item() == 0.0


@pytest.mark.parametrize("mode", ["binary", "multiclass"])
def test_gradient_is_weighted_cross_entropy(mode):
    """e and f are detached: dL/dx = sum over voxels of (e f / sum f) * dCE/dx."""
    logits, target, mask = make_case(mode, (6, 7), seed=7)
    x = logits.clone().requires_grad_(True)
    correlation_ssim_loss(x, target, mask, mode=mode, reduction="sum").backward()
    _, weights = correlation_ssim_loss_np(logits, target, mask, mode=mode, reduction="sum",
                                          return_weights=True)
    w = torch.from_numpy(weights)
    if mode == "binary":
        # d/dx of -[t log s(x) + (1 - t) log(1 - s(x))] = s(x) - t
        expected = w * (torch.sigmoid(logits) - target)
    else:
        # categorical CE shared by the channels: weight sum_c e_c f_c, d/dx_k = p_k - t_k
        onehot = torch.nn.functional.one_hot(target, 3).movedim(-1, 1).double()
        expected = w.sum(1, keepdim=True) * (torch.softmax(logits, 1) - onehot)
    torch.testing.assert_close(x.grad, expected, rtol=1e-9, atol=1e-12)


def test_edge_cases():
    logits, target, mask = make_case("binary", (6, 7), seed=8)
    # beta = 1: no voxel exceeds the maximum, L = 0 with zero gradient.
    x = logits.clone().requires_grad_(True)
    value = correlation_ssim_loss(x, target, beta=1.0, reduction="none")
    assert torch.equal(value, torch.zeros(2))
    value.sum().backward()
    assert torch.all(x.grad == 0)
    # A sample with every voxel masked gives 0; the other sample is unaffected.
    mask = torch.ones(2, 1, 6, 7, dtype=torch.bool)
    mask[0] = False
    value = correlation_ssim_loss(logits, target, mask, reduction="none")
    alone = correlation_ssim_loss(logits[1:], target[1:], reduction="none")
    assert value[0].item() == 0.0
    torch.testing.assert_close(value[1:], alone, rtol=1e-12, atol=0)
    # Saturated wrong prediction: finite, large; perfect one: about 0.
    t = torch.zeros(1, 1, 9, 9)
    t[..., 3:6, 2:7] = 1.0
    wrong = correlation_ssim_loss((1 - 2 * t) * 50.0, t)
    right = correlation_ssim_loss((2 * t - 1) * 50.0, t)
    assert torch.isfinite(wrong) and wrong.item() > 10.0 and right.item() < 1e-6


def test_fp32_matches_fp64():
    """The detached statistics run in float64, so flat windows of binary maps agree exactly."""
    logits, target, mask = make_case("multilabel", (32, 24), seed=9)
    low = correlation_ssim_loss(logits.float(), target.float(), mask, reduction="none")
    high = correlation_ssim_loss(logits, target, mask, reduction="none")
    torch.testing.assert_close(low.double(), high, rtol=1e-5, atol=1e-7)


def test_module_parameters():
    loss = seglosses.get_loss("correlation_ssim", beta=0.2, window=5, c=0.05)
    logits, target, _ = make_case("binary", (6, 7))
    torch.testing.assert_close(
        loss(logits, target), correlation_ssim_loss(logits, target, beta=0.2, window=5, c=0.05))


def test_errors():
    logits, target, _ = make_case("binary", (6, 7))
    with pytest.raises(ValueError, match=r"`beta` must lie in \[0.0, 1.0\]; got 1.5"):
        correlation_ssim_loss(logits, target, beta=1.5)
    with pytest.raises(ValueError, match=r"`beta` must lie in \[0.0, 1.0\]; got -0.1"):
        correlation_ssim_loss(logits, target, beta=-0.1)
    with pytest.raises(ValueError, match="`window` must be an odd window width; got 2"):
        correlation_ssim_loss(logits, target, window=2)
    with pytest.raises(TypeError, match="`window` must be an int; got NoneType"):
        correlation_ssim_loss(logits, target, window=None)
    with pytest.raises(ValueError, match=r"`c` must lie in \(0.0, inf\]; got 0.0"):
        correlation_ssim_loss(logits, target, c=0.0)
