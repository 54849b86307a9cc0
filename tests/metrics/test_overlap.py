"""Overlap metrics and ``one_hot`` vs NumPy and scikit-learn references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seglosses import set_validation
from seglosses.metrics import accuracy, dice, iou, one_hot, precision, sensitivity, specificity
from tests.reference import np_metrics as ref

METRICS = {
    "dice": (dice, ref.dice), "iou": (iou, ref.iou), "sensitivity": (sensitivity, ref.sensitivity),
    "specificity": (specificity, ref.specificity), "precision": (precision, ref.precision),
    "accuracy": (accuracy, ref.accuracy),
}
SHAPES = [(2, 3, 17), (3, 2, 9, 14), (2, 1, 5, 7, 3)]


def random_pair(shape, seed, dtype=torch.bool):
    g = torch.Generator().manual_seed(seed)
    pred = torch.rand(shape, generator=g)
    target = torch.rand(shape, generator=g) < 0.4
    if dtype == torch.bool:
        return pred < 0.5, target
    if dtype.is_floating_point:
        return pred.to(dtype), target.to(dtype)            # float pred thresholded at 0.5
    return (pred < 0.5).to(dtype), target.to(dtype)


@pytest.mark.parametrize("name", list(METRICS))
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [torch.bool, torch.float32, torch.int64], ids=str)
def test_reference_values(name, shape, dtype):
    fn, reference = METRICS[name]
    pred, target = random_pair(shape, seed=len(shape), dtype=dtype)
    # include an empty and a full (sample, channel) to hit the empty_value policy
    pred[0, 0] = 0
    target[0, 0] = 0
    pred[-1, -1] = 1
    target[-1, -1] = 1
    out = fn(pred, target)
    assert out.shape == shape[:2] and out.dtype == torch.float32
    expected = ref.per_item(reference, pred.numpy(), target.numpy())
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-6)
    out = fn(pred, target, empty_value=float("nan"))
    expected = ref.per_item(reference, pred.numpy(), target.numpy(), empty_value=np.nan)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-6)


def test_matches_sklearn():
    sk = pytest.importorskip("sklearn.metrics")
    pred, target = random_pair((2, 2, 11, 13), seed=3)
    cases = {
        dice: sk.f1_score, iou: sk.jaccard_score, sensitivity: sk.recall_score,
        precision: sk.precision_score, accuracy: sk.accuracy_score,
        specificity: lambda y, p: sk.recall_score(1 - y, 1 - p),
    }
    for fn, skfn in cases.items():
        out = fn(pred, target)
        for b in range(2):
            for c in range(2):
                y = target[b, c].flatten().numpy().astype(int)
                p = pred[b, c].flatten().numpy().astype(int)
                assert out[b, c].item() == pytest.approx(skfn(y, p), rel=1e-6)


def test_hand_computed():
    # pred 1 1 0 0 / target 1 0 1 0: TP 1, FP 1, FN 1, TN 1
    pred = torch.tensor([[[1, 1, 0, 0]]])
    target = torch.tensor([[[1, 0, 1, 0]]])
    assert dice(pred, target).item() == pytest.approx(2 / 4)
    assert iou(pred, target).item() == pytest.approx(1 / 3)
    assert sensitivity(pred, target).item() == pytest.approx(1 / 2)
    assert specificity(pred, target).item() == pytest.approx(1 / 2)
    assert precision(pred, target).item() == pytest.approx(1 / 2)
    assert accuracy(pred, target).item() == pytest.approx(2 / 4)
    # thresholding: 0.5 itself is background, 0.51 foreground
    soft = torch.tensor([[[0.51, 0.5, 0.2, 0.9]]])
    assert dice(soft, torch.tensor([[[1, 1, 0, 1]]])).item() == pytest.approx(2 * 2 / (2 * 2 + 0 + 1))


def test_edge_cases():
    empty = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    full = torch.ones(1, 1, 4, 4, dtype=torch.bool)
    table = [
        # (pred, target, metric, expected with empty_value = 1, with empty_value = 0)
        (empty, empty, dice, 1.0, 0.0), (empty, empty, iou, 1.0, 0.0),
        (empty, empty, sensitivity, 1.0, 0.0), (empty, empty, precision, 1.0, 0.0),
        (empty, empty, specificity, 1.0, 1.0), (full, full, specificity, 1.0, 0.0),
        (empty, full, dice, 0.0, 0.0), (full, empty, precision, 0.0, 0.0),
        (empty, full, precision, 1.0, 0.0), (full, full, accuracy, 1.0, 1.0),
    ]
    for pred, target, fn, one, zero in table:
        assert fn(pred, target).item() == one, fn.__name__
        assert fn(pred, target, empty_value=0.0).item() == zero, fn.__name__


def test_device(device):
    pred, target = random_pair((2, 1, 6, 6), seed=1)
    out = dice(pred.to(device), target.to(device))
    assert out.device.type == device.type
    torch.testing.assert_close(out.cpu(), dice(pred, target))


def test_one_hot():
    labels = torch.tensor([[[0, 2], [1, 2]], [[1, 1], [0, 0]]])
    out = one_hot(labels, 3)
    assert out.shape == (2, 3, 2, 2) and out.dtype == torch.bool
    expected = np.stack([labels.numpy() == c for c in range(3)], axis=1)
    assert np.array_equal(out.numpy(), expected)
    assert one_hot(torch.tensor([[0, 1, 0]]), 2).sum().item() == 3
    # one_hot of labels gives per-class metrics
    assert dice(one_hot(labels, 3), one_hot(labels, 3)).eq(1).all()


def test_errors():
    a = torch.zeros(2, 1, 4, 4, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"`target` must have the shape of `pred` \(2, 1, 4, 4\); got \(2, 1, 4, 5\)"):
        dice(a, torch.zeros(2, 1, 4, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"1 to 3 spatial dims.*got 2 dims"):
        dice(torch.zeros(4, 4), torch.zeros(4, 4))
    with pytest.raises(ValueError, match=r"got 6 dims"):
        iou(torch.zeros(1, 1, 2, 2, 2, 2), torch.zeros(1, 1, 2, 2, 2, 2))
    with pytest.raises(ValueError, match="`pred` must not be empty"):
        dice(torch.zeros(0, 1, 4), torch.zeros(0, 1, 4))
    with pytest.raises(TypeError, match="`pred` must be a torch.Tensor; got ndarray"):
        dice(np.zeros((1, 1, 4)), a)
    with pytest.raises(TypeError, match="`empty_value` must be a number; got str"):
        dice(a, a, empty_value="one")
    with pytest.raises(TypeError, match="`labels` must be an integer tensor"):
        one_hot(torch.zeros(1, 4), 2)
    with pytest.raises(ValueError, match=r"`labels` class indices must lie in \[0, 3\) .*got labels in \[0, 3\]"):
        one_hot(torch.tensor([[0, 3]]), 3)
    with pytest.raises(ValueError, match=r"got labels in \[-1, 0\]"):
        one_hot(torch.tensor([[0, -1]]), 3)
    with pytest.raises(ValueError, match="`num_classes` must be >= 1; got 0"):
        one_hot(torch.tensor([[0]]), 0)
    with pytest.raises(TypeError, match="`num_classes` must be an int"):
        one_hot(torch.tensor([[0]]), 2.0)
    with pytest.raises(ValueError, match=r"`labels` must have shape \(B, \*S\)"):
        one_hot(torch.tensor([0, 1]), 2)
    set_validation(False)
    try:
        one_hot(torch.tensor([[0, 3]]), 3)        # value check off: no error
    finally:
        set_validation(True)
