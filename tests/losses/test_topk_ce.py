"""Top-k cross-entropy: reference values, selection size, masks, identities, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from seglosses import functional as SF
from tests.reference import np_pixel as ref
from tests.reference import scalar as S

CASES = [pytest.param(*row[1:], id=row[0]) for row in ref.STANDARD_CASES]


@pytest.mark.parametrize("k", [0.1, 0.37])
@pytest.mark.parametrize("mode,ndim,option", CASES)
def test_reference_values(mode, ndim, option, k):
    logits, target, mask, kw = ref.build_case(mode, ndim, option)
    ref.assert_matches_reference(SF.topk_ce_loss, ref.topk_ce, logits, target, mask, k=k, **kw)


def test_hand_computed():
    # per-voxel CE: softplus(-2), softplus(-1), softplus(-0.5), softplus(-3) for t = (1, 0, 1, 0)
    # (0.127, 0.313, 0.474, 0.049); k = 0.5 keeps the two largest, 0.474 and 0.313
    logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]], dtype=torch.float64)
    target = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]], dtype=torch.float64)
    expected = (S.softplus(-0.5) + S.softplus(-1.0)) / 2
    assert SF.topk_ce_loss(logits, target, k=0.5).item() == pytest.approx(expected, rel=1e-12)
    # ceil(0.3 * 4) = 2 as well; k = 0.1 keeps at least one voxel
    assert SF.topk_ce_loss(logits, target, k=0.3).item() == pytest.approx(expected, rel=1e-12)
    assert SF.topk_ce_loss(logits, target, k=0.1).item() == \
        pytest.approx(S.softplus(-0.5), rel=1e-12)


def test_selection_size_ignores_float_noise():
    """k = 0.07 of 100 voxels keeps 7 (0.07 * 100 = 7.000000000000001 in floating point)."""
    assert 0.07 * 100 > 7
    x = torch.linspace(-3.0, 3.0, 100, dtype=torch.float64).view(1, 1, 100)
    t = torch.zeros_like(x)  # CE = softplus(x), increasing in x
    ce = torch.nn.functional.softplus(x)
    assert SF.topk_ce_loss(x, t, k=0.07).item() == pytest.approx(ce[..., -7:].mean().item(),
                                                                  rel=1e-12)


def test_masked_voxels_are_never_selected():
    """The worst voxel is masked: it is not a candidate, not counted in N, gets no gradient."""
    x = torch.tensor([[[0.0, 1.0, 2.0, 3.0, 20.0]]], dtype=torch.float64, requires_grad=True)
    t = torch.zeros_like(x)
    mask = torch.tensor([[[True, True, True, True, False]]])
    value = SF.topk_ce_loss(x, t, mask, k=0.5)  # N = 4 -> the two largest of the first four
    ce = torch.nn.functional.softplus(x.detach())
    assert value.item() == pytest.approx(((ce[0, 0, 2] + ce[0, 0, 3]) / 2).item(), rel=1e-12)
    value.backward()
    assert x.grad[0, 0, 4] == 0 and x.grad[0, 0, 0] == 0 and x.grad[0, 0, 1] == 0
    assert x.grad[0, 0, 3] > 0


def test_ignore_index_excluded_from_candidates():
    x = torch.tensor([[[5.0, 0.0, 0.0], [-5.0, 0.0, 1.0]]], dtype=torch.float64)
    y = torch.tensor([[1, 0, 255]])  # voxel 0 is badly wrong (CE ~10) and voxel 2 is ignored
    got = SF.topk_ce_loss(x, y, ignore_index=255, k=0.5)  # N = 2 -> keep 1
    ce0 = torch.logsumexp(x[0, :, 0], 0) - x[0, 1, 0]
    assert got.item() == pytest.approx(ce0.item(), rel=1e-12)


@pytest.mark.parametrize("mode", ["binary", "multilabel", "multiclass"])
def test_k_one_is_bce(mode):
    logits, target, mask, kw = ref.build_case(mode, 2, "mask")
    x, t, m = (torch.from_numpy(np.ascontiguousarray(a)) for a in (logits, target, mask))
    torch.testing.assert_close(SF.topk_ce_loss(x, t, m, k=1.0, reduction="none", **kw),
                               SF.bce_loss(x, t, m, reduction="none", **kw))


def test_edge_cases():
    x = torch.randn(2, 1, 3, 4, dtype=torch.float64, requires_grad=True)
    t = (torch.rand(2, 1, 3, 4) > 0.5).double()
    mask = torch.zeros(2, 1, 3, 4, dtype=torch.bool)
    mask[0] = True
    value = SF.topk_ce_loss(x, t, mask, reduction="none")
    assert value[1] == 0  # no valid voxel: 0, not a division by zero
    value.sum().backward()
    assert torch.all(x.grad[1] == 0) and torch.isfinite(x.grad).all()
    # ties at a perfect prediction: value is the common CE value
    perfect = (2 * t - 1) * 40
    assert SF.topk_ce_loss(perfect, t).item() == pytest.approx(math.log1p(math.exp(-40)),
                                                               rel=1e-9)


def test_errors():
    x, t = torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)
    for k in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match=rf"`k` must lie in \(0.0, 1.0\]; got {k}"):
            SF.topk_ce_loss(x, t, k=k)
    with pytest.raises(TypeError, match="`k` must be a number"):
        SF.topk_ce_loss(x, t, k="10%")
