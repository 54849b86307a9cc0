"""Fixtures of the Triton kernel tests: compiled kernels on CUDA, Triton's interpreter on CPU.

Without a GPU, ``TRITON_INTERPRET=1`` must be set before Triton and the module defining the
kernels are imported: ``@triton.jit`` (also on Triton's own ``tl.sum``, ``tl.max``...) picks
the interpreter when the decorator runs. This file sets it when it is loaded, which pytest
does before it imports any test module of this folder.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest
import torch

HAS_CUDA = torch.cuda.is_available()

if not HAS_CUDA:
    os.environ["TRITON_INTERPRET"] = "1"


@pytest.fixture(scope="session")
def kernels() -> ModuleType:
    """``seglosses.kernels.triton_losses``, with interpreted kernels when there is no GPU."""
    pytest.importorskip("triton")
    import triton.language as tl

    module = importlib.import_module("seglosses.kernels.triton_losses")
    if not HAS_CUDA:
        interpreted = all(type(fn).__name__ == "InterpretedFunction"
                          for fn in (tl.sum, module._sigmoid_stats_fwd_kernel))
        if not interpreted:
            pytest.skip("Triton was imported in this process before TRITON_INTERPRET=1 was set, "
                        "so its kernels cannot run on CPU; run tests/kernels in its own process")
    return module


@pytest.fixture
def device() -> torch.device:
    """The one device the kernels run on here: CUDA when present, else the CPU interpreter."""
    return torch.device("cuda" if HAS_CUDA else "cpu")


@pytest.fixture
def small_blocks(kernels: ModuleType, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """Shrink the launch constants so that tiny tensors span several programs."""
    monkeypatch.setattr(kernels, "MAX_BLOCK", 64)
    monkeypatch.setattr(kernels, "MIN_BLOCK", 16)
    monkeypatch.setattr(kernels, "TILE", 128)
    monkeypatch.setattr(kernels, "MIN_TILE_VOXELS", 8)
    return kernels
