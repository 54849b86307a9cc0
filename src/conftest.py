"""Doctest set-up: every docstring example runs seeded, with torch in its namespace."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _doctest_env(doctest_namespace: dict) -> None:
    torch.manual_seed(0)
    doctest_namespace["torch"] = torch
