"""Distance-map-penalised cross-entropy (Caliva et al. 2019): l = (1 + phi) CE."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import seglosses
from seglosses import functional as SF
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
    R.check_reduction_against_reference(SF.distance_penalty_ce_loss, R.distance_penalty_ce, mode, 2, 4,
                                        reduction)


def test_hand_computed():
    # 2x3 target with the first column foreground: d = [[1, 1, 2], [1, 1, 2]], max d = 2,
    # phi = 1 - d / 2 = [[.5, .5, 0], [.5, .5, 0]]; L = mean((1 + phi) * BCE)
    x = [[2.0, -1.0, 0.5], [0.5, -3.0, 1.0]]
    t = [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]
    phi = [[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]]
    expected = sum((1 + phi[i][j]) * _bce(x[i][j], t[i][j]) for i in range(2)
                   for j in range(3)) / 6
    value = SF.distance_penalty_ce_loss(torch.tensor([[x]]), torch.tensor([[t]]))
    torch.testing.assert_close(value, torch.tensor(expected))
    # scale = 3 triples the penalty
    expected = sum((1 + 3 * phi[i][j]) * _bce(x[i][j], t[i][j]) for i in range(2)
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
    logits, target = R.random_case("binary", 2, 3)
    two = np.concatenate([np.zeros_like(logits), logits], axis=1)
    labels = torch.from_numpy(target[:, 0].astype(np.int64))
    binary = SF.distance_penalty_ce_loss(torch.from_numpy(logits), torch.from_numpy(target),
                                         reduction="none")
    multi = SF.distance_penalty_ce_loss(torch.from_numpy(two), labels, reduction="none")
    torch.testing.assert_close(multi, binary, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
def test_edge_cases(mode):
    logits, target = R.random_case(mode, 2, 0)
    shape = target.shape
    empty = np.zeros(shape, dtype=target.dtype)
    full = np.ones(shape, dtype=target.dtype) if mode != "multiclass" else np.full(shape, 2)
    x64 = torch.from_numpy(logits)
    for t in (empty, full):
        # max d = 0 gives phi = 0: plain cross-entropy
        torch.testing.assert_close(
            SF.distance_penalty_ce_loss(x64, torch.from_numpy(t), mode=mode, reduction="none"),
            SF.bce_loss(x64, torch.from_numpy(t), mode=mode, reduction="none"),
            rtol=1e-12, atol=1e-12)
    onehot = R.Inputs(logits, target, mode=mode).t
    for magnitude, dtype in ((50.0, torch.float32), (10.0, torch.float16)):
        for sign in (1.0, -1.0):
            xs = torch.from_numpy(sign * magnitude * (2 * onehot - 1)).to(dtype)
            xs.requires_grad_(True)
            value = SF.distance_penalty_ce_loss(xs, torch.from_numpy(target), mode=mode)
            value.backward()
            assert torch.isfinite(value) and torch.isfinite(xs.grad).all()
            assert (value.item() < 1e-3) if sign > 0 else (value.item() > 5.0)
    x = x64.clone().requires_grad_(True)
    value = SF.distance_penalty_ce_loss(x, torch.from_numpy(target),
                                        torch.zeros(2, 7, 9, dtype=torch.bool), mode=mode)
    value.backward()
    assert value.item() == 0.0 and torch.all(x.grad == 0)


@pytest.mark.parametrize("mode", MODES)
def test_gradient_treats_the_map_as_constant(mode):
    """Autograd gives d/dx of (1 + phi) CE with phi frozen as a constant."""
    logits, target, mask, kw = R.variant_case(mode, 3, 2, "mask")
    inp = R.Inputs(logits, target, mask, mode=mode)
    d = R._per_item(R.dist_to_boundary, inp.t > 0.5, inp.valid)
    d_max = np.where(inp.valid, d, 0).reshape(*d.shape[:2], -1).max(-1)
    phi = 1.0 - d / np.maximum(d_max, 1e-12).reshape(*d.shape[:2], 1, 1, 1)
    phi = np.where(d_max.reshape(*d.shape[:2], 1, 1, 1) > 0, phi, 0.0)
    t = torch.from_numpy(inp.t)
    if mode == "multiclass":
        phi = (inp.t * phi).sum(1, keepdims=True)
    phi_t = torch.from_numpy(phi)
    x = torch.from_numpy(logits).requires_grad_(True)
    SF.distance_penalty_ce_loss(x, torch.from_numpy(target), torch.from_numpy(mask),
                                reduction="sum", **kw).backward()
    x2 = torch.from_numpy(logits).requires_grad_(True)
    if mode == "multiclass":
        ce = -(t * torch.log_softmax(x2, 1)).sum(1, keepdim=True)
        valid = torch.from_numpy(inp.valid[:, :1]).double()
    else:
        ce = torch.nn.functional.binary_cross_entropy_with_logits(x2, t, reduction="none")
        valid = torch.from_numpy(inp.valid).double()
    per_sample = ((1 + phi_t) * ce * valid).flatten(1).sum(1) / valid.flatten(1).sum(1)
    per_sample.sum().backward()
    torch.testing.assert_close(x.grad, x2.grad, rtol=1e-10, atol=1e-14)


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
    logits, target, mask, kw = R.variant_case("multiclass", 2, 0, "mask_weights")
    value = SF.distance_penalty_ce_loss(torch.from_numpy(logits).to(device),
                                        torch.from_numpy(target).to(device),
                                        torch.from_numpy(mask).to(device), reduction="none",
                                        **kw)
    assert value.device.type == device.type
    np.testing.assert_allclose(
        value.cpu().numpy(), R.distance_penalty_ce(logits, target, mask, reduction="none", **kw),
        rtol=1e-6)
