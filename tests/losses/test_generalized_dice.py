"""Generalized Dice loss (Sudre et al. 2017): reference values, class weights, absent classes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seglosses.functional import generalized_dice_loss
from tests.reference import np_region as ref

P = torch.tensor([[[[0.9, 0.2], [0.6, 0.1]]]], dtype=torch.float64)
T = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]], dtype=torch.float64)


@pytest.mark.parametrize("case", ref.CASES, ids=ref.case_id)
def test_reference_values(case):
    logits, target, mask, kw = ref.build(case, seed=5, drop=("batch",))
    x, y, m = ref.as_torch(logits, target, mask)
    got = generalized_dice_loss(x, y, m, smooth=1e-3, **kw)
    want = ref.generalized_dice(logits, target, mask, smooth=1e-3, **kw)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-12)


def test_hand_computed_binary():
    # background and foreground both have volume 2, so their weights are equal and cancel:
    # L = 1 - 2 (TP_fg + TP_bg) / (sum p + sum t over both classes)
    #   = 1 - 2 (1.5 + 1.7) / (2 + 2 + 2 + 2) = 0.2
    got = generalized_dice_loss(P, T, from_logits=False)
    assert got.item() == pytest.approx(0.2, rel=1e-12)


def test_hand_computed_unequal_volumes():
    # one foreground voxel of four: w_fg = 1 / (1 + s), w_bg = 1 / (9 + s)
    p = torch.tensor([[[0.5, 0.5, 0.0, 0.0]]], dtype=torch.float64)
    t = torch.tensor([[[1.0, 0.0, 0.0, 0.0]]], dtype=torch.float64)
    s = 1e-5
    w_fg, w_bg = 1 / (1 + s), 1 / (9 + s)
    tp_fg, tp_bg = 0.5, 0.5 + 1.0 + 1.0
    den_fg, den_bg = 1.0 + 1.0, 3.0 + 3.0
    want = 1 - 2 * (w_fg * tp_fg + w_bg * tp_bg) / (w_fg * den_fg + w_bg * den_bg)
    got = generalized_dice_loss(p, t, from_logits=False)
    assert got.item() == pytest.approx(want, rel=1e-12)


def test_absent_class_takes_largest_present_weight():
    # classes 0 (6 voxels) and 1 (2 voxels) present, class 2 absent
    labels = torch.tensor([[0, 0, 0, 1, 1, 0, 0, 0]])
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(1, 3, 8, generator=g, dtype=torch.float64)
    p = torch.softmax(logits, 1)[0]
    s = 1e-5
    w = torch.tensor([1 / (36 + s), 1 / (4 + s), 1 / (4 + s)], dtype=torch.float64)
    t = torch.nn.functional.one_hot(labels[0], 3).T.double()
    num = 2 * (w * (p * t).sum(1)).sum()
    den = (w * (p.sum(1) + t.sum(1))).sum()
    got = generalized_dice_loss(logits, labels)
    assert got.item() == pytest.approx(1 - (num / den).item(), rel=1e-12)
    # class weights multiply the inverse-volume weights
    cw = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
    num = 2 * (cw * w * (p * t).sum(1)).sum()
    den = (cw * w * (p.sum(1) + t.sum(1))).sum()
    got = generalized_dice_loss(logits, labels, class_weights=cw)
    assert got.item() == pytest.approx(1 - (num / den).item(), rel=1e-12)


def test_no_class_present_gives_zero_and_no_gradient():
    labels = torch.zeros(2, 5, 4, dtype=torch.long)  # background only
    logits = torch.randn(2, 3, 5, 4, dtype=torch.float64, requires_grad=True)
    value = generalized_dice_loss(logits, labels, include_background=False, reduction="none")
    assert torch.equal(value, torch.zeros(2, dtype=torch.float64))
    value.sum().backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))
    # every voxel masked
    mask = torch.zeros(2, 5, 4, dtype=torch.bool)
    value = generalized_dice_loss(logits, labels, mask, reduction="none")
    assert torch.equal(value, torch.zeros(2, dtype=torch.float64))


def test_binary_uses_background_and_foreground():
    kw = dict(from_logits=False, reduction="none")
    empty = torch.zeros(1, 1, 3, 3, dtype=torch.float64)
    full = torch.ones(1, 1, 3, 3, dtype=torch.float64)
    # an empty target predicted empty is perfect (the background class scores it)
    assert generalized_dice_loss(empty, empty, **kw).item() == pytest.approx(0.0, abs=1e-15)
    assert generalized_dice_loss(full, full, **kw).item() == pytest.approx(0.0, abs=1e-15)
    # totally wrong: no overlap in either class
    assert generalized_dice_loss(full, empty, **kw).item() == pytest.approx(1.0)
    # class weights have no effect in binary mode (a common factor cancels)
    torch.testing.assert_close(generalized_dice_loss(P, T, from_logits=False),
                               generalized_dice_loss(P, T, from_logits=False,
                                                     class_weights=[7.0]))


def test_errors():
    with pytest.raises(ValueError, match="smooth"):
        generalized_dice_loss(P, T, smooth=-1.0)


@pytest.mark.parametrize("mode,include_background", [("multilabel", True), ("multiclass", True),
                                                     ("multiclass", False)])
@pytest.mark.parametrize("absent", [False, True])
def test_matches_monai(mode, include_background, absent):
    """MONAI GeneralizedDiceLoss(w_type="square") without smoothing of the ratio, smooth=0."""
    monai_losses = pytest.importorskip("monai.losses")
    logits, target, _, _ = ref.build((mode, (6, 5), {}), seed=6)
    x, y, _ = ref.as_torch(logits, target, None)
    if absent:  # class / channel 1 absent from sample 0
        if mode == "multiclass":
            y[0][y[0] == 1] = 2
        else:
            y[0, 1] = 0.0
    peer = monai_losses.GeneralizedDiceLoss(
        w_type="square", smooth_nr=0.0, smooth_dr=0.0, include_background=include_background,
        sigmoid=mode == "multilabel", softmax=mode == "multiclass",
        to_onehot_y=mode == "multiclass", reduction="none")
    want = peer(x, y.unsqueeze(1) if mode == "multiclass" else y).flatten()
    got = generalized_dice_loss(x, y, mode=mode, smooth=0.0, reduction="none",
                                include_background=include_background)
    # MONAI computes the weights from ``ground_o.float()``, in float32
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-9)
