"""UNet2d: output shapes for odd sizes and depths, options, errors."""

from __future__ import annotations

import pytest
import torch

from seglosses.models import UNet2d


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
@pytest.mark.parametrize("size", [(16, 16), (17, 23), (33, 20), (31, 31)])
def test_output_shape_odd_sizes(depth: int, size: tuple[int, int]) -> None:
    if min(size) < 2**depth:
        pytest.skip("input smaller than the network's reach")
    net = UNet2d(in_channels=2, out_channels=3, depth=depth, width=2).eval()
    x = torch.randn(2, 2, *size)
    assert net(x).shape == (2, 3, *size)


@pytest.mark.parametrize("norm", ["batch", "group", "none"])
@pytest.mark.parametrize("upsampling", ["transpose", "bilinear"])
def test_options_train_and_backprop(norm: str, upsampling: str) -> None:
    net = UNet2d(depth=2, width=4, norm=norm, upsampling=upsampling, dropout=0.1)
    x = torch.randn(3, 1, 19, 22)
    out = net(x)
    assert out.shape == (3, 1, 19, 22)
    out.mean().backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert grads[0].abs().sum() > 0  # the first convolution receives gradient


def test_width_and_depth_set_the_channels() -> None:
    net = UNet2d(depth=3, width=5)
    assert net.encoders[0][0].out_channels == 5
    assert net.encoders[2][0].out_channels == 20
    assert net.bottleneck[0].out_channels == 40
    assert net.head.in_channels == 5


def test_seeded_initialisation_is_reproducible() -> None:
    torch.manual_seed(3)
    a = UNet2d(depth=2, width=4)
    torch.manual_seed(3)
    b = UNet2d(depth=2, width=4)
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(pa, pb)


def test_errors() -> None:
    with pytest.raises(ValueError, match=r"`depth` must be >= 1; got 0"):
        UNet2d(depth=0)
    with pytest.raises(TypeError, match=r"`width` must be an int; got float 2.5"):
        UNet2d(width=2.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"`dropout` must be a number; got str"):
        UNet2d(dropout="0.1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"`norm` must be one of .*got 'layer'"):
        UNet2d(norm="layer")
    with pytest.raises(ValueError, match=r"`upsampling` must be one of"):
        UNet2d(upsampling="nearest")
    with pytest.raises(ValueError, match=r"`dropout` must lie in \[0, 1\); got 1.0"):
        UNet2d(dropout=1.0)
    net = UNet2d(depth=3, width=2)
    with pytest.raises(ValueError, match=r"at least 8x8 pixels for depth=3; got 7x12"):
        net(torch.zeros(1, 1, 7, 12))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\); got \(1, 8, 8\)"):
        net(torch.zeros(1, 8, 8))
