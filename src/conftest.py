"""Doctest set-up: every docstring example runs seeded, with torch in its namespace."""

from __future__ import annotations

import importlib.util
import os
import tempfile

import pytest
import torch

# Without a GPU, the Triton kernels run (in their tests) under Triton's CPU interpreter, which
# must be chosen before anything imports Triton.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

os.environ.setdefault("SEGLOSSES_CACHE", tempfile.mkdtemp(prefix="seglosses-doctest-cache-"))
torch.set_num_threads(1)

if importlib.util.find_spec("triton") is None:  # the kernel module needs this optional package
    collect_ignore = ["seglosses/kernels/triton_losses.py"]


@pytest.fixture(autouse=True)
def _doctest_env(doctest_namespace: dict) -> None:
    torch.manual_seed(0)
    doctest_namespace["torch"] = torch
