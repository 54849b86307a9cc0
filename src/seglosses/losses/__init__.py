"""Loss modules. Importing this package registers every loss of every family package."""

from __future__ import annotations

import importlib
import pkgutil

from ._base import SegLoss
from .compound.compound import CompoundLoss

_FAMILIES = ("distribution", "region", "boundary", "compound")


def _import_all() -> None:
    for family in _FAMILIES:
        pkg = importlib.import_module(f"{__name__}.{family}")
        for mod in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
            if not mod.name.startswith("_"):
                importlib.import_module(f"{pkg.__name__}.{mod.name}")


_import_all()

__all__ = ["SegLoss", "CompoundLoss"]
