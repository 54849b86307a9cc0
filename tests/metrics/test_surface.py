"""Surface-distance metrics vs a brute-force NumPy/SciPy reference and vs MONAI."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from seglosses.metrics import assd, hausdorff, hd95, surface, surface_dice
from tests.reference import np_metrics as ref


def blob_pair(shape, seed):
    """Overlapping smooth random masks (B, C, *S) with an empty and a one-sided item."""
    g = torch.Generator().manual_seed(seed)
    nd = len(shape) - 2
    pool = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}[nd]
    kernel = tuple(min(3, 2 * (n // 2) + 1) for n in shape[2:])
    pad = tuple(k // 2 for k in kernel)
    base = torch.randn(shape, generator=g)
    x = pool(base.flatten(0, 1).unsqueeze(1), kernel, 1, pad, count_include_pad=False)
    noise = torch.randn(x.shape, generator=g) * 0.3
    pred = (x + noise > 0.1).view(shape)
    target = (x > 0.0).view(shape)
    return pred, target


SHAPES = [(2, 2, 23), (2, 2, 13, 10), (2, 1, 6, 7, 5)]
SPACINGS = {1: [None, (0.6,)], 2: [None, (1.5, 0.5)], 3: [None, (2.0, 1.0, 0.7)]}


def with_empty_items(pred, target):
    pred, target = pred.clone(), target.clone()
    pred[0, 0] = False
    target[0, 0] = False          # both empty
    pred[-1, -1] = False          # only the prediction empty
    target[-1, -1] = True
    return pred, target


def test_surface_matches_scipy():
    pred, _ = blob_pair((2, 2, 9, 12), seed=1)
    pred[1, 1] = True
    out = surface(pred).numpy()
    for b in range(2):
        for c in range(2):
            assert np.array_equal(out[b, c], ref.surface(pred[b, c].numpy()))
    m = torch.zeros(1, 1, 5, 5, 5, dtype=torch.bool)
    m[..., 1:4, 1:4, 1:4] = True
    assert surface(m).sum().item() == 26       # a 3x3x3 cube keeps only its centre


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_reference_values(shape):
    nd = len(shape) - 2
    pred, target = with_empty_items(*blob_pair(shape, seed=len(shape)))
    p, t = pred.numpy(), target.numpy()
    for spacing in SPACINGS[nd]:
        for q in (100, 95, 50, 0, 37.5):
            for method in ("max", "pooled"):
                out = hausdorff(pred, target, q, spacing, method)
                expected = ref.per_item(ref.hausdorff, p, t, percentile=q, spacing=spacing,
                                        method=method)
                np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(hd95(pred, target, spacing).numpy(),
                                   ref.per_item(ref.hausdorff, p, t, percentile=95, spacing=spacing),
                                   rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(assd(pred, target, spacing).numpy(),
                                   ref.per_item(ref.assd, p, t, spacing=spacing), rtol=1e-5, atol=1e-6)
        for tol in (0.0, 1.0, 1.6):
            np.testing.assert_allclose(
                surface_dice(pred, target, tol, spacing).numpy(),
                ref.per_item(ref.surface_dice, p, t, tolerance=tol, spacing=spacing),
                rtol=1e-5, atol=1e-6)


def test_hand_computed():
    # pred: a 2x2 square; target: the 2x4 rectangle that extends it two columns to the right.
    # Every voxel of both is a surface voxel. From pred to target: 0 (4 times); from target
    # to pred: 0, 0, 0, 0, 1, 1, 2, 2.
    pred = torch.zeros(1, 1, 6, 6, dtype=torch.bool)
    target = torch.zeros(1, 1, 6, 6, dtype=torch.bool)
    pred[..., 1:3, 1:3] = True
    target[..., 1:3, 1:5] = True
    assert hausdorff(pred, target).item() == 2.0
    # percentile 50 of the target side: position 0.5 * 7 = 3.5 between 0 and 1 -> 0.5
    assert hausdorff(pred, target, percentile=50).item() == pytest.approx(0.5)
    # pooled: 12 values (8 zeros, 1, 1, 2, 2); position 0.9 * 11 = 9.9 -> 1 + 0.9 * 1 = 1.9
    assert hausdorff(pred, target, 90, method="pooled").item() == pytest.approx(1.9)
    assert assd(pred, target).item() == pytest.approx(6 / 12)
    assert surface_dice(pred, target, 1.0).item() == pytest.approx(10 / 12)
    assert surface_dice(pred, target, 0.5).item() == pytest.approx(8 / 12)
    # spacing 0.5 along x halves every distance here
    assert hausdorff(pred, target, spacing=(1.0, 0.5)).item() == 1.0


def test_edge_cases():
    empty = torch.zeros(1, 1, 5, 6, dtype=torch.bool)
    some = empty.clone()
    some[..., 2, 3] = True
    table = [
        (empty, empty, 0.0, 0.0, 1.0),
        (empty, some, float("inf"), float("inf"), 0.0),
        (some, empty, float("inf"), float("inf"), 0.0),
        (some, some, 0.0, 0.0, 1.0),
    ]
    for pred, target, hd, asd_value, nsd in table:
        for method in ("max", "pooled"):
            assert hausdorff(pred, target, method=method).item() == hd
            assert hd95(pred, target, method=method).item() == hd
        assert assd(pred, target).item() == asd_value
        assert surface_dice(pred, target, 1.0).item() == nsd
    assert surface_dice(empty, empty, 1.0, empty_value=0.0).item() == 0.0
    # a full mask has a surface (the image border)
    full = torch.ones(1, 1, 4, 4, dtype=torch.bool)
    assert hausdorff(full, full).item() == 0.0
    # float and int inputs are thresholded at 0.5
    assert hausdorff(some.float() * 0.9, some.long()).item() == 0.0
    assert hausdorff(some.float() * 0.4, some).item() == float("inf")


def test_device(device):
    pred, target = blob_pair((2, 1, 12, 9), seed=3)
    out = hd95(pred.to(device), target.to(device), spacing=(1.0, 2.0))
    assert out.device.type == device.type and out.dtype == torch.float32
    torch.testing.assert_close(out.cpu(), hd95(pred, target, spacing=(1.0, 2.0)))


def _monai_case():
    pred, target = blob_pair((2, 2, 14, 11), seed=9)
    pred[1, 1, 3:6, 2:5] = True           # make sure every item is non-empty on both sides
    target[0, 1, 7:9, 3:6] = True
    return pred, target


def test_matches_monai_hausdorff():
    metrics = pytest.importorskip("monai.metrics")
    pred, target = _monai_case()
    for q in (None, 95, 50):
        for spacing in (None, (1.5, 0.5)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                expected = metrics.compute_hausdorff_distance(
                    pred.float(), target.float(), include_background=True, percentile=q,
                    directed=False, spacing=spacing)
            out = hausdorff(pred, target, 100 if q is None else q, spacing)
            torch.testing.assert_close(out, expected.float(), rtol=1e-5, atol=1e-5)
    metric = metrics.HausdorffDistanceMetric(include_background=True, percentile=95)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = metric(pred.float(), target.float()).float()
    torch.testing.assert_close(hd95(pred, target), expected, rtol=1e-5, atol=1e-5)


def test_matches_monai_assd_and_surface_dice():
    metrics = pytest.importorskip("monai.metrics")
    pred, target = _monai_case()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = metrics.compute_average_surface_distance(
            pred.float(), target.float(), include_background=True, symmetric=True)
        nsd = metrics.compute_surface_dice(pred.float(), target.float(), [1.0, 1.0],
                                           include_background=True)
    torch.testing.assert_close(assd(pred, target), expected.float(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(surface_dice(pred, target, 1.0), nsd.float(), rtol=1e-5, atol=1e-5)


def test_errors():
    a = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"`percentile` must lie in \[0, 100\]; got 101"):
        hausdorff(a, a, percentile=101)
    with pytest.raises(TypeError, match="`percentile` must be a number"):
        hausdorff(a, a, percentile="95")
    with pytest.raises(ValueError, match=r"`method` must be one of \['max', 'pooled'\]; got 'pool' \(did you mean 'pooled'\?\)"):
        hausdorff(a, a, method="pool")
    with pytest.raises(ValueError, match=r"`spacing` must hold one value per spatial dim \(2\); got 3"):
        hd95(a, a, spacing=(1, 1, 1))
    with pytest.raises(ValueError, match="`spacing` values must be finite and > 0"):
        assd(a, a, spacing=-1.0)
    with pytest.raises(ValueError, match=r"`tolerance` must lie in \[0, inf\]; got -1"):
        surface_dice(a, a, -1)
    with pytest.raises(ValueError, match="`target` must have the shape of `pred`"):
        hd95(a, torch.zeros(1, 1, 4, 5, dtype=torch.bool))
