"""Doctest set-up: every docstring example runs seeded, with torch in its namespace."""

from __future__ import annotations

import os
import tempfile

import pytest
import torch

os.environ.setdefault("SEGLOSSES_CACHE", tempfile.mkdtemp(prefix="seglosses-doctest-cache-"))
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _doctest_env(doctest_namespace: dict) -> None:
    torch.manual_seed(0)
    doctest_namespace["torch"] = torch
