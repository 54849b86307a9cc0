"""Combo loss: reference values, hand case, its negative range, limits, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import seglosses
from seglosses import functional as SF
from tests.reference import np_pixel as ref
from tests.reference import scalar as S

CASES = [pytest.param(*row[1:], id=row[0]) for row in ref.STANDARD_CASES]
PARAMS = [pytest.param({}, id="default"),
          pytest.param({"alpha": 0.3, "beta": 0.8, "smooth": 0.0}, id="a0.3-b0.8-s0")]


@pytest.mark.parametrize("params", PARAMS)
@pytest.mark.parametrize("mode,ndim,option", CASES)
def test_reference_values(mode, ndim, option, params):
    logits, target, mask, kw = ref.build_case(mode, ndim, option)
    ref.assert_matches_reference(SF.combo_loss, ref.combo, logits, target, mask, **params, **kw)


def test_hand_computed():
    # p = sigmoid(2, -1, 0.5, -3), t = (1, 0, 1, 0), alpha = beta = 0.5, s = 1
    logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]], dtype=torch.float64)
    target = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]], dtype=torch.float64)
    p = [S.sigmoid(v) for v in (2.0, -1.0, 0.5, -3.0)]
    ce = -(0.5 * math.log(p[0]) + 0.5 * math.log(1 - p[1]) + 0.5 * math.log(p[2])
           + 0.5 * math.log(1 - p[3])) / 4
    tp = p[0] + p[2]
    dsc = (2 * tp + 1) / (sum(p) + 2 + 1)
    expected = 0.5 * ce - 0.5 * dsc
    assert SF.combo_loss(logits, target).item() == pytest.approx(expected, rel=1e-12)
    assert expected < 0


@pytest.mark.parametrize("mode", ["binary", "multilabel", "multiclass"])
def test_limits(mode):
    """alpha = 0 gives -DSC = dice loss - 1; alpha = 1, beta = 1/2 gives half the BCE."""
    logits, target, mask, kw = ref.build_case(mode, 2, "mask")
    x, t, m = (torch.from_numpy(np.ascontiguousarray(a)) for a in (logits, target, mask))
    torch.testing.assert_close(SF.combo_loss(x, t, m, alpha=0.0, reduction="none", **kw),
                               SF.dice_loss(x, t, m, reduction="none", **kw) - 1.0)
    if mode != "multiclass":
        torch.testing.assert_close(SF.combo_loss(x, t, m, alpha=1.0, reduction="none", **kw),
                                   0.5 * SF.bce_loss(x, t, m, reduction="none", **kw))
    else:  # one-vs-rest cross-entropy per class channel
        torch.testing.assert_close(
            SF.combo_loss(x, t, m, alpha=1.0, reduction="none", **kw),
            0.5 * SF.weighted_bce_loss(x, t, m, beta=1.0, reduction="none", **kw))


def test_edge_cases():
    """A perfect prediction reaches the bottom of the range, -(1 - alpha)."""
    t = (torch.rand(2, 1, 5, 7) > 0.5).float()
    perfect = ((2 * t - 1) * 30).requires_grad_(True)
    value = SF.combo_loss(perfect, t, reduction="none")
    assert torch.allclose(value, torch.full((2,), -0.5), atol=1e-6)
    value.sum().backward()
    assert torch.isfinite(perfect.grad).all()
    low, high = seglosses.loss_info("combo").value_range
    assert low == -1.0 and high == math.inf
    assert SF.combo_loss(perfect.detach(), t, alpha=0.2).item() == pytest.approx(-0.8, abs=1e-6)


def test_errors():
    x, t = torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)
    with pytest.raises(ValueError, match=r"`alpha` must lie in \[0.0, 1.0\]; got 1.2"):
        SF.combo_loss(x, t, alpha=1.2)
    with pytest.raises(ValueError, match=r"`beta` must lie in \[0.0, 1.0\]; got -0.1"):
        SF.combo_loss(x, t, beta=-0.1)
    with pytest.raises(ValueError, match=r"`smooth` must lie in \[0.0, inf\]; got -1"):
        SF.combo_loss(x, t, smooth=-1)
