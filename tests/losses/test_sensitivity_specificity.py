"""Sensitivity-specificity loss (Brosch et al. 2015): reference values and hand cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seglosses.functional import sensitivity_specificity_loss
from tests.reference import np_region as ref

P = torch.tensor([[[[0.9, 0.2], [0.6, 0.1]]]], dtype=torch.float64)
T = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]], dtype=torch.float64)


@pytest.mark.parametrize("case", ref.CASES, ids=ref.case_id)
def test_reference_values(case):
    logits, target, mask, kw = ref.build(case, seed=4, drop=("batch",))
    x, y, m = ref.as_torch(logits, target, mask)
    got = sensitivity_specificity_loss(x, y, m, w=0.3, smooth=1e-3, **kw)
    want = ref.sensitivity_specificity(logits, target, mask, w=0.3, smooth=1e-3, **kw)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-12)


def test_hand_computed():
    # foreground errors (1 - 0.9)^2 + (1 - 0.6)^2 = 0.17 over sum t = 2
    # background errors 0.2^2 + 0.1^2 = 0.05 over sum (1 - t) = 2
    s = 1e-5
    want = 0.05 * 0.17 / (2 + s) + 0.95 * 0.05 / (2 + s)
    got = sensitivity_specificity_loss(P, T, from_logits=False)
    assert got.item() == pytest.approx(want, rel=1e-12)
    # w = 1 keeps only the miss rate, w = 0 only the false-alarm rate
    assert sensitivity_specificity_loss(P, T, from_logits=False, w=1.0).item() == \
        pytest.approx(0.17 / (2 + s), rel=1e-12)
    assert sensitivity_specificity_loss(P, T, from_logits=False, w=0.0).item() == \
        pytest.approx(0.05 / (2 + s), rel=1e-12)


def test_edge_cases():
    kw = dict(from_logits=False, reduction="none")
    empty = torch.zeros(1, 1, 3, 3, dtype=torch.float64)
    full = torch.ones(1, 1, 3, 3, dtype=torch.float64)
    # perfect predictions of empty and full targets: 0
    assert sensitivity_specificity_loss(empty, empty, **kw).item() == 0.0
    assert sensitivity_specificity_loss(full, full, **kw).item() == 0.0
    # everything predicted on an empty target: only the specificity term, 9 / (9 + s)
    value = sensitivity_specificity_loss(full, empty, **kw).item()
    assert value == pytest.approx(0.95 * 9 / (9 + 1e-5), rel=1e-12)
    # nothing predicted on a full target: only the sensitivity term
    value = sensitivity_specificity_loss(empty, full, **kw).item()
    assert value == pytest.approx(0.05 * 9 / (9 + 1e-5), rel=1e-12)
    # values stay in [0, 1]
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, 5, 5, generator=g, dtype=torch.float64) * 5
    y = (torch.rand(4, 3, 5, 5, generator=g) > 0.7).double()
    v = sensitivity_specificity_loss(x, y, mode="multilabel", reduction="none")
    assert ((v >= 0) & (v <= 1)).all()


def test_errors():
    with pytest.raises(ValueError, match="`w`"):
        sensitivity_specificity_loss(P, T, w=1.5)
    with pytest.raises(ValueError, match="smooth"):
        sensitivity_specificity_loss(P, T, smooth=-1.0)
    with pytest.raises(TypeError, match="`w`"):
        sensitivity_specificity_loss(P, T, w=None)
