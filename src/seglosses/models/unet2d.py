"""A plain 2D U-Net (Ronneberger et al. 2015) with configurable depth and width."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._validation import check_choice, check_int, check_number

NORMS = ("batch", "group", "none")
UPSAMPLINGS = ("transpose", "bilinear")


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        groups = next(g for g in (8, 4, 2, 1) if channels % g == 0)
        return nn.GroupNorm(groups, channels)
    return nn.Identity()


class ConvBlock(nn.Sequential):
    """Two 3x3 convolutions, each followed by a normalisation and a ReLU."""

    def __init__(self, in_channels: int, out_channels: int, norm: str = "batch",
                 dropout: float = 0.0) -> None:
        bias = norm == "none"
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=bias),
            _norm(norm, out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=bias),
            _norm(norm, out_channels),
            nn.ReLU(inplace=True),
        ]
        if dropout > 0:
            layers.append(nn.Dropout2d(dropout))
        super().__init__(*layers)


class UNet2d(nn.Module):
    """2D U-Net returning logits.

    ``depth`` max-pooling steps, each halving the resolution and doubling the channels
    (``width * 2**level``), mirrored by ``depth`` upsampling steps with skip connections.
    Any input size of at least ``2**depth`` pixels per side works: where pooling drops an
    odd row or column, the upsampled map is zero-padded back to the size of its skip map.

    Args:
        in_channels: channels of the input image.
        out_channels: channels of the output logits (1 for binary segmentation).
        depth: number of pooling steps (>= 1).
        width: channels of the first level (>= 1).
        norm: ``"batch"`` (BatchNorm), ``"group"`` (GroupNorm) or ``"none"``.
        upsampling: ``"transpose"`` (2x2 transposed convolution) or ``"bilinear"``
            (bilinear interpolation followed by a 1x1 convolution).
        dropout: dropout rate applied after the bottleneck block.

    Shape:
        input (B, in_channels, H, W), output (B, out_channels, H, W).

    Example:
        >>> from seglosses.models import UNet2d
        >>> net = UNet2d(depth=2, width=4)
        >>> net(torch.zeros(2, 1, 37, 50)).shape
        torch.Size([2, 1, 37, 50])
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 1, depth: int = 4,
                 width: int = 16, *, norm: str = "batch", upsampling: str = "transpose",
                 dropout: float = 0.0) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels),
                            ("depth", depth), ("width", width)):
            check_int(value, name, low=1)
        check_choice(norm, "norm", NORMS)
        check_choice(upsampling, "upsampling", UPSAMPLINGS)
        check_number(dropout, "dropout", low=0, high=1, high_open=True)
        self.depth = depth
        self.width = width
        chans = [width * 2**level for level in range(depth + 1)]
        self.encoders = nn.ModuleList()
        previous = in_channels
        for level in range(depth):
            self.encoders.append(ConvBlock(previous, chans[level], norm))
            previous = chans[level]
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = ConvBlock(chans[depth - 1], chans[depth], norm, dropout)
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for level in reversed(range(depth)):
            if upsampling == "transpose":
                up: nn.Module = nn.ConvTranspose2d(chans[level + 1], chans[level], 2, stride=2)
            else:
                up = nn.Sequential(
                    nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                    nn.Conv2d(chans[level + 1], chans[level], 1),
                )
            self.ups.append(up)
            self.decoders.append(ConvBlock(2 * chans[level], chans[level], norm))
        self.head = nn.Conv2d(chans[0], out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Logits of the same spatial size as ``x``."""
        if x.dim() != 4:
            raise ValueError(f"`x` must have shape (B, C, H, W); got {tuple(x.shape)}")
        smallest = 2**self.depth
        if x.shape[-2] < smallest or x.shape[-1] < smallest:
            raise ValueError(
                f"`x` must be at least {smallest}x{smallest} pixels for depth={self.depth}; "
                f"got {x.shape[-2]}x{x.shape[-1]}"
            )
        skips = []
        for encoder in self.encoders:
            x = encoder(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for up, decoder, skip in zip(self.ups, self.decoders, reversed(skips)):
            x = up(x)
            dh = skip.shape[-2] - x.shape[-2]
            dw = skip.shape[-1] - x.shape[-1]
            if dh or dw:
                x = F.pad(x, (0, dw, 0, dh))
            x = decoder(torch.cat([skip, x], dim=1))
        return self.head(x)
