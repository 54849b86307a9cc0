"""SSIM loss: NumPy reference, hand-computed cases, border/mask policy, peers (kornia, MONAI)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import seglosses
from seglosses.functional import ssim_loss
from seglosses.losses._prepare import prepare
from seglosses.losses.compound.ssim import C1, C2, ssim_map_stage
from tests.reference.np_ssim import ssim_loss_np, make_case


CASES = [
    # mode, spatial, params
    ("binary", (5, 7), {}),
    ("binary", (9,), {"window": 5}),
    ("binary", (1, 6), {"window": 3, "sigma": 0.8}),
    ("binary", (3, 1, 5), {"window": 11}),
    ("multilabel", (6, 5), {"window": 7, "sigma": 2.0}),
    ("multilabel", (4, 3, 5), {"window": 3}),
    ("multiclass", (7, 4), {}),
    ("multiclass", (3, 4, 2), {"window": 5}),
    ("multiclass", (1,), {}),
]


@pytest.mark.parametrize("use_mask", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize("mode,spatial,params", CASES)
def test_reference_values(mode, spatial, params, use_mask):
    logits, target, mask = make_case(mode, spatial)
    m = mask if use_mask else None
    for reduction in ("none", "mean", "sum"):
        got = ssim_loss(logits, target, m, mode=mode, reduction=reduction, **params)
        want = ssim_loss_np(logits, target, m, mode=mode, reduction=reduction, **params)
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("mode", ["binary", "multilabel", "multiclass"])
def test_reference_values_shared_options(mode):
    """class_weights, include_background, ignore_index, soft labels, from_logits=False."""
    logits, target, mask = make_case(mode, (6, 5), seed=3, soft=True)
    c = logits.shape[1]
    weights = [0.5, 2.0, 1.5][:c]
    kwargs = dict(mode=mode, reduction="none", class_weights=weights, window=5)
    got = ssim_loss(logits, target, mask, include_background=False, **kwargs)
    want = ssim_loss_np(logits, target, mask, include_background=False, **kwargs)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)
    probs = torch.softmax(logits, 1) if mode == "multiclass" else torch.sigmoid(logits)
    got = ssim_loss(probs, target, mask, from_logits=False, **kwargs)
    want = ssim_loss_np(probs, target, mask, from_logits=False, **kwargs)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)
    if mode == "multiclass":
        labels = torch.where(mask[:, 0], target, torch.full_like(target, 255))
        got = ssim_loss(logits, labels, mode=mode, ignore_index=255, reduction="none")
        want = ssim_loss_np(logits, labels, mode=mode, ignore_index=255, reduction="none")
    else:
        hard = (target > 0.5).double()
        labels = torch.where(mask.expand_as(hard), hard, torch.full_like(hard, 255.0))
        got = ssim_loss(logits, labels, mode=mode, ignore_index=255, reduction="none")
        want = ssim_loss_np(logits, labels, mode=mode, ignore_index=255, reduction="none")
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)


def test_hand_computed():
    # One voxel: the clipped window holds the voxel alone, so mu_p = p, mu_t = t and all
    # variances are 0: SSIM = (2 p t + C1) / (p^2 + t^2 + C1). p = 0.5, t = 1.
    p = torch.tensor([[[0.5]]], dtype=torch.float64)
    t = torch.tensor([[[1.0]]], dtype=torch.float64)
    expected = 1.0 - (2 * 0.5 + 1e-4) / (0.25 + 1.0 + 1e-4)
    assert ssim_loss(p, t, from_logits=False).item() == pytest.approx(expected, rel=1e-12)

    # Two voxels, p = [0, 1], t = [1, 0], window 3, sigma 1.5. At voxel 0 the window holds
    # voxel 0 (weight 1) and voxel 1 (weight q = exp(-1 / (2 * 1.5^2))); normalised a = 1/(1+q),
    # b = q/(1+q). mu_p = b, mu_t = a, var_p = var_t = a b, cov = 0 - a b. Voxel 1 mirrors it.
    q = math.exp(-1.0 / (2 * 1.5 ** 2))
    a, b = 1 / (1 + q), q / (1 + q)
    ssim = (2 * a * b + 1e-4) * (-2 * a * b + 9e-4) / ((a * a + b * b + 1e-4) * (2 * a * b + 9e-4))
    p = torch.tensor([[[0.0, 1.0]]], dtype=torch.float64)
    t = torch.tensor([[[1.0, 0.0]]], dtype=torch.float64)
    assert ssim_loss(p, t, from_logits=False, window=3).item() == pytest.approx(1 - ssim, rel=1e-12)
    # The same prediction on the target itself: SSIM = 1 everywhere.
    assert ssim_loss(t, t, from_logits=False, window=3).item() == 0.0

    # window = 1: pointwise luminance term, mean over voxels.
    p = torch.tensor([[[0.2, 0.9, 0.5]]], dtype=torch.float64)
    t = torch.tensor([[[0.0, 1.0, 1.0]]], dtype=torch.float64)
    terms = [(2 * x * y + 1e-4) / (x * x + y * y + 1e-4) for x, y in [(0.2, 0), (0.9, 1), (0.5, 1)]]
    assert ssim_loss(p, t, from_logits=False, window=1).item() == pytest.approx(
        1 - sum(terms) / 3, rel=1e-12)
    assert (C1, C2) == (0.01 ** 2, 0.03 ** 2)


def test_edge_cases():
    # Identical soft maps give exactly 0, also in fp32 (difference form: no rounding above 1).
    g = torch.Generator().manual_seed(0)
    p = torch.rand(2, 1, 31, 17, generator=g)
    assert torch.equal(ssim_loss(p, p, from_logits=False, reduction="none"), torch.zeros(2))
    # Near-perfect fp32 prediction of a full / empty target: never negative, and equal to the
    # fp64 value (the textbook form rounds ~1e-4 below 0 here in fp32).
    for fill in (0.0, 1.0):
        t = torch.full((2, 1, 64, 48), fill)
        for magnitude in (9.0, 20.0):
            x = (2 * t - 1) * magnitude
            value = ssim_loss(x, t, reduction="none")
            exact = ssim_loss(x.double(), t.double(), reduction="none")
            assert (value >= 0).all()
            torch.testing.assert_close(value.double(), exact, rtol=1e-5, atol=1e-7)
    # Window wider than the image, 1-voxel-wide images in 1D/2D/3D: finite, in [0, 2].
    for shape in [(1, 1, 1), (1, 1, 1, 1), (1, 1, 1, 1, 1), (2, 1, 1, 13), (1, 2, 2, 1, 3)]:
        x = torch.randn(*shape, generator=g, dtype=torch.float64, requires_grad=True)
        t = (torch.rand(*shape, generator=g) > 0.5).double()
        value = ssim_loss(x, t, mode="binary" if shape[1] == 1 else "multilabel", window=11)
        assert torch.isfinite(value) and 0 <= value.item() <= 2
        value.backward()
        assert torch.isfinite(x.grad).all()
    # An anti-correlated prediction is worse than 1 (SSIM < 0).
    t = torch.zeros(1, 1, 16, 16, dtype=torch.float64)
    t[..., ::2, :] = 1.0
    assert ssim_loss(1 - t, t, from_logits=False, window=3).item() > 1.0
    # A sample whose voxels are all masked counts 0 and its logits get zero gradient.
    x = torch.randn(2, 1, 5, 6, dtype=torch.float64, requires_grad=True)
    t = (torch.rand(2, 1, 5, 6) > 0.5).double()
    mask = torch.ones(2, 1, 5, 6, dtype=torch.bool)
    mask[1] = False
    value = ssim_loss(x, t, mask, reduction="none")
    assert value[1].item() == 0.0 and value[0].item() > 0
    value.sum().backward()
    assert torch.all(x.grad[1] == 0) and x.grad[0].abs().sum() > 0


@pytest.mark.parametrize("mode", ["binary", "multiclass"])
def test_gradcheck(mode):
    """First and second derivatives in float64, with masked voxels and clipped windows."""
    logits, target, mask = make_case(mode, (4, 5), batch=1, seed=6)
    x = logits.clone().requires_grad_(True)

    def fn(v):
        return ssim_loss(v, target, mask, mode=mode, window=3, reduction="sum")

    assert torch.autograd.gradcheck(fn, (x,), eps=1e-6, atol=1e-6, rtol=1e-5)
    assert torch.autograd.gradgradcheck(fn, (x,), eps=1e-6, atol=1e-5, rtol=1e-4)


def test_masked_border_is_a_border():
    """Masking a band at the edge equals cropping the image: masked voxels are not padding."""
    logits, target, _ = make_case("multilabel", (9, 12), seed=4)
    mask = torch.zeros(2, 1, 9, 12, dtype=torch.bool)
    mask[..., 2:7, 3:10] = True
    masked = ssim_loss(logits, target, mask, reduction="none")
    cropped = ssim_loss(logits[..., 2:7, 3:10], target[..., 2:7, 3:10], reduction="none")
    torch.testing.assert_close(masked, cropped, rtol=1e-12, atol=1e-14)


def test_fp32_close_to_fp64():
    logits, target, mask = make_case("binary", (64, 48), seed=5)
    low = ssim_loss(logits.float(), target.float(), mask, reduction="none")
    high = ssim_loss(logits, target, mask, reduction="none")
    torch.testing.assert_close(low.double(), high, rtol=1e-5, atol=1e-6)


def _banded_images(shape, band, seed=0):
    """Random p, t inside, constant values in a band of width ``band`` at every edge."""
    g = torch.Generator().manual_seed(seed)
    p = torch.rand(*shape, generator=g, dtype=torch.float64)
    t = (torch.rand(*shape, generator=g) > 0.5).double()
    inner = tuple(slice(band, n - band) for n in shape[2:])
    p_out, t_out = torch.full_like(p, 0.3), torch.full_like(t, 1.0)
    p_out[(..., *inner)] = p[(..., *inner)]
    t_out[(..., *inner)] = t[(..., *inner)]
    return p_out, t_out


def test_matches_kornia():
    """kornia.losses.ssim_loss = mean(clamp((1 - SSIM) / 2)) with reflect padding. On images
    that are constant in a band of 2 * radius at the border, reflection and our clipped window
    see the same statistics, so ours = 2 * kornia's; in the interior the maps agree."""
    kornia = pytest.importorskip("kornia")
    p, t = _banded_images((2, 1, 41, 33), band=10)
    ours = ssim_loss(p, t, from_logits=False)
    theirs = kornia.losses.ssim_loss(p, t, 11, eps=0.0, padding="same")
    torch.testing.assert_close(ours, 2 * theirs, rtol=1e-10, atol=1e-12)
    # Map level on unconstrained images: the interior ("valid" region) agrees.
    g = torch.Generator().manual_seed(1)
    p = torch.rand(2, 3, 30, 23, generator=g, dtype=torch.float64)
    t = torch.rand(2, 3, 30, 23, generator=g, dtype=torch.float64)
    ours = ssim_map_stage(prepare(p, t, from_logits=False, mode="multilabel"), window=11,
                          sigma=1.5)
    theirs = kornia.metrics.ssim(p, t, 11, eps=0.0, padding="valid")
    torch.testing.assert_close(ours[..., 5:-5, 5:-5], theirs, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("spatial", [(28, 21), (15, 14, 13)], ids=["2d", "3d"])
def test_matches_monai(spatial):
    """MONAI's SSIMLoss (valid convolution) = 1 - mean of our SSIM map over the interior."""
    losses = pytest.importorskip("monai.losses")
    g = torch.Generator().manual_seed(2)
    p = torch.rand(2, 1, *spatial, generator=g, dtype=torch.float64)
    t = (torch.rand(2, 1, *spatial, generator=g) > 0.5).double()
    ours = ssim_map_stage(prepare(p, t, from_logits=False, mode="binary"), window=11, sigma=1.5)
    interior = ours[(..., *[slice(5, -5)] * len(spatial))]
    expected = 1.0 - interior.flatten(1).mean(1)
    theirs = losses.SSIMLoss(spatial_dims=len(spatial), reduction="none")(p.float(), t.float())
    torch.testing.assert_close(theirs.flatten().double(), expected, rtol=1e-5, atol=1e-6)


def test_module_parameters():
    loss = seglosses.get_loss("ssim", window=5, sigma=1.0)
    logits, target, _ = make_case("binary", (6, 7))
    torch.testing.assert_close(loss(logits, target), ssim_loss(logits, target, window=5, sigma=1.0))
    assert "window=5" in repr(loss)


def test_errors():
    logits, target, _ = make_case("binary", (6, 7))
    with pytest.raises(ValueError, match="`window` must be an odd window width; got 4"):
        ssim_loss(logits, target, window=4)
    with pytest.raises(ValueError, match="`window` must be >= 1; got 0"):
        ssim_loss(logits, target, window=0)
    with pytest.raises(TypeError, match="`window` must be an int; got float"):
        ssim_loss(logits, target, window=3.0)
    with pytest.raises(ValueError, match=r"`sigma` must lie in \(0.0, inf\]; got 0.0"):
        ssim_loss(logits, target, sigma=0.0)
    with pytest.raises(TypeError, match="`sigma` must be a number; got str"):
        ssim_loss(logits, target, sigma="1.5")
    with pytest.raises(ValueError, match="`window` must be an odd"):
        seglosses.get_loss("ssim", window=2)(logits, target)
