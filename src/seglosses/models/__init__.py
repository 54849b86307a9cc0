"""Segmentation models used by the benchmark."""

from __future__ import annotations

from .unet2d import UNet2d

__all__ = ["UNet2d"]
