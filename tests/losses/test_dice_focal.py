"""Dice + focal loss: reference values, sum of parts, MONAI DiceFocalLoss, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seglosses import functional as SF
from tests.reference import np_pixel as ref

CASES = [pytest.param(*row[1:], id=row[0]) for row in ref.STANDARD_CASES]


@pytest.mark.parametrize("mode,ndim,option", CASES)
def test_reference_values(mode, ndim, option):
    logits, target, mask, kw = ref.build_case(mode, ndim, option)
    ref.assert_matches_reference(SF.dice_focal_loss, ref.dice_focal, logits, target, mask,
                                 lambda_dice=1.5, lambda_focal=0.5, smooth=2.0, alpha=0.6,
                                 gamma=1.5, **kw)


def test_hand_computed():
    import math

    p = [1 / (1 + math.exp(-v)) for v in (2.0, -1.0, 0.5, -3.0)]
    dice = 1 - (2 * (p[0] + p[2]) + 1) / (sum(p) + 2 + 1)
    focal = (0.25 * (1 - p[0]) ** 2 * -math.log(p[0]) + 0.75 * p[1] ** 2 * -math.log(1 - p[1])
             + 0.25 * (1 - p[2]) ** 2 * -math.log(p[2])
             + 0.75 * p[3] ** 2 * -math.log(1 - p[3])) / 4
    logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]], dtype=torch.float64)
    target = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]], dtype=torch.float64)
    assert SF.dice_focal_loss(logits, target).item() == pytest.approx(dice + focal, rel=1e-12)


@pytest.mark.parametrize("mode", ["binary", "multilabel", "multiclass"])
def test_equals_weighted_sum_of_parts(mode):
    logits, target, mask, kw = ref.build_case(mode, 2, "ignore_mask_weights"
                                              if mode == "multiclass" else "mask")
    x, t, m = (torch.from_numpy(np.ascontiguousarray(a)) for a in (logits, target, mask))
    got = SF.dice_focal_loss(x, t, m, lambda_dice=0.4, lambda_focal=3.0, alpha=None, gamma=0.5,
                             reduction="none", **kw)
    parts = 0.4 * SF.dice_loss(x, t, m, reduction="none", **kw) + \
        3.0 * SF.focal_loss(x, t, m, alpha=None, gamma=0.5, reduction="none", **kw)
    torch.testing.assert_close(got, parts, rtol=1e-12, atol=1e-14)
    # the defaults are those of the parts
    torch.testing.assert_close(SF.dice_focal_loss(x, t, m, **kw),
                               SF.dice_loss(x, t, m, **kw) + SF.focal_loss(x, t, m, **kw),
                               rtol=1e-12, atol=1e-14)


def test_matches_monai():
    losses = pytest.importorskip("monai.losses", reason="MONAI not installed")
    logits, target = ref.random_case("binary", 2, seed=14)
    x, t = torch.from_numpy(logits), torch.from_numpy(target)
    peer = losses.DiceFocalLoss(sigmoid=True, smooth_nr=1.0, smooth_dr=1.0, gamma=2.0,
                                alpha=0.25, lambda_focal=0.5)
    got = SF.dice_focal_loss(x, t, lambda_focal=0.5)
    torch.testing.assert_close(got, peer(x, t).to(got.dtype), rtol=1e-6, atol=1e-8)


def test_monai_multiclass_uses_a_sigmoid_focal_term():
    """Documented difference: MONAI's DiceFocalLoss(softmax=True) builds its focal term without
    softmax, i.e. the per-channel sigmoid focal loss of the one-hot target; ours is the softmax
    focal loss. MONAI's value is our multiclass Dice plus our multilabel focal term."""
    losses = pytest.importorskip("monai.losses", reason="MONAI not installed")
    logits, labels = ref.random_case("multiclass", 2, seed=15)
    x, y = torch.from_numpy(logits), torch.from_numpy(labels)
    onehot = torch.nn.functional.one_hot(y, 3).movedim(-1, 1).double()
    peer = losses.DiceFocalLoss(softmax=True, to_onehot_y=True, smooth_nr=1.0, smooth_dr=1.0,
                                gamma=2.0, alpha=0.25)
    expected = SF.dice_loss(x, y) + SF.focal_loss(x, onehot, mode="multilabel")
    torch.testing.assert_close(peer(x, y.unsqueeze(1)).double(), expected, rtol=1e-6, atol=1e-8)
    assert not torch.allclose(SF.dice_focal_loss(x, y), expected)


def test_errors():
    x, t = torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)
    with pytest.raises(ValueError, match=r"`lambda_focal` must lie in \[0.0, inf\]; got -1"):
        SF.dice_focal_loss(x, t, lambda_focal=-1)
    with pytest.raises(ValueError, match=r"`alpha` must lie in \[0.0, 1.0\]; got 2.0"):
        SF.dice_focal_loss(x, t, alpha=2.0)
    with pytest.raises(ValueError, match=r"`gamma` must lie in \[0.0, inf\]; got -0.5"):
        SF.dice_focal_loss(x, t, gamma=-0.5)
    with pytest.raises(ValueError, match=r"`smooth` must lie"):
        SF.dice_focal_loss(x, t, smooth=-1.0)
