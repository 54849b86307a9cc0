"""Exponential logarithmic loss: reference values, hand case, limits, gamma < 1 safety."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from seglosses import functional as SF
from tests.reference import np_pixel as ref
from tests.reference import scalar as S

CASES = [pytest.param(*row[1:], id=row[0]) for row in ref.STANDARD_CASES]
PARAMS = [pytest.param({}, id="default"),
          pytest.param({"w_dice": 0.5, "w_cross": 1.5, "gamma": 1.7, "smooth": 0.5,
                        "balanced": False}, id="unbalanced-g1.7")]


@pytest.mark.parametrize("params", PARAMS)
@pytest.mark.parametrize("mode,ndim,option", CASES)
def test_reference_values(mode, ndim, option, params):
    logits, target, mask, kw = ref.build_case(mode, ndim, option)
    ref.assert_matches_reference(SF.exp_log_loss, ref.exp_log, logits, target, mask, **params,
                                 **kw)


def test_hand_computed():
    # p = sigmoid(2, -1, 0.5, -3), t = (1, 0, 1, 0): N = 4, N_0 = N_1 = 2 -> w_0 = w_1 = sqrt 2
    logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]], dtype=torch.float64)
    target = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]], dtype=torch.float64)
    p = [S.sigmoid(v) for v in (2.0, -1.0, 0.5, -3.0)]
    dsc = (2 * (p[0] + p[2]) + 1) / (sum(p) + 2 + 1)
    p_true = [p[0], 1 - p[1], p[2], 1 - p[3]]
    cross = sum(math.sqrt(2) * (-math.log(q)) ** 0.3 for q in p_true) / 4
    expected = 0.8 * (-math.log(dsc)) ** 0.3 + 0.2 * cross
    assert SF.exp_log_loss(logits, target).item() == pytest.approx(expected, rel=1e-12)
    # multiclass 3 voxels, labels (0, 0, 1): w_0 = sqrt(3/2), w_1 = sqrt 3, class 2 absent
    x = torch.tensor([[[1.0, 0.0, -1.0], [0.0, 0.5, 2.0], [0.3, 0.1, 0.0]]], dtype=torch.float64)
    y = torch.tensor([[0, 0, 1]])
    prob = torch.softmax(x, 1)[0]
    onehot = torch.nn.functional.one_hot(y[0], 3).T.double()
    dscs = [(2 * (prob[c] * onehot[c]).sum() + 1) / (prob[c].sum() + onehot[c].sum() + 1)
            for c in range(3)]
    dice_term = sum((-math.log(d)) ** 0.3 for d in dscs) / 3
    w = [math.sqrt(1.5), math.sqrt(1.5), math.sqrt(3.0)]
    cross = sum(w[i] * (-math.log(prob[int(y[0, i]), i])) ** 0.3 for i in range(3)) / 3
    assert SF.exp_log_loss(x, y).item() == pytest.approx(0.8 * dice_term + 0.2 * cross, rel=1e-12)


@pytest.mark.parametrize("mode", ["binary", "multilabel", "multiclass"])
def test_limits(mode):
    """gamma = 1, unbalanced: the cross term is the cross-entropy, the Dice term mean -ln DSC."""
    logits, target, mask, kw = ref.build_case(mode, 2, "mask")
    x, t, m = (torch.from_numpy(np.ascontiguousarray(a)) for a in (logits, target, mask))
    cross = SF.exp_log_loss(x, t, m, w_dice=0.0, w_cross=1.0, gamma=1.0, balanced=False,
                            reduction="none", **kw)
    torch.testing.assert_close(cross, SF.bce_loss(x, t, m, reduction="none", **kw))
    dice_only = SF.exp_log_loss(x, t, m, w_dice=1.0, w_cross=0.0, gamma=1.0, reduction="none",
                                **kw)
    scores = 1.0 - SF.dice_loss(x, t, m, reduction="none", mode=mode,
                                class_weights=[1.0] * x.shape[1])
    assert (dice_only >= -torch.log(scores) - 1e-12).all()  # Jensen: mean -ln >= -ln mean


@pytest.mark.parametrize("mode", ["binary", "multilabel", "multiclass"])
@pytest.mark.parametrize("dtype,magnitude", [(torch.float32, 50.0), (torch.float16, 10.0),
                                             (torch.float64, 300.0)])
def test_edge_cases(mode, dtype, magnitude):
    """Perfect prediction: (-ln x)^0.3 at x -> 1 has an infinite slope; gradients stay finite."""
    _, target = ref.random_case(mode, 2, seed=12)
    t = torch.from_numpy(target)
    onehot = torch.nn.functional.one_hot(t, 3).movedim(-1, 1).double() if mode == "multiclass" \
        else t
    x = ((2 * onehot - 1) * magnitude).to(dtype).requires_grad_(True)
    value = SF.exp_log_loss(x, t)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(x.grad).all()
    assert value.item() < 0.1  # (-ln p)^0.3 decays slowly: 0.05 at logits +-10
    if dtype == torch.float64:
        expected = ref.exp_log(x.detach().numpy(), target, mode=mode)
        assert value.item() == pytest.approx(float(expected), rel=1e-9, abs=1e-12)
    # exact 0/1 probabilities: DSC = 1 exactly, -ln p = -ln(1 - 1e-7)
    p = onehot.clone().requires_grad_(True)
    value = SF.exp_log_loss(p, t, from_logits=False)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(p.grad).all()


def test_absent_label_gets_no_weight():
    """An empty binary target: only label 0 is present, w_0 = (N / N)^0.5 = 1."""
    x = torch.tensor([[[0.5, -1.0, 2.0]]], dtype=torch.float64)
    t = torch.zeros_like(x)
    got = SF.exp_log_loss(x, t, w_dice=0.0, w_cross=1.0)
    q = torch.nn.functional.softplus(x)  # -ln(1 - p)
    assert got.item() == pytest.approx((q ** 0.3).mean().item(), rel=1e-12)


def test_errors():
    x, t = torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)
    with pytest.raises(ValueError, match=r"`smooth` must lie in \(0.0, inf\]; got 0.0"):
        SF.exp_log_loss(x, t, smooth=0.0)
    with pytest.raises(ValueError, match=r"`gamma` must lie in \(0.0, inf\]; got 0.0"):
        SF.exp_log_loss(x, t, gamma=0.0)
    with pytest.raises(ValueError, match=r"`w_dice` must lie in \[0.0, inf\]; got -1"):
        SF.exp_log_loss(x, t, w_dice=-1)
    with pytest.raises(ValueError, match=r"`w_cross` must lie"):
        SF.exp_log_loss(x, t, w_cross=-0.5)
    with pytest.raises(TypeError, match="`balanced` must be a bool; got str"):
        SF.exp_log_loss(x, t, balanced="yes")
