"""Shape-aware loss (Al Arif et al. 2017): l = (1 + E) CE, E on the predicted contour."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import seglosses
from seglosses import functional as SF
from seglosses.losses._distance import boundary_voxels
from tests.reference import np_boundary as R

MODES = ["binary", "multilabel", "multiclass"]


def _bce(x: float, t: float) -> float:
    return -(t * math.log(1 / (1 + math.exp(-x))) + (1 - t) * math.log(1 / (1 + math.exp(x))))


@pytest.mark.parametrize("variant", R.VARIANTS)
@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("mode", MODES)
def test_reference_values(mode, ndim, variant):
    # non-unit spacing: the distance transform returns float32 squared distances
    rtol = 1e-5 if variant == "spacing" else 1e-6
    R.check_against_reference(SF.shape_aware_loss, R.shape_aware, mode, ndim, variant,
                              rtol=rtol)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("mode", MODES)
def test_reductions_match_reference(mode, reduction):
    R.check_reduction_against_reference(SF.shape_aware_loss, R.shape_aware, mode, 3, 4,
                                        reduction)


def test_hand_computed():
    # 1-D target [1, 1, 1, 0, 0], logits [2, 2, 2, 2, -2]: predicted region = voxels 0..3,
    # its contour = voxel 0 (the image edge counts as outside) and voxel 3 (neighbour 4);
    # d_t = [3, 2, 1, 1, 2], so E = [3, 0, 0, 1, 0]
    x = [2.0, 2.0, 2.0, 2.0, -2.0]
    t = [1.0, 1.0, 1.0, 0.0, 0.0]
    e = [3.0, 0.0, 0.0, 1.0, 0.0]
    expected = sum((1 + e[i]) * _bce(x[i], t[i]) for i in range(5)) / 5
    value = SF.shape_aware_loss(torch.tensor([[x]]), torch.tensor([[t]]))
    torch.testing.assert_close(value, torch.tensor(expected))
    # the docstring example, 2x3: target column 0, predicted region {(0,0), (1,0), (0,2),
    # (1,2)}; every predicted voxel touches the image edge, so all four are contour voxels
    # with d_t = 1, 1, 2, 2
    x2 = [[2.0, -1.0, 0.5], [0.5, -3.0, 1.0]]
    t2 = [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]
    e2 = [[1.0, 0.0, 2.0], [1.0, 0.0, 2.0]]
    expected = sum((1 + e2[i][j]) * _bce(x2[i][j], t2[i][j]) for i in range(2)
                   for j in range(3)) / 6
    value = SF.shape_aware_loss(torch.tensor([[x2]]), torch.tensor([[t2]]))
    torch.testing.assert_close(value, torch.tensor(expected))


def test_contour_voxels():
    # 1-D region [0, 1, 1, 1, 0]: contour = voxels 1 and 3
    region = torch.tensor([[[False, True, True, True, False]]])
    assert boundary_voxels(region, None).tolist() == [[[False, True, False, True, False]]]
    # voxel 0 masked: it makes no contour voxel, so voxel 1 is interior; voxel 4 still does
    valid = torch.tensor([[[False, True, True, True, True]]])
    assert boundary_voxels(region, valid).tolist() == [[[False, False, False, True, False]]]
    # a full region touches the image edge only
    full = torch.ones(1, 1, 3, 4, dtype=torch.bool)
    expected = torch.ones(3, 4, dtype=torch.bool)
    expected[1, 1:3] = False
    assert torch.equal(boundary_voxels(full, None)[0, 0], expected)


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_contour_matches_scipy_erosion(ndim):
    rng = np.random.default_rng(ndim)
    for _ in range(4):
        shape = (2, 3, *R.SHAPES[ndim])
        region = rng.random(shape) > 0.4
        valid = rng.random((2, 1, *R.SHAPES[ndim])) > 0.2
        got = boundary_voxels(torch.from_numpy(region), torch.from_numpy(valid)).numpy()
        full_valid = np.broadcast_to(valid, shape)
        want = np.stack([np.stack([R.predicted_boundary(region[b, c], full_valid[b, c])
                                   for c in range(3)]) for b in range(2)])
        np.testing.assert_array_equal(got, want)


def test_multiclass_two_classes_without_background_equals_binary():
    logits, target = R.random_case("binary", 2, 3)
    two = np.concatenate([np.zeros_like(logits), logits], axis=1)
    labels = torch.from_numpy(target[:, 0].astype(np.int64))
    binary = SF.shape_aware_loss(torch.from_numpy(logits), torch.from_numpy(target),
                                 reduction="none")
    multi = SF.shape_aware_loss(torch.from_numpy(two), labels, reduction="none",
                                include_background=False)
    torch.testing.assert_close(multi, binary, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
def test_edge_cases(mode):
    logits, target = R.random_case(mode, 2, 0)
    shape = target.shape
    empty = np.zeros(shape, dtype=target.dtype)
    full = np.ones(shape, dtype=target.dtype) if mode != "multiclass" else np.full(shape, 2)
    x64 = torch.from_numpy(logits)
    for t in (empty, full):
        # empty or full target: d_t = 0, so E = 0 and the loss is plain cross-entropy
        torch.testing.assert_close(
            SF.shape_aware_loss(x64, torch.from_numpy(t), mode=mode, reduction="none"),
            SF.bce_loss(x64, torch.from_numpy(t), mode=mode, reduction="none"),
            rtol=1e-12, atol=1e-12)
    onehot = R.Inputs(logits, target, mode=mode).t
    for magnitude, dtype in ((50.0, torch.float32), (10.0, torch.float16)):
        for sign in (1.0, -1.0):
            xs = torch.from_numpy(sign * magnitude * (2 * onehot - 1)).to(dtype)
            xs.requires_grad_(True)
            value = SF.shape_aware_loss(xs, torch.from_numpy(target), mode=mode)
            value.backward()
            assert torch.isfinite(value) and torch.isfinite(xs.grad).all()
            assert (value.item() < 1e-3) if sign > 0 else (value.item() > 5.0)
    x = x64.clone().requires_grad_(True)
    value = SF.shape_aware_loss(x, torch.from_numpy(target),
                                torch.zeros(2, 1, 7, 9, dtype=torch.bool), mode=mode)
    value.backward()
    assert value.item() == 0.0 and torch.all(x.grad == 0)


@pytest.mark.parametrize("mode", MODES)
def test_gradient_treats_the_map_as_constant(mode):
    """Autograd gives d/dx of (1 + E) CE with E frozen as a constant."""
    logits, target, mask, kw = R.variant_case(mode, 2, 2, "mask")
    inp = R.Inputs(logits, target, mask, mode=mode)
    d = R._per_item(R.dist_to_boundary, inp.t > 0.5, inp.valid)
    region = inp.predicted()
    edge = np.stack([np.stack([R.predicted_boundary(region[b, c], inp.valid[b, c])
                               for c in range(d.shape[1])]) for b in range(d.shape[0])])
    e = np.where(edge, d, 0.0)
    t = torch.from_numpy(inp.t)
    x = torch.from_numpy(logits).requires_grad_(True)
    SF.shape_aware_loss(x, torch.from_numpy(target), torch.from_numpy(mask), reduction="sum",
                        **kw).backward()
    x2 = torch.from_numpy(logits).requires_grad_(True)
    if mode == "multiclass":
        e = e.sum(1, keepdims=True)
        ce = -(t * torch.log_softmax(x2, 1)).sum(1, keepdim=True)
        valid = torch.from_numpy(inp.valid[:, :1]).double()
    else:
        ce = torch.nn.functional.binary_cross_entropy_with_logits(x2, t, reduction="none")
        valid = torch.from_numpy(inp.valid).double()
    per_sample = ((1 + torch.from_numpy(e)) * ce * valid).flatten(1).sum(1) / \
        valid.flatten(1).sum(1)
    per_sample.sum().backward()
    torch.testing.assert_close(x.grad, x2.grad, rtol=1e-10, atol=1e-14)


def test_module_and_registry():
    loss = seglosses.get_loss("shape_aware", spacing=0.5)
    assert isinstance(loss, seglosses.ShapeAwareLoss)
    info = seglosses.loss_info("shape_aware")
    assert info.family == seglosses.Family.BOUNDARY and info.needs_distance_maps
    assert info.defaults() == {"spacing": None}


def test_errors():
    x = torch.zeros(1, 1, 4, 5, 6)
    t = torch.zeros(1, 1, 4, 5, 6)
    with pytest.raises(ValueError, match="spacing"):
        SF.shape_aware_loss(x, t, spacing=(1.0, 1.0))
    with pytest.raises(ValueError, match="spacing"):
        SF.shape_aware_loss(x, t, spacing=(1.0, float("inf"), 1.0))
    with pytest.raises(TypeError, match="shape_aware"):
        seglosses.get_loss("shape_aware", scale=2.0)


def test_runs_on_device(device):
    logits, target, mask, kw = R.variant_case("binary", 3, 0, "mask")
    value = SF.shape_aware_loss(torch.from_numpy(logits).to(device),
                                torch.from_numpy(target).to(device),
                                torch.from_numpy(mask).to(device), reduction="none", **kw)
    assert value.device.type == device.type
    np.testing.assert_allclose(value.cpu().numpy(),
                               R.shape_aware(logits, target, mask, reduction="none", **kw),
                               rtol=1e-6)
