"""Segmentation metrics on hard masks, batched, on the inputs' device.

Every metric takes ``pred, target`` of shape (B, C, *S) with 1 to 3 spatial dims (bool, or
integer / float thresholded at 0.5) and returns a (B, C) float32 tensor. See
``docs/metrics.md`` for the definitions and the policies for empty masks.
"""

from __future__ import annotations

from .accumulator import MetricAccumulator
from .overlap import accuracy, dice, iou, one_hot, precision, sensitivity, specificity
from .surface import assd, hausdorff, hd95, surface, surface_dice

__all__ = [
    "MetricAccumulator", "accuracy", "assd", "dice", "hausdorff", "hd95", "iou", "one_hot",
    "precision", "sensitivity", "specificity", "surface", "surface_dice",
]
