"""Jaccard loss: reference values, hand-computed cases, the Dice identity, peers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import seglosses
from seglosses.functional import dice_loss, jaccard_loss
from tests.reference import np_region as ref

# p = [[0.9, 0.2], [0.6, 0.1]] against t = [[1, 0], [1, 0]]
P = torch.tensor([[[[0.9, 0.2], [0.6, 0.1]]]], dtype=torch.float64)
T = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]], dtype=torch.float64)


@pytest.mark.parametrize("case", ref.CASES, ids=ref.case_id)
def test_reference_values(case):
    logits, target, mask, kw = ref.build(case)
    x, y, m = ref.as_torch(logits, target, mask)
    got = jaccard_loss(x, y, m, smooth=0.5, **kw)
    want = ref.jaccard(logits, target, mask, smooth=0.5, **kw)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-12)


def test_hand_computed():
    # TP = 0.9 + 0.6 = 1.5, FP = 0.2 + 0.1 = 0.3, FN = 0.1 + 0.4 = 0.5
    # J = (1.5 + 1) / (1.5 + 0.3 + 0.5 + 1) = 2.5 / 3.3
    got = jaccard_loss(P, T, from_logits=False)
    assert got.item() == pytest.approx(1 - 2.5 / 3.3, rel=1e-12)
    # smooth = 0: 1 - 1.5 / 2.3
    got = jaccard_loss(P, T, from_logits=False, smooth=0.0)
    assert got.item() == pytest.approx(1 - 1.5 / 2.3, rel=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_dice_identity_on_hard_masks(seed):
    """J = D / (2 - D) between the Jaccard and Dice scores on hard masks with smooth = 0."""
    g = torch.Generator().manual_seed(seed)
    pred = (torch.rand(3, 2, 6, 5, generator=g) > 0.5).double()
    target = (torch.rand(3, 2, 6, 5, generator=g) > 0.4).double()
    target[:, :, 0, 0] = 1.0
    kw = dict(mode="multilabel", from_logits=False, smooth=0.0, reduction="none")
    # one channel at a time so that the per-channel identity is checked, not a mean of it
    for c in range(2):
        d = 1 - dice_loss(pred[:, c:c + 1], target[:, c:c + 1], **kw)
        j = 1 - jaccard_loss(pred[:, c:c + 1], target[:, c:c + 1], **kw)
        torch.testing.assert_close(j, d / (2 - d), rtol=1e-12, atol=1e-12)


def test_edge_cases():
    kw = dict(from_logits=False, reduction="none")
    empty = torch.zeros(1, 1, 3, 4, dtype=torch.float64)
    full = torch.ones(1, 1, 3, 4, dtype=torch.float64)
    # empty target predicted empty and full target predicted full: perfect, 0
    assert jaccard_loss(empty, empty, **kw).item() == 0.0
    assert jaccard_loss(full, full, **kw).item() == 0.0
    # all wrong (12 voxels): TP = 0, FP + FN = 12 -> 1 - 1 / 13
    assert jaccard_loss(full, empty, **kw).item() == pytest.approx(12 / 13)
    # batch pooling gives one value
    two = torch.cat([full, empty]), torch.cat([full, full])
    pooled = jaccard_loss(*two, batch=True, **kw)
    assert pooled.shape == (1,)
    assert pooled.item() == pytest.approx(1 - 13 / 25)


def test_errors():
    with pytest.raises(ValueError, match="smooth"):
        jaccard_loss(P, T, smooth=-1.0)
    with pytest.raises(TypeError, match="smooth"):
        jaccard_loss(P, T, smooth="1")


@pytest.mark.parametrize("mode", ["binary", "multilabel", "multiclass"])
@pytest.mark.parametrize("batch", [False, True])
def test_matches_monai(mode, batch):
    monai_losses = pytest.importorskip("monai.losses")
    logits, target, _, kw = ref.build((mode, (6, 5), {}), seed=3)
    x, y, _ = ref.as_torch(logits, target, None)
    s = 0.7
    # MONAI's Jaccard form is 1 - (2I + s_nr) / (2U + s_dr): our s is half of theirs
    peer = monai_losses.DiceLoss(jaccard=True, smooth_nr=2 * s, smooth_dr=2 * s,
                                 sigmoid=mode != "multiclass", softmax=mode == "multiclass",
                                 to_onehot_y=mode == "multiclass", batch=batch)
    want = peer(x, y.unsqueeze(1) if mode == "multiclass" else y)
    got = jaccard_loss(x, y, mode=mode, smooth=s, batch=batch)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mode", ["binary", "multilabel", "multiclass"])
def test_matches_smp(mode):
    """smp pools over the batch: equal to ``batch=True`` when every channel has foreground."""
    smp_losses = pytest.importorskip("segmentation_models_pytorch.losses")
    logits, target, _, kw = ref.build((mode, (6, 5), {}), seed=4)
    x, y, _ = ref.as_torch(logits, target, None)
    peer = smp_losses.JaccardLoss(mode, smooth=0.5)
    got = jaccard_loss(x, y, mode=mode, smooth=0.5, batch=True)
    torch.testing.assert_close(got, peer(x, y), rtol=1e-10, atol=1e-12)


def test_module_registered():
    loss = seglosses.get_loss("jaccard", smooth=0.5)
    assert isinstance(loss, seglosses.JaccardLoss)
    torch.testing.assert_close(loss(P.logit(), T), jaccard_loss(P.logit(), T, smooth=0.5))
