"""Property tests: random shapes, modes and parameters give finite values in the documented range."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import seglosses

NAMES = seglosses.list_losses()


def _param_strategy(default):
    """A valid neighbourhood of a default parameter value."""
    if isinstance(default, bool):
        return st.booleans()
    if isinstance(default, float):
        if 0.0 < default < 1.0:
            return st.floats(0.05, 0.95)
        if default >= 1.0:
            return st.floats(0.5 * default, 2.0 * default)
    return st.just(default)


@st.composite
def loss_inputs(draw, name):
    info = seglosses.loss_info(name)
    mode = draw(st.sampled_from(info.modes))
    ndim = draw(st.integers(1, 3))
    spatial = tuple(draw(st.lists(st.integers(1, 7), min_size=ndim, max_size=ndim)))
    batch = draw(st.integers(1, 3))
    channels = 1 if mode == "binary" else draw(st.integers(2, 4))
    scale = draw(st.sampled_from([0.1, 1.0, 5.0, 30.0]))
    seed = draw(st.integers(0, 2**31 - 1))
    params = {k: draw(_param_strategy(v)) for k, v in info.defaults().items()}
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, channels, *spatial, generator=g) * scale
    if mode == "multiclass":
        target = torch.randint(0, channels, (batch, *spatial), generator=g)
    else:
        soft = draw(st.booleans())
        target = torch.rand(batch, channels, *spatial, generator=g)
        target = target if soft else (target > draw(st.floats(0.0, 1.0))).float()
    use_mask = draw(st.booleans())
    mask = torch.rand(batch, 1, *spatial, generator=g) > 0.2 if use_mask else None
    return mode, logits, target, mask, params


@pytest.mark.parametrize("name", NAMES)
def test_random_inputs_finite_and_in_range(name):
    info = seglosses.loss_info(name)

    @settings(max_examples=12, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(loss_inputs(name))
    def check(case):
        mode, logits, target, mask, params = case
        x = logits.clone().requires_grad_(True)
        value = seglosses.get_loss(name, mode=mode, reduction="none", **params)(x, target, mask)
        assert torch.isfinite(value).all(), (params, value)
        lo, hi = info.value_range
        assert (value >= lo - 1e-5).all() and (value <= hi + 1e-5).all(), (params, value)
        value.sum().backward()
        assert torch.isfinite(x.grad).all()

    check()
