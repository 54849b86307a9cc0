"""Log-Cosh Dice loss: reference values, stable log cosh, relation to the Dice loss."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import seglosses
from seglosses.functional import dice_loss, log_cosh_dice_loss
from seglosses.losses.region.log_cosh_dice import log_cosh
from tests.reference import np_region as ref

P = torch.tensor([[[[0.9, 0.2], [0.6, 0.1]]]], dtype=torch.float64)
T = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]], dtype=torch.float64)


@pytest.mark.parametrize("case", ref.CASES, ids=ref.case_id)
def test_reference_values(case):
    logits, target, mask, kw = ref.build(case, seed=3)
    x, y, m = ref.as_torch(logits, target, mask)
    got = log_cosh_dice_loss(x, y, m, smooth=0.5, **kw)
    want = ref.log_cosh_dice(logits, target, mask, smooth=0.5, **kw)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-12)


def test_hand_computed():
    # Dice score (2 * 1.5 + 1) / (2 * 1.5 + 0.3 + 0.5 + 1) = 4 / 4.8, so D = 1 / 6
    got = log_cosh_dice_loss(P, T, from_logits=False)
    assert got.item() == pytest.approx(ref.log_cosh(1 / 6), rel=1e-12)


@pytest.mark.parametrize("mode", ["binary", "multilabel", "multiclass"])
def test_is_log_cosh_of_dice_per_channel(mode):
    logits, target, _, _ = ref.build((mode, (5, 4), {}), seed=9)
    x, y, _ = ref.as_torch(logits, target, None)
    c = x.shape[1]
    if mode == "multiclass":
        y = torch.nn.functional.one_hot(y, c).movedim(-1, 1).double()
        p = torch.softmax(x, 1)
    else:
        p = torch.sigmoid(x)
    per_channel = torch.stack([
        dice_loss(p[:, k:k + 1], y[:, k:k + 1], mode="binary", from_logits=False,
                  reduction="none") for k in range(c)], dim=1)
    want = torch.log(torch.cosh(per_channel)).mean(dim=1)
    torch.testing.assert_close(log_cosh_dice_loss(x, y, mode=mode, reduction="none"), want,
                               rtol=1e-12, atol=1e-12)


def test_log_cosh_is_stable():
    x = torch.tensor([0.0, 1e-8, 0.5, 1.0, 30.0, 400.0, 1e4, -1e4], dtype=torch.float64,
                     requires_grad=True)
    value = log_cosh(x)
    value.sum().backward()
    expected = [0.0, 5e-17, math.log(math.cosh(0.5)), math.log(math.cosh(1.0)),
                30.0 - math.log(2.0), 400.0 - math.log(2.0), 1e4 - math.log(2.0),
                1e4 - math.log(2.0)]
    np.testing.assert_allclose(value.detach().numpy(), expected, rtol=1e-12, atol=1e-16)
    torch.testing.assert_close(x.grad, torch.tanh(x.detach()), rtol=1e-12, atol=1e-15)


def test_edge_cases_and_range():
    kw = dict(from_logits=False, reduction="none")
    empty = torch.zeros(1, 1, 4, dtype=torch.float64)
    full = torch.ones(1, 1, 4, dtype=torch.float64)
    assert log_cosh_dice_loss(empty, empty, **kw).item() == pytest.approx(0.0, abs=1e-15)
    assert log_cosh_dice_loss(full, full, **kw).item() == pytest.approx(0.0, abs=1e-15)
    # totally wrong with smooth = 0: D = 1, L = log cosh 1, the top of the range
    wrong = log_cosh_dice_loss(full, empty, smooth=0.0, **kw).item()
    assert wrong == pytest.approx(math.log(math.cosh(1.0)), rel=1e-12)
    assert seglosses.loss_info("log_cosh_dice").value_range[1] == pytest.approx(wrong)


def test_errors():
    with pytest.raises(ValueError, match="smooth"):
        log_cosh_dice_loss(P, T, smooth=-1e-3)
