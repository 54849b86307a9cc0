"""Weighted BCE: reference values, hand cases, the automatic beta, identities, errors."""

from __future__ import annotations

import math

import pytest
import torch

import seglosses
from seglosses import functional as SF
from tests.reference import np_pixel as ref
from tests.reference import scalar as S

CASES = [pytest.param(*row[1:], id=row[0]) for row in ref.STANDARD_CASES]


@pytest.mark.parametrize("beta", [None, 0.2], ids=["auto", "beta0.2"])
@pytest.mark.parametrize("mode,ndim,option", CASES)
def test_reference_values(mode, ndim, option, beta):
    logits, target, mask, kw = ref.build_case(mode, ndim, option)
    ref.assert_matches_reference(SF.weighted_bce_loss, ref.weighted_bce, logits, target, mask,
                                 beta=beta, **kw)


def test_hand_computed():
    # p = sigmoid(2, -1, 0.5, -3), t = (1, 0, 1, 0); -log p = softplus(-x), -log(1-p) = softplus(x)
    logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]], dtype=torch.float64)
    target = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]], dtype=torch.float64)
    pos = S.softplus(-2.0) + S.softplus(-0.5)
    neg = S.softplus(-1.0) + S.softplus(-3.0)
    assert SF.weighted_bce_loss(logits, target, beta=3.0).item() == \
        pytest.approx((3 * pos + neg) / 4, rel=1e-12)
    # automatic beta: one positive among four voxels gives beta = 3
    t1 = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]], dtype=torch.float64)
    expected = (3 * S.softplus(-2.0) + S.softplus(-1.0) + S.softplus(0.5) + S.softplus(-3.0)) / 4
    assert SF.weighted_bce_loss(logits, t1).item() == pytest.approx(expected, rel=1e-12)


def test_auto_beta_pools_the_batch():
    """beta = N_neg / N_pos of the whole batch: sample 0 changes when sample 1's target does."""
    logits = torch.zeros(2, 1, 2, 2, dtype=torch.float64)
    target = torch.tensor([[1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0]],
                          dtype=torch.float64).view(2, 1, 2, 2)
    # batch: 3 positives, 5 negatives -> beta = 5/3; every voxel has -log p = -log(1-p) = ln 2
    got = SF.weighted_bce_loss(logits, target, reduction="none")
    ln2 = math.log(2.0)
    torch.testing.assert_close(got, torch.tensor([(5 / 3 + 3) * ln2 / 4, (2 * 5 / 3 + 2) * ln2 / 4],
                                                 dtype=torch.float64))
    alone = SF.weighted_bce_loss(logits[:1], target[:1], reduction="none")
    assert alone.item() == pytest.approx((3 + 3) * ln2 / 4, rel=1e-12)
    assert seglosses.loss_info("weighted_bce").batch_dependent


def test_auto_beta_is_detached():
    """beta reads the target only and carries no gradient, even for a target that has one."""
    logits = torch.randn(2, 1, 3, 5, dtype=torch.float64)
    target = torch.rand(2, 1, 3, 5, dtype=torch.float64).requires_grad_(True)
    SF.weighted_bce_loss(logits, target).backward()
    n_pos = target.detach().sum()
    fixed = (target.numel() - n_pos) / n_pos
    t2 = target.detach().clone().requires_grad_(True)
    SF.weighted_bce_loss(logits, t2, beta=float(fixed)).backward()
    torch.testing.assert_close(target.grad, t2.grad)


def test_edge_cases():
    logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]], dtype=torch.float64, requires_grad=True)
    # no positive voxel: beta is clamped at 1e3 (and multiplies zeros) - finite, plain BCE value
    empty = torch.zeros(1, 1, 2, 2, dtype=torch.float64)
    value = SF.weighted_bce_loss(logits, empty)
    value.backward()
    assert torch.isfinite(logits.grad).all()
    assert value.item() == pytest.approx(SF.bce_loss(logits, empty).item(), rel=1e-12)
    # no negative voxel: N_neg / N_pos = 0 is clamped to 1e-3
    full = torch.ones(1, 1, 2, 2, dtype=torch.float64)
    expected = 1e-3 * SF.bce_loss(logits, full).item()
    assert SF.weighted_bce_loss(logits, full).item() == pytest.approx(expected, rel=1e-12)
    # a huge imbalance is clamped at 1e3
    x = torch.zeros(1, 1, 100, 20, dtype=torch.float64)
    t = torch.zeros_like(x)
    t[0, 0, 0, 0] = 1.0  # N_neg / N_pos = 1999
    ln2 = math.log(2.0)
    assert SF.weighted_bce_loss(x, t).item() == pytest.approx((1e3 + 1999) * ln2 / 2000, rel=1e-12)


@pytest.mark.parametrize("mode", ["binary", "multilabel", "multiclass"])
def test_beta_one_is_bce(mode):
    logits, target = ref.random_case(mode, 2, seed=5)
    x, t = torch.from_numpy(logits), torch.from_numpy(target)
    if mode == "multiclass":
        # multiclass is one-vs-rest: the per-channel BCE of the softmax output
        onehot = torch.nn.functional.one_hot(t, 3).movedim(-1, 1).double()
        expected = SF.bce_loss(torch.softmax(x, 1), onehot, mode="multilabel", from_logits=False)
        torch.testing.assert_close(SF.weighted_bce_loss(x, t, beta=1.0), expected)
    else:
        torch.testing.assert_close(SF.weighted_bce_loss(x, t, beta=1.0), SF.bce_loss(x, t))


def test_multiclass_is_one_vs_rest_per_class():
    """Multiclass == multilabel on the softmax probabilities and the one-hot target."""
    logits, labels = ref.random_case("multiclass", 2, seed=6, scale=1.0)
    x, y = torch.from_numpy(logits), torch.from_numpy(labels)
    onehot = torch.nn.functional.one_hot(y, 3).movedim(-1, 1).double()
    got = SF.weighted_bce_loss(x, y, reduction="none")
    expected = SF.weighted_bce_loss(torch.softmax(x, 1), onehot, mode="multilabel",
                                    from_logits=False, reduction="none")
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-9)


def test_errors():
    x, t = torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)
    with pytest.raises(ValueError, match=r"`beta` must lie in \[0.0, inf\]; got -1.0"):
        SF.weighted_bce_loss(x, t, beta=-1.0)
    with pytest.raises(TypeError, match="`beta` must be a number; got str"):
        seglosses.get_loss("weighted_bce", beta="auto")(x, t)
