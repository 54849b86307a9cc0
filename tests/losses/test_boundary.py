"""Boundary loss (Kervadec et al. 2019): l = p * signed_distance(t > 0.5)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import seglosses
from seglosses import functional as SF
from tests.reference import np_boundary as R

MODES = ["binary", "multilabel", "multiclass"]


@pytest.mark.parametrize("variant", R.VARIANTS)
@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("mode", MODES)
def test_reference_values(mode, ndim, variant):
    # non-unit spacing: the distance transform returns float32 squared distances
    rtol = 1e-5 if variant == "spacing" else 1e-6
    R.check_against_reference(SF.boundary_loss, R.boundary, mode, ndim, variant, rtol=rtol)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("mode", MODES)
def test_reductions_match_reference(mode, reduction):
    R.check_reduction_against_reference(SF.boundary_loss, R.boundary, mode, 2, 4,
                                        reduction)


def test_hand_computed():
    # 1-D target [1, 1, 1, 0, 0]: signed distances [-3, -2, -1, 1, 2]; p = 0.5 everywhere,
    # so L = 0.5 * (-3 - 2 - 1 + 1 + 2) / 5 = -0.3
    target = torch.tensor([[[1.0, 1.0, 1.0, 0.0, 0.0]]])
    value = SF.boundary_loss(torch.zeros(1, 1, 5), target)
    torch.testing.assert_close(value, torch.tensor(-0.3))
    # 2x2 target [[1, 0], [0, 0]]: signed distances [[-1, 1], [1, sqrt 2]]; p = 0.5:
    # L = 0.5 * (-1 + 1 + 1 + sqrt 2) / 4
    target = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    value = SF.boundary_loss(torch.zeros(1, 1, 2, 2), target)
    torch.testing.assert_close(value, torch.tensor(0.5 * (1 + math.sqrt(2)) / 4))
    # a perfect prediction of the 1-D target reaches the minimum -(3 + 2 + 1) / 5
    x = torch.tensor([[[30.0, 30.0, 30.0, -30.0, -30.0]]])
    target = torch.tensor([[[1.0, 1.0, 1.0, 0.0, 0.0]]])
    torch.testing.assert_close(SF.boundary_loss(x, target), torch.tensor(-1.2))


def test_masked_voxels_take_no_part_in_the_map():
    # 1-D target [1, 1, 0, 0, 0, 1] with voxel 2 masked: voxel 1's nearest valid background
    # voxel is 3 (distance 2), voxel 5's is 4 (distance 1), voxel 0's is 3 (distance 3);
    # background voxels 3 and 4 are at distances 2 and 1 from valid foreground voxels 1, 5.
    target = torch.tensor([[[1.0, 1.0, 0.0, 0.0, 0.0, 1.0]]])
    mask = torch.tensor([[[True, True, False, True, True, True]]])
    p = torch.full((1, 1, 6), 0.5)
    value = SF.boundary_loss(p, target, mask, from_logits=False)
    expected = 0.5 * (-3 - 2 + 2 + 1 - 1) / 5
    torch.testing.assert_close(value, torch.tensor(expected))
    valid = mask.numpy()[0, 0]
    fg = target.numpy()[0, 0] > 0.5
    np.testing.assert_allclose(R.dist_to_boundary(fg, valid),
                               R.dist_to_boundary_bruteforce(fg, valid))


def test_bruteforce_reference_agrees_with_scipy():
    """The masked reference maps (via SciPy) equal an explicit nearest-voxel search."""
    rng = np.random.default_rng(0)
    for shape, spacing in (((7, 9), None), ((4, 5, 6), (2.0, 0.8, 1.3)), ((13,), 0.7)):
        for _ in range(3):
            fg = rng.random(shape) > 0.6
            valid = rng.random(shape) > 0.3
            np.testing.assert_allclose(R.dist_to_boundary(fg, valid, spacing),
                                       R.dist_to_boundary_bruteforce(fg, valid, spacing))


@pytest.mark.parametrize("mode", MODES)
def test_edge_cases(mode):
    logits, target = R.random_case(mode, 2, 0)
    x = torch.from_numpy(logits).float()
    for t in R.empty_and_full(target, mode):
        value = SF.boundary_loss(x, torch.from_numpy(t), mode=mode, reduction="none")
        # an empty or full target channel has an all-zero signed distance map
        assert torch.equal(value, torch.zeros(2))
    # all voxels masked: 0 with zero gradient
    R.check_all_masked(SF.boundary_loss, x, target, mode)
    # saturated perfect and wrong predictions stay finite
    R.check_saturated(SF.boundary_loss, logits, target, mode)


@pytest.mark.parametrize("mode", MODES)
def test_gradient_treats_the_map_as_constant(mode):
    """Autograd gives d/dx mean(p * sd) with sd a constant; the target gets no gradient."""
    logits, target, mask, kw = R.variant_case(mode, 2, 1, "mask")
    inp = R.Inputs(logits, target, mask, mode=mode)
    sd = torch.from_numpy(R._per_item(R.signed_distance, inp.t > 0.5, inp.valid))
    t = torch.from_numpy(target)
    if mode != "multiclass":
        t = t.clone().requires_grad_(True)

    def per_voxel(x):
        p = torch.softmax(x, 1) if mode == "multiclass" else torch.sigmoid(x)
        return p * sd, torch.from_numpy(inp.valid).double()

    R.check_gradient_with_frozen_maps(SF.boundary_loss, logits, t, mask, kw, per_voxel)
    if mode != "multiclass":
        assert t.grad is None, "no gradient may reach the target through the distance map"


def test_multiclass_two_classes_without_background_equals_binary():
    R.check_two_classes_equal_binary(SF.boundary_loss, include_background=(False,))


def test_spacing_scalar_equals_sequence_and_scales_distances():
    logits, target = R.random_case("binary", 3, 2)
    x, t = torch.from_numpy(logits), torch.from_numpy(target)
    plain = SF.boundary_loss(x, t, reduction="none")
    torch.testing.assert_close(SF.boundary_loss(x, t, reduction="none", spacing=1.0), plain)
    torch.testing.assert_close(SF.boundary_loss(x, t, reduction="none", spacing=(2.0,) * 3),
                               2.0 * plain, rtol=1e-6, atol=1e-9)


def test_module_and_registry():
    loss = seglosses.get_loss("boundary", spacing=(1.0, 2.0))
    assert isinstance(loss, seglosses.BoundaryLoss)
    assert "spacing=(1.0, 2.0)" in repr(loss)
    info = seglosses.loss_info("boundary")
    assert info.family == seglosses.Family.BOUNDARY and info.needs_distance_maps
    assert info.value_range == (-math.inf, math.inf)


def test_errors():
    x = torch.zeros(1, 1, 4, 5)
    t = torch.zeros(1, 1, 4, 5)
    with pytest.raises(ValueError, match="spacing"):
        SF.boundary_loss(x, t, spacing=(1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match="spacing"):
        SF.boundary_loss(x, t, spacing=(0.0, 1.0))
    with pytest.raises(TypeError, match="spacing"):
        SF.boundary_loss(x, t, spacing="1mm")
    with pytest.raises(TypeError, match="boundary"):
        seglosses.get_loss("boundary", alpha=2.0)


def test_runs_on_device(device):
    R.check_on_device(SF.boundary_loss, R.boundary, "multiclass", 3, "mask", device)


@pytest.mark.filterwarnings("ignore::UserWarning")
class TestMatchesMonai:
    """MONAI 1.6 ``BoundaryLoss``: the same loss except that its signed map is shifted by +1
    inside the object (``-(edt(m) - 1)``, zero on the inner boundary, as Kervadec's reference
    code), so MONAI = ours + mean(p * t) on every channel whose map is not all zero."""

    @pytest.fixture(autouse=True)
    def _monai(self):
        losses = pytest.importorskip("monai.losses")
        if not hasattr(losses, "BoundaryLoss"):
            pytest.skip("monai.losses.BoundaryLoss needs MONAI >= 1.5")
        self.peer = losses.BoundaryLoss

    @staticmethod
    def _shift(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """mean_i p t over voxels, per (b, c), on channels with both classes present."""
        fg = t > 0.5
        present = fg.flatten(2).any(-1) & ~fg.flatten(2).all(-1)
        return (p * fg).flatten(2).mean(-1) * present

    @pytest.mark.parametrize("ndim", [2, 3])
    @pytest.mark.parametrize("mode", ["binary", "multilabel"])
    def test_sigmoid_modes(self, mode, ndim):
        for seed in range(3):
            logits, target = R.random_case(mode, ndim, seed)
            x, t = torch.from_numpy(logits), torch.from_numpy(target)
            ours = SF.boundary_loss(x, t, mode=mode, reduction="none")
            peer = self.peer(sigmoid=True, reduction="none")(x, t)
            shift = self._shift(torch.sigmoid(x), t)
            torch.testing.assert_close(ours + shift.mean(1), peer.mean(1), rtol=1e-6, atol=1e-9)

    @pytest.mark.parametrize("include_background", [True, False])
    def test_multiclass(self, include_background):
        for seed in range(3):
            logits, labels = R.random_case("multiclass", 2, seed, classes=4)
            x, y = torch.from_numpy(logits), torch.from_numpy(labels)
            ours = SF.boundary_loss(x, y, reduction="none", include_background=include_background)
            peer = self.peer(softmax=True, to_onehot_y=True, reduction="none",
                             include_background=include_background)(x, y.unsqueeze(1))
            onehot = torch.nn.functional.one_hot(y, 4).movedim(-1, 1).double()
            shift = self._shift(torch.softmax(x, 1), onehot)
            if not include_background:
                shift = shift[:, 1:]
            torch.testing.assert_close(ours + shift.mean(1), peer.mean(1), rtol=1e-6, atol=1e-9)
