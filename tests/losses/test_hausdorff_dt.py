"""Hausdorff-DT loss (Karimi & Salcudean 2019): l = (p - t)^2 (d_t^alpha + d_p^alpha)."""

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
    R.check_against_reference(SF.hausdorff_dt_loss, R.hausdorff_dt, mode, ndim, variant,
                              rtol=rtol)


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0, 3.0])
def test_reference_values_alpha(alpha):
    for mode in MODES:
        R.check_against_reference(SF.hausdorff_dt_loss, R.hausdorff_dt, mode, 2, "mask",
                                  alpha=alpha)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("mode", MODES)
def test_reductions_match_reference(mode, reduction):
    R.check_reduction_against_reference(SF.hausdorff_dt_loss, R.hausdorff_dt, mode, 3, 4,
                                        reduction)


def test_hand_computed():
    # 2x2 target [[1, 0], [0, 0]], p = 0.5 everywhere: no voxel has p > 0.5, so d_p = 0;
    # d_t = [[1, 1], [1, sqrt 2]]; (p - t)^2 = 0.25: L = 0.25 * (1 + 1 + 1 + 2) / 4
    target = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    x = torch.zeros(1, 1, 2, 2)
    torch.testing.assert_close(SF.hausdorff_dt_loss(x, target), torch.tensor(0.3125))
    # alpha = 1: L = 0.25 * (3 + sqrt 2) / 4
    torch.testing.assert_close(SF.hausdorff_dt_loss(x, target, alpha=1.0),
                               torch.tensor(0.25 * (3 + math.sqrt(2)) / 4))
    # logits [[2, 2], [-2, -2]]: predicted region = top row, d_p = 1 everywhere;
    # d_t^2 + d_p^2 = [[2, 2], [2, 3]], p = sigmoid(+-2)
    x = torch.tensor([[[[2.0, 2.0], [-2.0, -2.0]]]])
    hi, lo = 1 / (1 + math.exp(-2)), 1 / (1 + math.exp(2))
    expected = ((1 - hi) ** 2 * 2 + hi ** 2 * 2 + lo ** 2 * 2 + lo ** 2 * 3) / 4
    torch.testing.assert_close(SF.hausdorff_dt_loss(x, target), torch.tensor(expected))


@pytest.mark.parametrize("mode", MODES)
def test_edge_cases(mode):
    logits, target = R.random_case(mode, 2, 0)
    for t in R.empty_and_full(target, mode):
        # empty or full target: d_t = 0, only the prediction's map remains
        got = SF.hausdorff_dt_loss(torch.from_numpy(logits), torch.from_numpy(t), mode=mode,
                                   reduction="none")
        want = R.hausdorff_dt(logits, t, mode=mode, reduction="none")
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)
        assert (got > 0).all()
    # perfect prediction: (p - t)^2 vanishes; wrong prediction: finite and large
    R.check_saturated(SF.hausdorff_dt_loss, logits, target, mode, perfect_below=1e-6,
                      wrong_above=0.1)
    R.check_all_masked(SF.hausdorff_dt_loss, logits, target, mode)


@pytest.mark.parametrize("mode", MODES)
def test_gradient_treats_the_maps_as_constant(mode):
    """Autograd gives d/dx of the formula with d_t and d_p frozen as constants."""
    logits, target, mask, kw = R.variant_case(mode, 2, 2, "mask")
    inp = R.Inputs(logits, target, mask, mode=mode)
    d_t = R._per_item(R.dist_to_boundary, inp.t > 0.5, inp.valid)
    d_p = R._per_item(R.dist_to_boundary, inp.predicted(), inp.valid)
    weight = torch.from_numpy(d_t ** 2 + d_p ** 2)

    def per_voxel(x):
        p = torch.softmax(x, 1) if mode == "multiclass" else torch.sigmoid(x)
        t = torch.from_numpy(inp.t)
        return (p - t) ** 2 * weight, torch.from_numpy(inp.valid).double()

    R.check_gradient_with_frozen_maps(SF.hausdorff_dt_loss, logits, target, mask, kw, per_voxel)


def test_multiclass_two_classes_equals_binary():
    R.check_two_classes_equal_binary(SF.hausdorff_dt_loss, include_background=(True, False),
                                     ndim=3)


def test_multiclass_prediction_is_the_argmax_class():
    """Where no class reaches p > 0.5, the voxel still belongs to its most probable class."""
    # 1-D, 3 classes; voxel 1 has p = (0.4, 0.3, 0.3): predicted class 0, not "no class"
    p = torch.tensor([[[0.8, 0.4, 0.1, 0.1], [0.1, 0.3, 0.8, 0.1], [0.1, 0.3, 0.1, 0.8]]])
    labels = torch.tensor([[0, 0, 1, 2]])
    value = SF.hausdorff_dt_loss(p, labels, from_logits=False, reduction="none")
    want = R.hausdorff_dt(p.numpy(), labels.numpy(), mode="multiclass", from_logits=False,
                          reduction="none")
    np.testing.assert_allclose(value.numpy(), want, rtol=1e-6)
    # the predicted map of class 0 covers voxels 0 and 1: d_p = [2, 1, 1, 2] for class 0
    inp = R.Inputs(p.numpy(), labels.numpy(), mode="multiclass", from_logits=False)
    assert inp.predicted()[0, 0].tolist() == [True, True, False, False]


@pytest.mark.filterwarnings("ignore::UserWarning")
class TestMatchesMonai:
    """MONAI 1.x ``HausdorffDTLoss``: same definition (d = edt(fg) + edt(bg) of the channel,
    thresholded at 0.5, all-zero for an empty or full channel, mean over voxels, then over
    channels and batch)."""

    @pytest.fixture(autouse=True)
    def _monai(self):
        self.monai = pytest.importorskip("monai.losses", minversion=None)
        pytest.importorskip("monai", minversion="1.3")

    @pytest.mark.parametrize("ndim", [2, 3])
    @pytest.mark.parametrize("mode", ["binary", "multilabel"])
    def test_sigmoid_modes(self, mode, ndim):
        for seed in range(3):
            logits, target = R.random_case(mode, ndim, seed)
            x, t = torch.from_numpy(logits), torch.from_numpy(target)
            ours = SF.hausdorff_dt_loss(x, t, mode=mode, reduction="none")
            peer = self.monai.HausdorffDTLoss(sigmoid=True, include_background=True,
                                              reduction="none")(x, t)
            torch.testing.assert_close(ours, peer.flatten(1).mean(1), rtol=1e-6, atol=1e-9)
            peer_mean = self.monai.HausdorffDTLoss(sigmoid=True, include_background=True)(x, t)
            torch.testing.assert_close(SF.hausdorff_dt_loss(x, t, mode=mode), peer_mean,
                                       rtol=1e-6, atol=1e-9)

    @pytest.mark.parametrize("ndim", [2, 3])
    def test_multiclass_with_a_majority_class(self, ndim):
        """With softmax, ``p_c > 0.5`` (MONAI) and the arg-max class (ours) agree wherever
        some class has p > 0.5; MONAI's default ``include_background=False`` matches ours
        with ``include_background=False``."""
        for seed in range(3):
            _, labels = R.random_case("multiclass", ndim, seed, classes=4)
            rng = np.random.default_rng(seed)
            onehot = np.moveaxis(np.eye(4)[labels], -1, 1)
            logits = rng.standard_normal(onehot.shape) * 0.5 + 3.0 * (2 * onehot - 1)
            x = torch.from_numpy(logits)
            assert (torch.softmax(x, 1).amax(1) > 0.5).all()
            y = torch.from_numpy(labels)
            for include_background in (True, False):
                ours = SF.hausdorff_dt_loss(x, y, include_background=include_background)
                peer = self.monai.HausdorffDTLoss(softmax=True, to_onehot_y=True,
                                                  include_background=include_background)(
                    x, y.unsqueeze(1))
                torch.testing.assert_close(ours, peer, rtol=1e-6, atol=1e-9)
            default_peer = self.monai.HausdorffDTLoss(softmax=True, to_onehot_y=True)(
                x, y.unsqueeze(1))
            torch.testing.assert_close(SF.hausdorff_dt_loss(x, y, include_background=False),
                                       default_peer, rtol=1e-6, atol=1e-9)

    def test_multiclass_differs_without_a_majority_class(self):
        """Documented difference: MONAI leaves voxels with no class above 0.5 out of every
        predicted region; we assign them to their arg-max class."""
        rng = np.random.default_rng(0)
        x = torch.from_numpy(rng.standard_normal((2, 4, 7, 9)) * 0.3)
        y = torch.from_numpy(rng.integers(0, 4, (2, 7, 9)))
        assert (torch.softmax(x, 1).amax(1) < 0.5).all()
        ours = SF.hausdorff_dt_loss(x, y)
        peer = self.monai.HausdorffDTLoss(softmax=True, to_onehot_y=True,
                                          include_background=True)(x, y.unsqueeze(1))
        assert not torch.allclose(ours, peer, rtol=1e-3)


def test_spacing_scales_distances():
    logits, target = R.random_case("multilabel", 2, 5)
    x, t = torch.from_numpy(logits), torch.from_numpy(target)
    plain = SF.hausdorff_dt_loss(x, t, reduction="none")
    torch.testing.assert_close(SF.hausdorff_dt_loss(x, t, reduction="none", spacing=1),
                               plain)
    # isotropic spacing s scales both maps by s, the loss by s^alpha
    torch.testing.assert_close(SF.hausdorff_dt_loss(x, t, reduction="none", spacing=0.5,
                                                    alpha=3.0),
                               0.125 * SF.hausdorff_dt_loss(x, t, reduction="none", alpha=3.0),
                               rtol=1e-6, atol=1e-12)


def test_module_and_registry():
    loss = seglosses.get_loss("hausdorff_dt", alpha=1.5)
    assert isinstance(loss, seglosses.HausdorffDTLoss)
    assert "alpha=1.5" in repr(loss)
    info = seglosses.loss_info("hausdorff_dt")
    assert info.family == seglosses.Family.BOUNDARY and info.needs_distance_maps
    assert info.defaults() == {"alpha": 2.0, "spacing": None}


def test_errors():
    x = torch.zeros(1, 1, 4, 5)
    t = torch.zeros(1, 1, 4, 5)
    with pytest.raises(ValueError, match="alpha"):
        SF.hausdorff_dt_loss(x, t, alpha=-1.0)
    with pytest.raises(TypeError, match="alpha"):
        SF.hausdorff_dt_loss(x, t, alpha="2")
    with pytest.raises(ValueError, match="spacing"):
        SF.hausdorff_dt_loss(x, t, spacing=(1.0,) * 3)
    with pytest.raises(ValueError, match="spacing"):
        SF.hausdorff_dt_loss(x, t, spacing=-1.0)


def test_runs_on_device(device):
    R.check_on_device(SF.hausdorff_dt_loss, R.hausdorff_dt, "multilabel", 3, "mask", device)