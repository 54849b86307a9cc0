"""Soft Dice loss: reference values (squared, batch), hand cases, MONAI DiceLoss, edges."""

from __future__ import annotations

import math

import pytest
import torch

from seglosses import functional as SF
from tests.reference import np_pixel as ref

CASES = [pytest.param(*row[1:], id=row[0]) for row in ref.STANDARD_CASES]
PARAMS = [pytest.param({}, id="default"),
          pytest.param({"squared": True, "smooth": 0.5}, id="squared"),
          pytest.param({"batch": True}, id="batch"),
          pytest.param({"squared": True, "batch": True, "smooth": 0.0}, id="squared-batch-s0")]


@pytest.mark.parametrize("params", PARAMS)
@pytest.mark.parametrize("mode,ndim,option", CASES)
def test_reference_values(mode, ndim, option, params):
    logits, target, mask, kw = ref.build_case(mode, ndim, option)
    ref.assert_matches_reference(SF.dice_loss, ref.dice, logits, target, mask, **params, **kw)


def test_hand_computed():
    # p = sigmoid(2, -1, 0.5, -3), t = (1, 0, 1, 0)
    p = [1 / (1 + math.exp(-v)) for v in (2.0, -1.0, 0.5, -3.0)]
    logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]], dtype=torch.float64)
    target = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]], dtype=torch.float64)
    tp = p[0] + p[2]
    assert SF.dice_loss(logits, target).item() == \
        pytest.approx(1 - (2 * tp + 1) / (sum(p) + 2 + 1), rel=1e-12)
    squares = sum(v * v for v in p)
    assert SF.dice_loss(logits, target, squared=True, smooth=0.0).item() == \
        pytest.approx(1 - 2 * tp / (squares + 2), rel=1e-12)
    # batch pooling: sums over both samples before the ratio
    x2 = torch.cat([logits, -logits])
    t2 = torch.cat([target, target])
    tp2 = tp + (1 - p[0]) + (1 - p[2])
    sum_p2 = sum(p) + sum(1 - v for v in p)
    pooled = SF.dice_loss(x2, t2, batch=True, reduction="none")
    assert pooled.shape == (1,)
    assert pooled.item() == pytest.approx(1 - (2 * tp2 + 1) / (sum_p2 + 4 + 1), rel=1e-12)
    # multiclass 2 voxels, p = (1/4, 3/4) everywhere, labels (1, 0), include_background=False:
    # class 1 only: TP = 3/4, sum p = 3/2, sum t = 1
    x = torch.tensor([0.0, math.log(3.0)], dtype=torch.float64).view(1, 2, 1).expand(1, 2, 2)
    y = torch.tensor([[1, 0]])
    assert SF.dice_loss(x, y, include_background=False).item() == \
        pytest.approx(1 - (1.5 + 1) / (1.5 + 1 + 1), rel=1e-12)


MONAI_CASES = [(m, p) for m in ("binary", "multilabel", "multiclass")
               for p in ({}, {"squared": True}, {"batch": True}, {"smooth": 1e-5})]
# include_background is a multiclass option here; MONAI also drops channel 0 of multilabel input
MONAI_CASES.append(("multiclass", {"include_background": False, "squared": True}))


@pytest.mark.parametrize("mode,params", MONAI_CASES)
def test_matches_monai(mode, params):
    losses = pytest.importorskip("monai.losses", reason="MONAI not installed")
    logits, target = ref.random_case(mode, 3, seed=16)
    x, t = torch.from_numpy(logits), torch.from_numpy(target)
    smooth = params.get("smooth", 1.0)
    ours = {k: v for k, v in params.items() if k != "smooth"}
    peer_kw = dict(smooth_nr=smooth, smooth_dr=smooth, squared_pred=ours.get("squared", False),
                   batch=ours.get("batch", False),
                   include_background=ours.get("include_background", True))
    if mode == "multiclass":
        peer = losses.DiceLoss(softmax=True, to_onehot_y=True, **peer_kw)
        expected = peer(x, t.unsqueeze(1))
    else:
        peer = losses.DiceLoss(sigmoid=True, **peer_kw)
        expected = peer(x, t)
    got = SF.dice_loss(x, t, mode=mode, smooth=smooth, **ours)
    torch.testing.assert_close(got, expected.to(got.dtype), rtol=1e-6, atol=1e-9)


def test_edge_cases():
    """Smooth in numerator and denominator: an empty target predicted empty scores 0."""
    t = torch.zeros(2, 1, 5, 7)
    x = torch.full((2, 1, 5, 7), -30.0, requires_grad=True)
    value = SF.dice_loss(x, t, reduction="none")
    assert torch.allclose(value, torch.zeros(2), atol=1e-6)
    value.sum().backward()
    assert torch.isfinite(x.grad).all()
    # a false-positive voxel on an empty target is penalised and gets a gradient
    x2 = x.detach().clone()
    x2[0, 0, 2, 3] = 30.0
    x2.requires_grad_(True)
    value = SF.dice_loss(x2, t, reduction="none")
    assert value[0].item() == pytest.approx(0.5, abs=1e-6)  # 1 - 1/(1 + 1)
    # fp16 logits on 512 x 512: the sums run in fp32
    fp16 = torch.randn(1, 1, 512, 512).mul(4).half().requires_grad_(True)
    tt = (torch.rand(1, 1, 512, 512) > 0.5).float()
    v16 = SF.dice_loss(fp16, tt)
    v32 = SF.dice_loss(fp16.detach().float(), tt)
    assert v16.dtype == torch.float32 and torch.isfinite(v16)
    torch.testing.assert_close(v16, v32)
    v16.backward()
    assert torch.isfinite(fp16.grad.float()).all()


def test_errors():
    x, t = torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)
    with pytest.raises(ValueError, match=r"`smooth` must lie in \[0.0, inf\]; got -1.0"):
        SF.dice_loss(x, t, smooth=-1.0)
    with pytest.raises(TypeError, match="`smooth` must be a number; got str"):
        SF.dice_loss(x, t, smooth="1")
