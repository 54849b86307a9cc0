"""Distance-map-penalised cross-entropy (Caliva et al. 2019): l = (1 + phi) CE."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import seglosses
from seglosses import functional as SF
from tests.reference import np_boundary as R
from tests.reference import scalar as S

MODES = ["binary", "multilabel", "multiclass"]


@pytest.mark.parametrize("variant", R.VARIANTS)
@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("mode", MODES)
def test_reference_values(mode, ndim, variant):
    # non-unit spacing: the distance transform returns float32 squared distances
    rtol = 1e-5 if variant == "spacing" else 1e-6
    R.check_against_reference(SF.distance_penalty_ce_loss, R.distance_penalty_ce, mode, ndim,
                              variant, rtol=rtol)


@pytest.mark.parametrize("scale", [0.0, 0.5, 4.0])
def test_reference_values_scale(scale):
    for mode in MODES:
        R.check_against_reference(SF.distance_penalty_ce_loss, R.distance_penalty_ce, mode, 3,
                                  "mask_weights", scale=scale)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("mode", MODES)
def test_reductions_match_reference(mode, reduction):
    R.check_reduction_against_reference(SF.distance_penalty_ce_loss, R.distance_penalty_ce,
                                        mode, 2, 4, reduction)


def test_hand_computed():
    # 2x3 target with the first column foreground: d = [[1, 1, 2], [1, 1, 2]], max d = 2,
    # phi = 1 - d / 2 = [[.5, .5, 0], [.5, .5, 0]]; L = mean((1 + phi) * BCE)
    x = [[2.0, -1.0, 0.5], [0.5, -3.0, 1.0]]
    t = [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]
    phi = [[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]]
    expected = sum((1 + phi[i][j]) * S.bce(x[i][j], t[i][j]) for i in range(2)
                   for j in range(3)) / 6
    value = SF.distance_penalty_ce_loss(torch.tensor([[x]]), torch.tensor([[t]]))
    torch.testing.assert_close(value, torch.tensor(expected))
    # scale = 3 triples the penalty
    expected = sum((1 + 3 * phi[i][j]) * S.bce(x[i][j], t[i][j]) for i in range(2)
                   for j in range(3)) / 6
    value = SF.distance_penalty_ce_loss(torch.tensor([[x]]), torch.tensor([[t]]), scale=3.0)
    torch.testing.assert_close(value, torch.tensor(expected))


def test_multiclass_voxel_takes_its_own_class_penalty():
    # 1-D labels [0, 0, 1, 1, 1, 2]: class maps d_0 = [2, 1, 1, 2, 3, 4] (max 4),
    # d_1 = [2, 1, 1, 2, 1, 1] (max 2), d_2 = [5, 4, 3, 2, 1, 1] (max 5);
    # each voxel takes phi of its own class: [1/2, 3/4, 1/2, 0, 1/2, 4/5]
    labels = torch.tensor([[0, 0, 1, 1, 1, 2]])
    x = torch.zeros(1, 3, 6)
    phi = torch.tensor([0.5, 0.75, 0.5, 0.0, 0.5, 0.8])
    expected = ((1 + phi) * math.log(3)).mean()
    torch.testing.assert_close(SF.distance_penalty_ce_loss(x, labels), expected)


def test_scale_zero_is_cross_entropy():
    for mode in MODES:
        logits, target, mask, kw = R.variant_case(mode, 2, 0, "mask_weights")
        args = (torch.from_numpy(logits), torch.from_numpy(target), torch.from_numpy(mask))
        torch.testing.assert_close(SF.distance_penalty_ce_loss(*args, scale=0.0, **kw),
                                   SF.bce_loss(*args, **kw), rtol=1e-12, atol=1e-12)


def test_multiclass_two_classes_equals_binary():
    R.check_two_classes_equal_binary(SF.distance_penalty_ce_loss)


@pytest.mark.parametrize("mode", MODES)
def test_edge_cases(mode):
    logits, target = R.random_case(mode, 2, 0)
    x64 = torch.from_numpy(logits)
    for t in R.empty_and_full(target, mode):
        # max d = 0 gives phi = 0: plain cross-entropy
        torch.testing.assert_close(
            SF.distance_penalty_ce_loss(x64, torch.from_numpy(t), mode=mode, reduction="none"),
            SF.bce_loss(x64, torch.from_numpy(t), mode=mode, reduction="none"),
            rtol=1e-12, atol=1e-12)
    R.check_saturated(SF.distance_penalty_ce_loss, logits, target, mode, perfect_below=1e-3,
                      wrong_above=5.0)
    R.check_all_masked(SF.distance_penalty_ce_loss, logits, target, mode)


@pytest.mark.parametrize("mode", MODES)
def test_gradient_treats_the_map_as_constant(mode):
    """Autograd gives d/dx of (1 + phi) CE with phi frozen as a constant."""
    logits, target, mask, kw = R.variant_case(mode, 3, 2, "mask")
    inp = R.Inputs(logits, target, mask, mode=mode)
    d = R._per_item(R.dist_to_boundary, inp.t > 0.5, inp.valid)
    d_max = np.where(inp.valid, d, 0).reshape(*d.shape[:2], -1).max(-1)
    phi = 1.0 - d / np.maximum(d_max, 1e-12).reshape(*d.shape[:2], 1, 1, 1)
    phi = np.where(d_max.reshape(*d.shape[:2], 1, 1, 1) > 0, phi, 0.0)
    if mode == "multiclass":
        phi = (inp.t * phi).sum(1, keepdims=True)

    def per_voxel(x):
        ce, valid = R.torch_cross_entropy(x, inp)
        return (1 + torch.from_numpy(phi)) * ce, valid

    R.check_gradient_with_frozen_maps(SF.distance_penalty_ce_loss, logits, target, mask, kw,
                                      per_voxel)


def test_module_and_registry():
    loss = seglosses.get_loss("distance_penalty_ce", scale=2.0)
    assert isinstance(loss, seglosses.DistancePenaltyCELoss)
    assert "scale=2.0" in repr(loss)
    info = seglosses.loss_info("distance_penalty_ce")
    assert info.family == seglosses.Family.DISTRIBUTION and info.needs_distance_maps
    assert info.defaults() == {"scale": 1.0, "spacing": None}


def test_errors():
    x = torch.zeros(1, 1, 4, 5)
    t = torch.zeros(1, 1, 4, 5)
    with pytest.raises(ValueError, match="scale"):
        SF.distance_penalty_ce_loss(x, t, scale=-0.5)
    with pytest.raises(ValueError, match="scale"):
        SF.distance_penalty_ce_loss(x, t, scale=float("nan"))
    with pytest.raises(ValueError, match="spacing"):
        SF.distance_penalty_ce_loss(x, t, spacing=(1.0, 1.0, 1.0))
    with pytest.raises(TypeError, match="spacing"):
        SF.distance_penalty_ce_loss(x, t, spacing=(True, 1.0))


def test_runs_on_device(device):
    R.check_on_device(SF.distance_penalty_ce_loss, R.distance_penalty_ce, "multiclass", 2,
                      "mask_weights", device)