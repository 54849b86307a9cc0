"""Binary / categorical cross-entropy: reference values, hand cases, torch built-ins."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from seglosses import functional as SF
from tests.reference import np_pixel as ref

CASES = [pytest.param(*row[1:], id=row[0]) for row in ref.STANDARD_CASES]


@pytest.mark.parametrize("mode,ndim,option", CASES)
def test_reference_values(mode, ndim, option):
    logits, target, mask, kw = ref.build_case(mode, ndim, option)
    ref.assert_matches_reference(SF.bce_loss, ref.bce, logits, target, mask, **kw)


def test_hand_computed():
    # p = sigmoid(2, -1, 0.5, -3); t = (1, 0, 1, 0)
    # l = -ln sigmoid(2), -ln sigmoid(1), -ln sigmoid(0.5), -ln sigmoid(3)
    # (using 1 - sigmoid(x) = sigmoid(-x)), and -ln sigmoid(x) = log1p(exp(-x))
    terms = [math.log1p(math.exp(-2.0)), math.log1p(math.exp(-1.0)),
             math.log1p(math.exp(-0.5)), math.log1p(math.exp(-3.0))]
    logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]], dtype=torch.float64)
    target = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]], dtype=torch.float64)
    assert SF.bce_loss(logits, target).item() == pytest.approx(sum(terms) / 4, rel=1e-12)
    # multiclass 4x1: logits (0, ln 3) give p = (1/4, 3/4); labels (1, 0, 1, 1)
    x = torch.tensor([0.0, math.log(3.0)], dtype=torch.float64).view(1, 2, 1).expand(1, 2, 4)
    labels = torch.tensor([[1, 0, 1, 1]])
    expected = (3 * -math.log(0.75) - math.log(0.25)) / 4
    assert SF.bce_loss(x, labels).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("mode", ["binary", "multilabel"])
def test_matches_torch_bce_with_logits(mode):
    logits, target = ref.random_case(mode, 2, seed=3, soft=True)
    x, t = torch.from_numpy(logits), torch.from_numpy(target)
    expected = F.binary_cross_entropy_with_logits(x, t, reduction="none").flatten(1).mean(1)
    torch.testing.assert_close(SF.bce_loss(x, t, mode=mode, reduction="none"), expected)


def test_matches_torch_cross_entropy():
    logits, labels = ref.random_case("multiclass", 3, seed=4)
    labels = np.where(np.random.default_rng(0).random(labels.shape) < 0.2, -100, labels)
    x, y = torch.from_numpy(logits), torch.from_numpy(labels)
    w = torch.tensor([0.3, 1.0, 2.5], dtype=torch.float64)
    per_voxel = F.cross_entropy(x, y, weight=w, ignore_index=-100, reduction="none")
    valid = (y != -100).flatten(1)
    expected = per_voxel.flatten(1).sum(1) / valid.sum(1)
    got = SF.bce_loss(x, y, ignore_index=-100, class_weights=w, reduction="none")
    torch.testing.assert_close(got, expected)


def test_edge_cases():
    target = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
    perfect = (2 * target - 1) * 30
    assert SF.bce_loss(perfect, target).item() == pytest.approx(0.0, abs=1e-12)
    # a sample whose voxels are all masked gives 0; the other sample is unaffected
    logits = torch.randn(2, 1, 2, 2)
    t2 = target.expand(2, 1, 2, 2)
    mask = torch.tensor([True, False]).view(2, 1, 1, 1).expand(2, 1, 2, 2)
    none = SF.bce_loss(logits, t2, mask, reduction="none")
    assert none[1] == 0
    assert none[0] == SF.bce_loss(logits[:1], t2[:1], reduction="none")[0]
    # probabilities 0 and 1 exactly are clamped to [1e-7, 1 - 1e-7]
    probs = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]], dtype=torch.float64, requires_grad=True)
    value = SF.bce_loss(probs, target.double(), from_logits=False)
    value.backward()
    assert value.item() == pytest.approx(-math.log(1e-7) / 2, rel=1e-8)
    assert torch.isfinite(probs.grad).all()
