"""UNet 3+ and BASNet hybrid losses: NumPy reference, hand-computed case, sum of their parts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import seglosses
from seglosses.functional import (
    basnet_hybrid_loss,
    bce_loss,
    focal_loss,
    jaccard_loss,
    ssim_loss,
    unet3p_hybrid_loss,
)
from tests.reference.np_ssim import hybrid_loss_np, make_case

FUNCTIONS = {"unet3p": unet3p_hybrid_loss, "basnet": basnet_hybrid_loss}


CASES = [
    ("binary", (5, 7), {}),
    ("binary", (9,), {"window": 5, "smooth": 0.0}),
    ("multilabel", (3, 4, 5), {"window": 3, "sigma": 1.0}),
    ("multiclass", (6, 1), {"lambda_ssim": 0.5, "lambda_jaccard": 2.0}),
    ("multiclass", (2, 3, 3), {"smooth": 0.5}),
]


def _np_params(kind, params):
    names = {"window": "ssim_window", "sigma": "ssim_sigma", "smooth": "jaccard_smooth",
             "alpha": "focal_alpha", "gamma": "focal_gamma", "lambda_focal": "lambda_pixel",
             "lambda_bce": "lambda_pixel"}
    return {names.get(k, k): v for k, v in params.items()}


@pytest.mark.parametrize("kind", ["unet3p", "basnet"])
@pytest.mark.parametrize("use_mask", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize("mode,spatial,params", CASES)
def test_reference_values(kind, mode, spatial, params, use_mask):
    logits, target, mask = make_case(mode, spatial)
    m = mask if use_mask else None
    extra = {"alpha": 0.4, "gamma": 1.5} if kind == "unet3p" and mode != "binary" else {}
    for reduction in ("none", "mean", "sum"):
        got = FUNCTIONS[kind](logits, target, m, mode=mode, reduction=reduction, **params,
                              **extra)
        want = hybrid_loss_np(kind, logits, target, m, mode=mode, reduction=reduction,
                              **_np_params(kind, {**params, **extra}))
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("kind", ["unet3p", "basnet"])
@pytest.mark.parametrize("mode", ["binary", "multilabel", "multiclass"])
def test_reference_values_shared_options(kind, mode):
    """class_weights, include_background, ignore_index, alpha=None."""
    logits, target, mask = make_case(mode, (6, 5), seed=3)
    c = logits.shape[1]
    kwargs = dict(mode=mode, reduction="none", class_weights=[0.5, 2.0, 1.5][:c],
                  include_background=False)
    extra = {"alpha": None, "lambda_focal": 0.5} if kind == "unet3p" else {"lambda_bce": 3.0}
    got = FUNCTIONS[kind](logits, target, mask, **kwargs, **extra)
    want = hybrid_loss_np(kind, logits, target, mask, **kwargs, **_np_params(kind, extra))
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)
    if mode == "multiclass":
        labels = torch.where(mask[:, 0], target, torch.full_like(target, 255))
    else:
        labels = torch.where(mask.expand_as(target), target, torch.full_like(target, 255.0))
    got = FUNCTIONS[kind](logits, labels, mode=mode, ignore_index=255, reduction="none")
    want = hybrid_loss_np(kind, logits, labels, mode=mode, ignore_index=255, reduction="none")
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)


def test_hand_computed():
    # One voxel, logit 0 (p = 1/2), target 1. SSIM: the window holds the voxel alone, so
    # SSIM = (2 p t + C1) / (p^2 + t^2 + C1). Jaccard: 1 - (TP + 1) / (TP + FP + FN + 1) with
    # TP = 1/2, FP = 0, FN = 1/2. Focal: alpha (1 - p)^2 (-log p) = 0.25 * 0.25 * log 2.
    # BCE: log 2.
    x = torch.zeros(1, 1, 1, 1, dtype=torch.float64)
    t = torch.ones(1, 1, 1, 1, dtype=torch.float64)
    ssim = 1.0 - (1.0 + 1e-4) / (1.25 + 1e-4)
    jaccard = 1.0 - 1.5 / 2.0
    focal = 0.25 * 0.25 * math.log(2.0)
    assert unet3p_hybrid_loss(x, t).item() == pytest.approx(focal + ssim + jaccard, rel=1e-12)
    assert basnet_hybrid_loss(x, t).item() == pytest.approx(math.log(2.0) + ssim + jaccard,
                                                            rel=1e-12)
    assert basnet_hybrid_loss(x, t, lambda_bce=0.0, lambda_jaccard=0.0).item() == \
        pytest.approx(ssim, rel=1e-12)


@pytest.mark.parametrize("mode", ["binary", "multiclass"])
def test_equals_sum_of_parts(mode):
    logits, target, mask = make_case(mode, (7, 6), seed=5)
    shared = dict(mode=mode, reduction="none", ignore_index=None)
    parts_u = (0.3 * focal_loss(logits, target, mask, alpha=0.5, gamma=1.0, **shared)
               + 2.0 * ssim_loss(logits, target, mask, window=5, sigma=1.0, **shared)
               + 0.7 * jaccard_loss(logits, target, mask, smooth=0.1, **shared))
    got_u = unet3p_hybrid_loss(logits, target, mask, alpha=0.5, gamma=1.0, window=5, sigma=1.0,
                               smooth=0.1, lambda_focal=0.3, lambda_ssim=2.0,
                               lambda_jaccard=0.7, **shared)
    torch.testing.assert_close(got_u, parts_u, rtol=1e-14, atol=0)
    parts_b = (bce_loss(logits, target, mask, **shared) + ssim_loss(logits, target, mask, **shared)
               + jaccard_loss(logits, target, mask, **shared))
    torch.testing.assert_close(basnet_hybrid_loss(logits, target, mask, **shared), parts_b,
                               rtol=1e-14, atol=0)
    expr = seglosses.get_loss("focal + ssim + jaccard", mode=mode, reduction="none")
    torch.testing.assert_close(seglosses.get_loss("unet3p_hybrid", mode=mode, reduction="none")(
        logits, target, mask), expr(logits, target, mask), rtol=1e-14, atol=0)


def test_edge_cases():
    # A saturated perfect prediction scores about 0 (jaccard's smooth keeps empty targets at 0).
    t = torch.zeros(2, 1, 8, 9)
    t[0, :, 2:5, 3:7] = 1.0
    for fn in FUNCTIONS.values():
        perfect = fn((2 * t - 1) * 30.0, t, reduction="none")
        assert (perfect >= 0).all() and (perfect < 1e-6).all()
        wrong = fn((1 - 2 * t) * 30.0, t, reduction="none")
        assert torch.isfinite(wrong).all() and (wrong > 1.0).all()


def test_module_parameters():
    logits, target, _ = make_case("binary", (6, 7))
    loss = seglosses.get_loss("unet3p_hybrid", gamma=0.0, alpha=None, lambda_ssim=0.0,
                              lambda_jaccard=0.0)
    torch.testing.assert_close(loss(logits, target), bce_loss(logits, target), rtol=1e-14, atol=0)
    loss = seglosses.get_loss("basnet_hybrid", window=3, smooth=0.0)
    assert "window=3" in repr(loss) and type(loss).__name__ == "BASNetHybridLoss"


@pytest.mark.parametrize("kind", ["unet3p", "basnet"])
def test_errors(kind):
    fn = FUNCTIONS[kind]
    logits, target, _ = make_case("binary", (6, 7))
    pixel = "lambda_focal" if kind == "unet3p" else "lambda_bce"
    with pytest.raises(ValueError, match=rf"`{pixel}` must lie in \[0.0, inf\]; got -1.0"):
        fn(logits, target, **{pixel: -1.0})
    with pytest.raises(ValueError, match=r"`lambda_ssim` must lie in \[0.0, inf\]; got -0.5"):
        fn(logits, target, lambda_ssim=-0.5)
    with pytest.raises(ValueError, match="`window` must be an odd window width; got 6"):
        fn(logits, target, window=6)
    with pytest.raises(ValueError, match=r"`smooth` must lie in \[0.0, inf\]; got -1.0"):
        fn(logits, target, smooth=-1.0)
    if kind == "unet3p":
        with pytest.raises(ValueError, match=r"`alpha` must lie in \[0.0, 1.0\]; got 2.0"):
            fn(logits, target, alpha=2.0)
        with pytest.raises(ValueError, match=r"`gamma` must lie in \[0.0, inf\]; got -2.0"):
            fn(logits, target, gamma=-2.0)
    with pytest.raises(TypeError, match=f"{kind}_hybrid"):
        seglosses.get_loss(f"{kind}_hybrid", beta=0.1)
