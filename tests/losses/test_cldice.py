"""Soft clDice (Shit et al. 2021): soft skeleton, reference values, masks, MONAI."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seglosses.functional import cldice_loss
from seglosses.losses.region.cldice import soft_dilate, soft_erode, soft_skeleton
from tests.reference import np_region as ref


@pytest.mark.parametrize("case", ref.CASES, ids=ref.case_id)
def test_reference_values(case):
    logits, target, mask, kw = ref.build(case, seed=10, drop=("batch",))
    x, y, m = ref.as_torch(logits, target, mask)
    got = cldice_loss(x, y, m, iterations=2, smooth=0.5, **kw)
    want = ref.cldice(logits, target, mask, iterations=2, smooth=0.5, **kw)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("shape", [(9,), (6, 7), (4, 5, 3)])
def test_morphology_matches_reference(shape):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 1, *shape, generator=g, dtype=torch.float64)
    a = x[0, 0].numpy()
    np.testing.assert_allclose(soft_erode(x)[0, 0].numpy(), ref.erode(a))
    np.testing.assert_allclose(soft_dilate(x)[0, 0].numpy(), ref.dilate(a))
    np.testing.assert_allclose(soft_skeleton(x, 3)[0, 0].numpy(), ref.skeleton(a, 3))


def test_skeleton_of_a_bar_is_thin():
    bar = torch.zeros(1, 1, 9, 11, dtype=torch.float64)
    bar[..., 3:6, 1:10] = 1.0  # a 3-wide horizontal bar
    skel = soft_skeleton(bar, 3)
    assert ((skel >= 0) & (skel <= 1)).all()
    assert torch.all(skel[bar == 0] == 0), "the skeleton lies inside the mask"
    # the centre line survives, the rows above and below it do not
    assert torch.all(skel[0, 0, 4, 2:9] == 1)
    assert torch.all(skel[0, 0, 3, 2:9] == 0) and torch.all(skel[0, 0, 5, 2:9] == 0)


def test_hand_computed():
    # A one-pixel-wide vertical line is its own skeleton (its erosion is empty).
    t = torch.tensor([[[[0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 1.0, 0.0]]]], dtype=torch.float64)
    assert cldice_loss(t, t, from_logits=False).item() == 0.0
    # p = 0.5 on the line: S_p = p, Tprec = (1.5 + 1) / (1.5 + 1) = 1,
    # Tsens = (sum S_t p + 1) / (sum S_t + 1) = 2.5 / 4, L = 1 - 2 * 0.625 / 1.625 = 3 / 13
    assert cldice_loss(0.5 * t, t, from_logits=False).item() == pytest.approx(3 / 13, rel=1e-12)


def test_mask_reads_as_background():
    """With a mask, the loss equals the unmasked loss on p and t set to 0 outside the mask."""
    g = torch.Generator().manual_seed(3)
    p = torch.rand(2, 1, 7, 6, generator=g, dtype=torch.float64)
    t = (torch.rand(2, 1, 7, 6, generator=g) > 0.5).double()
    mask = torch.rand(2, 1, 7, 6, generator=g) > 0.25
    masked = cldice_loss(p, t, mask, from_logits=False, reduction="none")
    zeroed = cldice_loss(p * mask, t * mask, from_logits=False, reduction="none")
    torch.testing.assert_close(masked, zeroed, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("ndim", [1, 3])
def test_gradcheck(ndim):
    g = torch.Generator().manual_seed(4)
    shape = {1: (9,), 3: (3, 4, 3)}[ndim]
    x = torch.randn(2, 1, *shape, generator=g, dtype=torch.float64, requires_grad=True)
    y = (torch.rand(2, 1, *shape, generator=g) > 0.5).double()
    mask = torch.rand(2, 1, *shape, generator=g) > 0.2
    assert torch.autograd.gradcheck(lambda z: cldice_loss(z, y, mask, iterations=2), (x,),
                                    eps=1e-6, atol=1e-5, rtol=1e-4)


def test_errors():
    x, y = torch.randn(1, 1, 5), torch.ones(1, 1, 5)
    with pytest.raises(ValueError, match="iterations"):
        cldice_loss(x, y, iterations=-1)
    with pytest.raises(TypeError, match="iterations"):
        cldice_loss(x, y, iterations=2.0)
    with pytest.raises(ValueError, match="smooth"):
        cldice_loss(x, y, smooth=-1.0)


@pytest.mark.parametrize("shape", [(8, 7), (5, 6, 4)])
def test_matches_monai(shape):
    """MONAI's SoftclDiceLoss with a negligible smoothing of its harmonic mean, C = 1."""
    monai_losses = pytest.importorskip("monai.losses")
    g = torch.Generator().manual_seed(5)
    x = torch.randn(3, 1, *shape, generator=g, dtype=torch.float64) * 2
    y = (torch.rand(3, 1, *shape, generator=g) > 0.6).double()
    peer = monai_losses.SoftclDiceLoss(iter_=3, smooth_nr=1.0, smooth_dr=1.0, smooth=1e-12,
                                       sigmoid=True, reduction="none")
    torch.testing.assert_close(cldice_loss(x, y, reduction="none"), peer(x, y),
                               rtol=1e-9, atol=1e-12)
