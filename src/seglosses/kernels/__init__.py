"""Optional fused GPU kernels for the statistics core and the pixel losses.

The kernels live in :mod:`seglosses.kernels.triton_losses` and need Triton. Nothing here
imports Triton: :func:`is_available` tries it once, on first call, so that ``import
seglosses`` stays free of it. The eager torch code of the losses remains the CPU path and
the reference the kernels are tested against (see ``docs/kernels.md``).
"""

from __future__ import annotations

import functools
import os

import torch

__all__ = ["enabled", "is_available", "set_enabled", "use_for"]

#: ``set_enabled`` override: None follows the environment variable ``SEGLOSSES_TRITON``.
_ENABLED: bool | None = None
#: Run the kernels on CPU tensors too (tests only, under ``TRITON_INTERPRET=1``).
_ON_CPU = False


@functools.lru_cache(maxsize=None)
def is_available() -> bool:
    """Whether Triton can be imported, so that the fused kernels can be used.

    The import is attempted on the first call only; the answer is cached.

    Returns:
        True when ``import triton`` succeeds.
    """
    try:
        import triton  # noqa: F401
    except Exception:  # a missing package, or a broken install raising on import
        return False
    return True


def set_enabled(flag: bool | None) -> None:
    """Turn the fused kernels on (``True``), off (``False``), or back to the environment.

    By default the kernels are used for CUDA tensors whenever Triton is installed, unless
    the environment variable ``SEGLOSSES_TRITON`` is ``0``. Turning them off selects the
    eager PyTorch path everywhere (for example to differentiate a loss twice: the kernels
    have no double backward).

    Args:
        flag: True, False, or None for the environment's choice.

    Example:
        >>> import seglosses.kernels as kernels
        >>> kernels.set_enabled(False); kernels.enabled()
        False
        >>> kernels.set_enabled(None); kernels.enabled()
        True
    """
    global _ENABLED
    if flag is not None and not isinstance(flag, bool):
        raise TypeError(f"`flag` must be a bool or None; got {flag!r}")
    _ENABLED = flag


def enabled() -> bool:
    """Whether the fused kernels may be used (see :func:`set_enabled`)."""
    if _ENABLED is not None:
        return _ENABLED
    return os.environ.get("SEGLOSSES_TRITON", "1").strip().lower() not in ("0", "false", "off")


def use_for(x: torch.Tensor) -> bool:
    """Whether the losses run the fused kernels for the tensor ``x``: a CUDA tensor, kernels
    enabled, Triton installed, and not inside ``torch.compile`` (which fuses the eager
    formulas itself)."""
    if not (x.is_cuda or (_ON_CPU and x.device.type == "cpu")):
        return False
    return enabled() and not torch.compiler.is_compiling() and is_available()
