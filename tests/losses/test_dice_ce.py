"""Dice + cross-entropy: reference values, sum of parts, MONAI DiceCELoss, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import seglosses
from seglosses import functional as SF
from tests.reference import np_pixel as ref

CASES = [pytest.param(*row[1:], id=row[0]) for row in ref.STANDARD_CASES]


@pytest.mark.parametrize("mode,ndim,option", CASES)
def test_reference_values(mode, ndim, option):
    logits, target, mask, kw = ref.build_case(mode, ndim, option)
    ref.assert_matches_reference(SF.dice_ce_loss, ref.dice_ce, logits, target, mask,
                                 lambda_dice=0.7, lambda_ce=1.3, smooth=0.5, **kw)


def test_hand_computed():
    # dice_loss and bce_loss of the 2x2 example are 1 - (2 TP + 1)/(sum p + sum t + 1) and the
    # mean of softplus(-x) / softplus(x); the compound is their weighted sum
    import math

    p = [1 / (1 + math.exp(-v)) for v in (2.0, -1.0, 0.5, -3.0)]
    dice = 1 - (2 * (p[0] + p[2]) + 1) / (sum(p) + 2 + 1)
    ce = (-math.log(p[0]) - math.log(1 - p[1]) - math.log(p[2]) - math.log(1 - p[3])) / 4
    logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]], dtype=torch.float64)
    target = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]], dtype=torch.float64)
    got = SF.dice_ce_loss(logits, target, lambda_dice=2.0, lambda_ce=0.5)
    assert got.item() == pytest.approx(2 * dice + 0.5 * ce, rel=1e-12)


@pytest.mark.parametrize("mode", ["binary", "multilabel", "multiclass"])
def test_equals_weighted_sum_of_parts(mode):
    logits, target, mask, kw = ref.build_case(mode, 3, "ignore_mask_weights"
                                              if mode == "multiclass" else "mask")
    x, t, m = (torch.from_numpy(np.ascontiguousarray(a)) for a in (logits, target, mask))
    kw.update(include_background=False) if mode == "multiclass" else None
    x1 = x.clone().requires_grad_(True)
    x2 = x.clone().requires_grad_(True)
    got = SF.dice_ce_loss(x1, t, m, lambda_dice=0.3, lambda_ce=2.0, smooth=0.1, **kw)
    parts = 0.3 * SF.dice_loss(x2, t, m, smooth=0.1, **kw) + 2.0 * SF.bce_loss(x2, t, m, **kw)
    torch.testing.assert_close(got, parts, rtol=1e-12, atol=1e-14)
    got.backward()
    parts.backward()
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("mode", ["binary", "multiclass"])
def test_matches_monai(mode):
    losses = pytest.importorskip("monai.losses", reason="MONAI not installed")
    logits, target = ref.random_case(mode, 2, seed=13)
    x, t = torch.from_numpy(logits), torch.from_numpy(target)
    if mode == "multiclass":
        peer = losses.DiceCELoss(softmax=True, to_onehot_y=True, smooth_nr=1.0, smooth_dr=1.0,
                                 lambda_dice=0.6, lambda_ce=1.4)
        expected = peer(x, t.unsqueeze(1))
    else:
        peer = losses.DiceCELoss(sigmoid=True, smooth_nr=1.0, smooth_dr=1.0, lambda_dice=0.6,
                                 lambda_ce=1.4)
        expected = peer(x, t)
    got = SF.dice_ce_loss(x, t, lambda_dice=0.6, lambda_ce=1.4)
    torch.testing.assert_close(got, expected.to(got.dtype), rtol=1e-6, atol=1e-8)


def test_errors():
    x, t = torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)
    with pytest.raises(ValueError, match=r"`lambda_dice` must lie in \[0.0, inf\]; got -1.0"):
        SF.dice_ce_loss(x, t, lambda_dice=-1.0)
    with pytest.raises(ValueError, match=r"`lambda_ce` must lie in \[0.0, inf\]; got -2"):
        SF.dice_ce_loss(x, t, lambda_ce=-2)
    with pytest.raises(ValueError, match=r"`smooth` must lie in \[0.0, inf\]; got -0.5"):
        SF.dice_ce_loss(x, t, smooth=-0.5)
    with pytest.raises(TypeError, match="dice_ce"):
        seglosses.get_loss("dice_ce", batch=True)
