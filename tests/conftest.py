"""Shared fixtures: devices, seeds, doctest namespace."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest
import torch

# Without a GPU, the Triton kernels run (in their tests) under Triton's CPU interpreter, which
# must be chosen before anything imports Triton.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

# Tests never write to the user's data cache.
os.environ["SEGLOSSES_CACHE"] = tempfile.mkdtemp(prefix="seglosses-test-cache-")

# Two pytest-xdist workers on two cores: one thread each avoids oversubscription.
torch.set_num_threads(1)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> torch.device:
    return torch.device(request.param)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
    np.random.seed(0)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
