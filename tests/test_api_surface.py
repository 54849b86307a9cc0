"""The public surface is a promise: a removed or renamed name fails here on purpose.

After a deliberate change, update ``tests/api_surface.json`` in the same commit.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

import seglosses

SNAPSHOT = json.loads((Path(__file__).parent / "api_surface.json").read_text())


@pytest.mark.parametrize("module", [k for k in SNAPSHOT if k.startswith("seglosses")])
def test_module_surface(module):
    mod = importlib.import_module(module)
    assert sorted(mod.__all__) == SNAPSHOT[module]
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.{name} is listed in __all__ but missing"


def test_registered_losses():
    assert seglosses.list_losses() == SNAPSHOT["losses"]


def test_readme_loss_table_lists_every_loss():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    for name in seglosses.list_losses():
        assert f"[`{name}`](docs/losses/{name}.md)" in readme, f"README misses {name}"
        assert (Path(__file__).parents[1] / "docs" / "losses" / f"{name}.md").is_file()
