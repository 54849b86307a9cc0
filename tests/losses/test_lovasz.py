"""Lovász hinge / Lovász-softmax (Berman et al. 2018): reference values, tightness, peers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seglosses.functional import lovasz_loss
from seglosses.losses.region.lovasz import lovasz_extension_stage
from tests.reference import np_region as ref


@pytest.mark.parametrize("case", ref.CASES, ids=ref.case_id)
def test_reference_values(case):
    logits, target, mask, kw = ref.build(case, seed=7, drop=("batch",))
    x, y, m = ref.as_torch(logits, target, mask)
    got = lovasz_loss(x, y, m, **kw)
    want = ref.lovasz(logits, target, mask, **kw)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("case", [c for c in ref.CASES if c[0] == "multiclass"],
                         ids=ref.case_id)
def test_reference_values_all_classes(case):
    logits, target, mask, kw = ref.build(case, seed=8, drop=("batch",))
    x, y, m = ref.as_torch(logits, target, mask)
    got = lovasz_loss(x, y, m, classes="all", **kw)
    want = ref.lovasz(logits, target, mask, classes="all", **kw)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-12)


def test_hand_computed_hinge():
    # errors max(0, 1 - x (2t - 1)): [0, 0, 0.5, 0]; only the third voxel (a positive) errs.
    # g_1 = Delta_J({3}) = 1 - |gt \ {3}| / |gt u {3}| = 1 - 1/2, so L = 0.5 * 0.5
    logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]], dtype=torch.float64)
    target = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]], dtype=torch.float64)
    assert lovasz_loss(logits, target).item() == pytest.approx(0.25, rel=1e-12)


def test_hand_computed_extension():
    # errors [0.8, 0.3, 0.5] with gt [1, 0, 1], order (0, 2, 1):
    # Delta({0}) = 1 - 1/2, Delta({0, 2}) = 1 - 0/2 = 1, Delta({0, 1, 2}) = 1 - 0/3 = 1
    errors = torch.tensor([[0.8, 0.3, 0.5]], dtype=torch.float64)
    labels = torch.tensor([[1.0, 0.0, 1.0]], dtype=torch.float64)
    got = lovasz_extension_stage(errors, labels, None)
    assert got.item() == pytest.approx(0.8 * 0.5 + 0.5 * 0.5 + 0.3 * 0.0, rel=1e-12)
    # dropping voxel 2 leaves errors [0.8, 0.3], gt [1, 0]: Delta({0}) = Delta({0, 1}) = 1
    valid = torch.tensor([[True, True, False]])
    got = lovasz_extension_stage(errors, labels, valid)
    assert got.item() == pytest.approx(0.8 * 1.0 + 0.3 * 0.0, rel=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_tight_on_hard_predictions(seed):
    """At one-hot predictions the Lovász-softmax equals the mean Jaccard loss 1 - IoU_c."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 4, (2, 6, 5), generator=g)
    pred = torch.randint(0, 4, (2, 6, 5), generator=g)
    probs = torch.nn.functional.one_hot(pred, 4).movedim(-1, 1).double()
    got = lovasz_loss(probs, labels, from_logits=False, reduction="none")
    want = []
    for b in range(2):
        ious = []
        for c in range(4):
            gt, pr = labels[b] == c, pred[b] == c
            if gt.any():
                ious.append((gt & pr).sum().item() / (gt | pr).sum().item())
        want.append(1 - np.mean(ious))
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)


def test_edge_cases():
    # perfect saturated prediction: 0; an image with no valid voxel: 0
    target = torch.tensor([[[1.0, 0.0, 1.0, 1.0]]], dtype=torch.float64)
    assert lovasz_loss((2 * target - 1) * 5, target).item() == 0.0
    mask = torch.zeros(1, 1, 4, dtype=torch.bool)
    logits = torch.randn(1, 1, 4, dtype=torch.float64, requires_grad=True)
    value = lovasz_loss(logits, target, mask)
    value.backward()
    assert value.item() == 0.0 and torch.equal(logits.grad, torch.zeros_like(logits))
    # empty target, hinge: the largest error x + 1 of a predicted-positive voxel counts fully
    empty = torch.zeros(1, 1, 3, dtype=torch.float64)
    x = torch.tensor([[[0.5, -2.0, -0.5]]], dtype=torch.float64)
    assert lovasz_loss(x, empty).item() == pytest.approx(1.5, rel=1e-12)
    # multiclass with only absent classes left (include_background=False): 0
    labels = torch.zeros(1, 3, 3, dtype=torch.long)
    assert lovasz_loss(torch.randn(1, 3, 3, 3), labels, include_background=False).item() == 0.0


def test_soft_targets_are_thresholded():
    logits = torch.randn(2, 2, 5, dtype=torch.float64)
    soft = torch.rand(2, 2, 5, dtype=torch.float64)
    torch.testing.assert_close(lovasz_loss(logits, soft, mode="multilabel"),
                               lovasz_loss(logits, (soft > 0.5).double(), mode="multilabel"))


def test_errors():
    with pytest.raises(ValueError, match="classes"):
        lovasz_loss(torch.randn(1, 3, 4), torch.zeros(1, 4, dtype=torch.long), classes="some")


@pytest.mark.parametrize("mode,ignore", [("binary", False), ("multiclass", False),
                                         ("multiclass", True)])
def test_matches_smp(mode, ignore):
    """smp's LovaszLoss with ``per_image=True`` (its default pools the batch)."""
    smp_losses = pytest.importorskip("segmentation_models_pytorch.losses")
    opts = {"ignore_index": 255} if ignore else {}
    logits, target, _, kw = ref.build((mode, (6, 5), opts), seed=9)
    x, y, _ = ref.as_torch(logits, target, None)
    peer = smp_losses.LovaszLoss(mode, per_image=True, ignore_index=opts.get("ignore_index"))
    got = lovasz_loss(x, y, **kw)
    # smp's Jaccard gradient is computed in float32 whatever the input dtype
    want = peer(x.float(), y.float() if mode == "binary" else y)
    torch.testing.assert_close(got.float(), want, rtol=1e-5, atol=1e-6)


def test_gradient_on_2d_multiclass_all_classes():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 3, 4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 3, (2, 4, 5), generator=g)
    y[:, 0, 0] = 2
    assert torch.autograd.gradcheck(lambda z: lovasz_loss(z, y, classes="all"), (x,),
                                    eps=1e-6, atol=1e-5, rtol=1e-4)
