"""Dice + top-k cross-entropy: reference values, sum of parts, errors."""

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
    ref.assert_matches_reference(SF.dice_topk_loss, ref.dice_topk, logits, target, mask,
                                 lambda_dice=0.5, lambda_topk=2.0, smooth=1e-3, k=0.3, **kw)


def test_hand_computed():
    import math

    p = [1 / (1 + math.exp(-v)) for v in (2.0, -1.0, 0.5, -3.0)]
    dice = 1 - (2 * (p[0] + p[2]) + 1) / (sum(p) + 2 + 1)
    ce = sorted([-math.log(p[0]), -math.log(1 - p[1]), -math.log(p[2]), -math.log(1 - p[3])])
    logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]], dtype=torch.float64)
    target = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]], dtype=torch.float64)
    expected = dice + (ce[-1] + ce[-2]) / 2  # k = 0.5 of 4 voxels: the two largest
    assert SF.dice_topk_loss(logits, target, k=0.5).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("mode", ["binary", "multilabel", "multiclass"])
def test_equals_weighted_sum_of_parts(mode):
    logits, target, mask, kw = ref.build_case(mode, 3, "ignore_mask_weights"
                                              if mode == "multiclass" else "mask")
    x, t, m = (torch.from_numpy(np.ascontiguousarray(a)) for a in (logits, target, mask))
    x1 = x.clone().requires_grad_(True)
    x2 = x.clone().requires_grad_(True)
    got = SF.dice_topk_loss(x1, t, m, lambda_dice=2.0, lambda_topk=0.25, k=0.2, smooth=0.0, **kw)
    parts = 2.0 * SF.dice_loss(x2, t, m, smooth=0.0, **kw) + \
        0.25 * SF.topk_ce_loss(x2, t, m, k=0.2, **kw)
    torch.testing.assert_close(got, parts, rtol=1e-12, atol=1e-14)
    got.backward()
    parts.backward()
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-10, atol=1e-14)
    # the defaults are those of the parts
    torch.testing.assert_close(SF.dice_topk_loss(x, t, m, **kw),
                               SF.dice_loss(x, t, m, **kw) + SF.topk_ce_loss(x, t, m, **kw),
                               rtol=1e-12, atol=1e-14)


def test_errors():
    x, t = torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)
    with pytest.raises(ValueError, match=r"`lambda_topk` must lie in \[0.0, inf\]; got -1"):
        SF.dice_topk_loss(x, t, lambda_topk=-1)
    with pytest.raises(ValueError, match=r"`k` must lie in \(0.0, 1.0\]; got 0"):
        SF.dice_topk_loss(x, t, k=0)
    with pytest.raises(ValueError, match=r"`smooth` must lie"):
        SF.dice_topk_loss(x, t, smooth=-1.0)
