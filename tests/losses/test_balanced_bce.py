"""Balanced BCE: reference values, hand cases, empty and full targets."""

from __future__ import annotations

import pytest
import torch

import seglosses
from seglosses import functional as SF
from tests.reference import np_pixel as ref
from tests.reference import scalar as S

CASES = [pytest.param(*row[1:], id=row[0]) for row in ref.STANDARD_CASES]


@pytest.mark.parametrize("mode,ndim,option", CASES)
def test_reference_values(mode, ndim, option):
    logits, target, mask, kw = ref.build_case(mode, ndim, option)
    ref.assert_matches_reference(SF.balanced_bce_loss, ref.balanced_bce, logits, target, mask,
                                 **kw)


def test_hand_computed():
    # t = (1, 0, 0, 0): beta = 1 - 1/4 = 3/4; positives weigh 3/4, negatives 1/4
    logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]], dtype=torch.float64)
    target = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]], dtype=torch.float64)
    expected = (0.75 * S.softplus(-2.0)
                + 0.25 * (S.softplus(-1.0) + S.softplus(0.5) + S.softplus(-3.0))) / 4
    assert SF.balanced_bce_loss(logits, target).item() == pytest.approx(expected, rel=1e-12)
    # beta is per sample: the second sample (half positive) has beta = 1/2
    x2 = logits.expand(2, 1, 2, 2)
    t2 = torch.cat([target, torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]]], dtype=torch.float64)])
    half = 0.5 * (S.softplus(-2.0) + S.softplus(1.0) + S.softplus(0.5) + S.softplus(-3.0)) / 4
    torch.testing.assert_close(SF.balanced_bce_loss(x2, t2, reduction="none"),
                               torch.tensor([expected, half], dtype=torch.float64))


def test_mask_changes_beta():
    """beta counts valid voxels only: masking two negatives changes it from 3/4 to 1/2."""
    logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]], dtype=torch.float64)
    target = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]], dtype=torch.float64)
    mask = torch.tensor([[[[True, True], [False, False]]]])
    expected = 0.5 * (S.softplus(-2.0) + S.softplus(-1.0)) / 2
    assert SF.balanced_bce_loss(logits, target, mask).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("fill", [0.0, 1.0], ids=["empty", "full"])
def test_edge_cases(fill):
    """An empty (beta = 1) or full (beta = 0) target leaves a zero-weighted term only."""
    logits = torch.randn(1, 1, 3, 5, dtype=torch.float64, requires_grad=True)
    target = torch.full((1, 1, 3, 5), fill, dtype=torch.float64)
    value = SF.balanced_bce_loss(logits, target)
    value.backward()
    assert value.item() == 0.0
    assert torch.all(logits.grad == 0)


def test_errors():
    with pytest.raises(TypeError, match="balanced_bce"):
        seglosses.get_loss("balanced_bce", beta=0.5)
