"""Shape-aware loss (Al Arif et al. 2017): l = (1 + E) CE, E on the predicted contour."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import seglosses
from seglosses import functional as SF
from seglosses.losses._distance import boundary_voxels
from tests.reference import np_boundary as R
from tests.reference import scalar as S

MODES = ["binary", "multilabel", "multiclass"]


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
    expected = sum((1 + e[i]) * S.bce(x[i], t[i]) for i in range(5)) / 5
    value = SF.shape_aware_loss(torch.tensor([[x]]), torch.tensor([[t]]))
    torch.testing.assert_close(value, torch.tensor(expected))
    # the docstring example, 2x3: target column 0, predicted region {(0,0), (1,0), (0,2),
    # (1,2)}; every predicted voxel touches the image edge, so all four are contour voxels
    # with d_t = 1, 1, 2, 2
    x2 = [[2.0, -1.0, 0.5], [0.5, -3.0, 1.0]]
    t2 = [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]
    e2 = [[1.0, 0.0, 2.0], [1.0, 0.0, 2.0]]
    expected = sum((1 + e2[i][j]) * S.bce(x2[i][j], t2[i][j]) for i in range(2)
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
    R.check_two_classes_equal_binary(SF.shape_aware_loss, include_background=(False,))


@pytest.mark.parametrize("mode", MODES)
def test_edge_cases(mode):
    logits, target = R.random_case(mode, 2, 0)
    x64 = torch.from_numpy(logits)
    for t in R.empty_and_full(target, mode):
        # empty or full target: d_t = 0, so E = 0 and the loss is plain cross-entropy
        torch.testing.assert_close(
            SF.shape_aware_loss(x64, torch.from_numpy(t), mode=mode, reduction="none"),
            SF.bce_loss(x64, torch.from_numpy(t), mode=mode, reduction="none"),
            rtol=1e-12, atol=1e-12)
    R.check_saturated(SF.shape_aware_loss, logits, target, mode, perfect_below=1e-3,
                      wrong_above=5.0)
    R.check_all_masked(SF.shape_aware_loss, logits, target, mode)


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
    if mode == "multiclass":
        e = e.sum(1, keepdims=True)

    def per_voxel(x):
        ce, valid = R.torch_cross_entropy(x, inp)
        return (1 + torch.from_numpy(e)) * ce, valid

    R.check_gradient_with_frozen_maps(SF.shape_aware_loss, logits, target, mask, kw, per_voxel)


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
    R.check_on_device(SF.shape_aware_loss, R.shape_aware, "binary", 3, "mask", device)