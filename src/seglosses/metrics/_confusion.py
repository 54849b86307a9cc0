"""Shared stages of the metrics: input checks, binarisation, hard confusion counts."""

from __future__ import annotations

import torch
from torch import Tensor

from .._validation import (
    check_nonempty,
    check_number,
    check_same_device,
    check_spatial_rank,
    check_tensor,
    shape_str,
)


def binarize(x: Tensor) -> Tensor:
    """Hard mask of a metric input: bool as is, any other dtype ``> 0.5``."""
    return x if x.dtype == torch.bool else x > 0.5


def check_pair(pred: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Validate a ``(B, C, *S)`` pair of masks and return them as bool tensors.

    Raises:
        TypeError: not tensors, or complex dtypes.
        ValueError: shapes differ, fewer than 1 or more than 3 spatial dims, empty, or
            different devices.
    """
    check_tensor(pred, "pred")
    check_tensor(target, "target")
    for value, name in ((pred, "pred"), (target, "target")):
        if value.is_complex():
            raise TypeError(
                f"`{name}` must be a bool, integer or real floating tensor; got dtype {value.dtype}"
            )
    if pred.shape != target.shape:
        raise ValueError(
            f"`target` must have the shape of `pred` {shape_str(pred.shape)}; got "
            f"{shape_str(target.shape)}"
        )
    check_spatial_rank(pred, "pred", hint="add the channel dim with `unsqueeze(1)` or use "
                                          "`one_hot` for label maps")
    check_nonempty(pred, "pred")
    check_same_device(pred, "pred", target, "target")
    return binarize(pred), binarize(target)


def check_empty_value(value: float) -> None:
    """``empty_value`` is any real number (NaN allowed, to mark undefined cases)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"`empty_value` must be a number; got {type(value).__name__} {value!r}")


def confusion(pred: Tensor, target: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Hard TP, FP, FN, TN per (B, C) as float64 counts of two bool masks."""
    p = pred.flatten(2)
    t = target.flatten(2)
    tp = (p & t).sum(-1, dtype=torch.float64)
    ps = p.sum(-1, dtype=torch.float64)
    ts = t.sum(-1, dtype=torch.float64)
    total = float(p.shape[-1])
    fp = ps - tp
    fn = ts - tp
    tn = total - ps - fn
    return tp, fp, fn, tn


def ratio(num: Tensor, den: Tensor, empty_value: float) -> Tensor:
    """``num / den`` as float32, ``empty_value`` where ``den == 0``."""
    safe = torch.where(den > 0, den, torch.ones_like(den))
    out = torch.where(den > 0, num / safe, torch.full_like(num, float(empty_value)))
    return out.to(torch.float32)


def check_percentile(percentile: float) -> None:
    """Percentiles live in [0, 100]."""
    check_number(percentile, "percentile", low=0, high=100)
