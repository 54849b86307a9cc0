"""Tversky loss: reference values, hand-computed cases, identities, peers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seglosses.functional import dice_loss, jaccard_loss, tversky_loss
from tests.reference import np_region as ref

P = torch.tensor([[[[0.9, 0.2], [0.6, 0.1]]]], dtype=torch.float64)
T = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]], dtype=torch.float64)


@pytest.mark.parametrize("case", ref.CASES, ids=ref.case_id)
def test_reference_values(case):
    logits, target, mask, kw = ref.build(case, seed=1)
    x, y, m = ref.as_torch(logits, target, mask)
    got = tversky_loss(x, y, m, alpha=0.2, beta=0.9, smooth=0.5, **kw)
    want = ref.tversky(logits, target, mask, alpha=0.2, beta=0.9, smooth=0.5, **kw)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-12)


def test_hand_computed():
    # TP = 1.5, FP = 0.3, FN = 0.5; TI = 2.5 / (1.5 + 0.3 * 0.3 + 0.7 * 0.5 + 1) = 2.5 / 2.94
    got = tversky_loss(P, T, from_logits=False)
    assert got.item() == pytest.approx(1 - 2.5 / 2.94, rel=1e-12)


def test_alpha_weighs_false_positives():
    pred = torch.tensor([[[0.0, 1.0, 1.0, 1.0]]], dtype=torch.float64)  # TP 1, FP 2, FN 0
    target = torch.tensor([[[0.0, 0.0, 0.0, 1.0]]], dtype=torch.float64)
    kw = dict(from_logits=False, smooth=0.0)
    assert tversky_loss(pred, target, alpha=0.5, beta=0.0, **kw).item() == \
        pytest.approx(1 - 1 / (1 + 0.5 * 2))
    # beta changes nothing when there is no false negative
    assert tversky_loss(pred, target, alpha=0.5, beta=0.9, **kw).item() == \
        pytest.approx(1 - 1 / (1 + 0.5 * 2))
    # and alpha nothing when there is no false positive
    assert tversky_loss(target, pred, alpha=0.0, beta=0.5, **kw).item() == \
        tversky_loss(target, pred, alpha=0.9, beta=0.5, **kw).item()


@pytest.mark.parametrize("mode", ["binary", "multilabel", "multiclass"])
def test_identities(mode):
    logits, target, _, _ = ref.build((mode, (5, 4), {}), seed=2)
    x, y, _ = ref.as_torch(logits, target, None)
    kw = dict(mode=mode, reduction="none")
    # alpha = beta = 0.5 is Dice with twice the smoothing: (TP + s)/(TP + FP/2 + FN/2 + s)
    torch.testing.assert_close(tversky_loss(x, y, alpha=0.5, beta=0.5, smooth=0.5, **kw),
                               dice_loss(x, y, smooth=1.0, **kw), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(tversky_loss(x, y, alpha=0.5, beta=0.5, smooth=0.0, **kw),
                               dice_loss(x, y, smooth=0.0, **kw), rtol=1e-12, atol=1e-12)
    # alpha = beta = 1 is Jaccard
    torch.testing.assert_close(tversky_loss(x, y, alpha=1.0, beta=1.0, smooth=0.3, **kw),
                               jaccard_loss(x, y, smooth=0.3, **kw), rtol=1e-12, atol=1e-12)


def test_edge_cases():
    kw = dict(from_logits=False, reduction="none")
    empty = torch.zeros(2, 1, 3, dtype=torch.float64)
    full = torch.ones(2, 1, 3, dtype=torch.float64)
    zeros = torch.zeros(2, dtype=torch.float64)
    torch.testing.assert_close(tversky_loss(empty, empty, **kw), zeros)
    torch.testing.assert_close(tversky_loss(full, full, **kw), zeros)
    # all false negatives: TI = 1 / (0.7 * 3 + 1)
    assert tversky_loss(empty, full, **kw)[0].item() == pytest.approx(1 - 1 / 3.1)
    assert tversky_loss(empty, full, batch=True, **kw).shape == (1,)


def test_errors():
    for name in ("alpha", "beta", "smooth"):
        with pytest.raises(ValueError, match=name):
            tversky_loss(P, T, **{name: -0.1})
        with pytest.raises(TypeError, match=name):
            tversky_loss(P, T, **{name: None})


@pytest.mark.parametrize("mode", ["binary", "multilabel", "multiclass"])
@pytest.mark.parametrize("batch", [False, True])
def test_matches_monai(mode, batch):
    monai_losses = pytest.importorskip("monai.losses")
    logits, target, _, _ = ref.build((mode, (6, 5), {}), seed=3)
    x, y, _ = ref.as_torch(logits, target, None)
    peer = monai_losses.TverskyLoss(alpha=0.3, beta=0.7, smooth_nr=1.0, smooth_dr=1.0,
                                    sigmoid=mode != "multiclass", softmax=mode == "multiclass",
                                    to_onehot_y=mode == "multiclass", batch=batch)
    want = peer(x, y.unsqueeze(1) if mode == "multiclass" else y)
    torch.testing.assert_close(tversky_loss(x, y, mode=mode, batch=batch), want,
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mode", ["binary", "multilabel", "multiclass"])
def test_matches_smp(mode):
    """smp pools over the batch: equal to ``batch=True`` on hard targets with foreground."""
    smp_losses = pytest.importorskip("segmentation_models_pytorch.losses")
    logits, target, _, _ = ref.build((mode, (6, 5), {}), seed=4)
    x, y, _ = ref.as_torch(logits, target, None)
    peer = smp_losses.TverskyLoss(mode, smooth=1.0, alpha=0.3, beta=0.7)
    torch.testing.assert_close(tversky_loss(x, y, mode=mode, batch=True), peer(x, y),
                               rtol=1e-10, atol=1e-12)
