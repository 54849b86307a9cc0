"""Loss profiles (plot-loss) checked by hand, and the figures' files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from seglosses.bench.plots import loss_profile, plot_loss_profiles


def test_bce_profile_by_hand() -> None:
    prof = loss_profile("bce", foreground=0.25)
    assert prof.error == ""
    # Every pixel gives probability p to its true class: BCE = -log p; a foreground pixel's
    # d loss / d logit is (p - 1) / N, times N pixels.
    np.testing.assert_allclose(prof.value, -np.log(prof.prob), rtol=1e-6)
    np.testing.assert_allclose(prof.grad, prof.prob - 1, rtol=1e-6, atol=1e-9)


def test_dice_profile_by_hand() -> None:
    prof = loss_profile("dice", foreground=0.25, size=4)  # 16 pixels, 4 foreground
    p = prof.prob
    tp, sum_p, sum_t = 4 * p, 4 * p + 12 * (1 - p), 4.0
    np.testing.assert_allclose(prof.value, 1 - (2 * tp + 1) / (sum_p + sum_t + 1), rtol=1e-6)
    # d/dp_i of the loss for a foreground pixel, times dp/dz = p (1 - p), times 16 pixels.
    denom = sum_p + sum_t + 1
    dldp = -(2 * denom - (2 * tp + 1)) / denom**2
    np.testing.assert_allclose(prof.grad, dldp * p * (1 - p) * 16, rtol=1e-5)


def test_profiles_figure_small_multiples(tmp_path: Path) -> None:
    names = ["bce", "dice", "jaccard", "tversky", "focal_tversky", "log_cosh_dice", "focal",
             "weighted_bce", "balanced_bce", "sensitivity_specificity", "combo"]
    path, profiles = plot_loss_profiles(names, tmp_path / "p.png")
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert [p.name for p in profiles] == names and not any(p.error for p in profiles)
    with pytest.raises(ValueError, match="foreground"):
        loss_profile("bce", foreground=1.0)
