"""Argument checks with one message format.

Every user-facing error of the package is raised from here, so the wording is uniform:
the argument's name, what was received, and what was expected. Shape checks always run;
data-dependent value checks (label ranges, targets in [0, 1]) force a device sync and can be
switched off with :func:`set_validation`.
"""

from __future__ import annotations

import difflib
from typing import Any, Iterable, Sequence

import torch
from torch import Tensor

_STATE = {"validate": True}


def set_validation(enabled: bool) -> None:
    """Switch the data-dependent value checks on or off (shape checks always run).

    Value checks such as "labels lie in [0, C)" read tensor values and therefore synchronise
    with the device; switch them off in a training loop once the pipeline is known to be right.

    Example:
        >>> import seglosses
        >>> seglosses.set_validation(False)
        >>> seglosses.get_validation()
        False
        >>> seglosses.set_validation(True)
    """
    if not isinstance(enabled, bool):
        raise TypeError(f"`enabled` must be a bool; got {type(enabled).__name__}")
    _STATE["validate"] = enabled


def get_validation() -> bool:
    """Whether data-dependent value checks are on.

    They are always off while ``torch.compile`` traces a loss: reading tensor values would
    break the graph.
    """
    return _STATE["validate"] and not torch.compiler.is_compiling()


def shape_str(shape: Iterable[int]) -> str:
    """Format a shape as ``(2, 3, 64)``."""
    dims = tuple(int(d) for d in shape)
    return "(" + ", ".join(str(d) for d in dims) + ("," if len(dims) == 1 else "") + ")"


def check_tensor(value: Any, name: str) -> Tensor:
    """Require a tensor."""
    if not isinstance(value, Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor; got {type(value).__name__}")
    return value


def check_floating(value: Tensor, name: str) -> None:
    """Require a floating-point tensor."""
    if not value.is_floating_point():
        raise TypeError(
            f"`{name}` must be a floating-point tensor (float16, bfloat16, float32 or float64); "
            f"got dtype {value.dtype}"
        )


def check_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    """Require one of a fixed set of strings, suggesting the closest on a miss."""
    if not isinstance(value, str) or value not in choices:
        hint = ""
        if isinstance(value, str):
            close = difflib.get_close_matches(value, list(choices), n=1)
            if close:
                hint = f" (did you mean {close[0]!r}?)"
        raise ValueError(f"`{name}` must be one of {list(choices)}; got {value!r}{hint}")
    return value


def check_spatial_rank(tensor: Tensor, name: str, leading: int = 2, hint: str = "") -> None:
    """Require ``leading`` leading dims followed by 1 to 3 spatial dims.

    ``hint``, when given, is appended to the message (e.g. how to fix the layout).
    """
    spatial = tensor.dim() - leading
    if spatial < 1 or spatial > 3:
        layout = "(B, C, *S)" if leading == 2 else "(B, *S)"
        raise ValueError(
            f"`{name}` must have shape {layout} with 1 to 3 spatial dims, i.e. "
            f"{leading + 1} to {leading + 3} dims; got {tensor.dim()} dims with shape "
            f"{shape_str(tensor.shape)}" + (f" ({hint})" if hint else "")
        )


def check_nonempty(tensor: Tensor, name: str) -> None:
    """Require at least one element."""
    if tensor.numel() == 0:
        raise ValueError(f"`{name}` must not be empty; got shape {shape_str(tensor.shape)}")


def check_same_device(a: Tensor, a_name: str, b: Tensor, b_name: str) -> None:
    """Require two tensors on one device."""
    if a.device != b.device:
        raise ValueError(
            f"`{b_name}` must be on the same device as `{a_name}` ({a.device}); got {b.device}"
        )


def check_number(value: Any, name: str, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False, allow_none: bool = False) -> None:
    """Require a real number within an interval (closed unless told open)."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"`{name}` must be a number; got {type(value).__name__} {value!r}")
    bad = (
        (low is not None and (value < low or (low_open and value == low)))
        or (high is not None and (value > high or (high_open and value == high)))
        or value != value
    )
    if bad:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        interval = f"{lo}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi}"
        raise ValueError(f"`{name}` must lie in {interval}; got {value!r}")


def check_int(value: Any, name: str, *, low: int | None = None,
              high: int | None = None) -> None:
    """Require an integer, optionally at least ``low`` and at most ``high``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"`{name}` must be an int; got {type(value).__name__} {value!r}")
    too_low = low is not None and value < low
    too_high = high is not None and value > high
    if too_low or too_high:
        if low is not None and high is not None:
            raise ValueError(f"`{name}` must lie in [{low}, {high}]; got {value}")
        bound = f">= {low}" if too_low else f"<= {high}"
        raise ValueError(f"`{name}` must be {bound}; got {value}")


#: integer view and bit pattern of 1.0 for the fast [0, 1] check
_UNIT_INTERVAL_BITS = {torch.float32: (torch.int32, 0x3F800000),
                       torch.float64: (torch.int64, 0x3FF0000000000000)}


def check_values_in_unit_interval(tensor: Tensor, name: str, valid: Tensor | None = None) -> None:
    """Value check: every (valid) entry lies in [0, 1]."""
    if not get_validation() or tensor.dtype == torch.bool:
        return
    # fast path: one pass, no boolean indexing; entries that do not count are replaced by an
    # in-range value, so the verdict is that of the valid entries alone
    if tensor.numel() == 0:
        return
    tensor = tensor.detach()  # a target that requires grad is read, never differentiated
    probe = tensor if valid is None else torch.where(valid, tensor, 0.0)
    bits = _UNIT_INTERVAL_BITS.get(probe.dtype)
    if bits is not None:
        # IEEE floats >= +0 order like their bit patterns read as integers, and integer
        # min/max runs about twice as fast: [+0, 1] is [0, bits of 1.0]; negative values
        # (also -0.0) and NaN fall outside and get the exact check below
        probe = probe.view(bits[0])
    low, high = torch.aminmax(probe)
    lo, hi = low.item(), high.item()
    if 0 <= lo and hi <= (1 if bits is None else bits[1]):
        return
    values = tensor if valid is None else tensor[valid.expand_as(tensor)]
    if values.numel() == 0:
        return
    lo, hi = float(values.min()), float(values.max())
    if lo < 0 or hi > 1 or lo != lo or hi != hi:
        raise ValueError(
            f"`{name}` values must lie in [0, 1]; got values in [{lo:g}, {hi:g}]"
        )


def check_labels(labels: Tensor, name: str, num_classes: int, ignore_index: int | None) -> None:
    """Value check: integer labels in [0, C) or ``ignore_index``."""
    if not get_validation():
        return
    # fast path: one pass, no boolean indexing (ignored voxels replaced by the valid label 0)
    if labels.numel() == 0:
        return
    probe = labels if ignore_index is None else labels.masked_fill(labels == ignore_index, 0)
    low, high = torch.aminmax(probe)
    lo, hi = low.item(), high.item()
    if 0 <= lo and hi < num_classes:
        return
    values = labels if ignore_index is None else labels[labels != ignore_index]
    if values.numel() == 0:
        return
    lo, hi = int(values.min()), int(values.max())
    if lo < 0 or hi >= num_classes:
        extra = "" if ignore_index is None else f" or ignore_index={ignore_index}"
        raise ValueError(
            f"`{name}` class indices must lie in [0, {num_classes}){extra} for C = {num_classes} "
            f"channels; got labels in [{lo}, {hi}]"
        )


def check_supported_mode(mode: str, supported: Sequence[str], loss: str) -> None:
    """Require a loss to be used only in the modes it supports."""
    if mode not in supported:
        raise ValueError(
            f"`mode` {mode!r} is not supported by loss {loss!r}; supported modes: {list(supported)}"
        )
