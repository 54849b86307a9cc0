"""Scalar formulas for the hand-computed test cases, in plain Python floats.

Written from the definitions (no NumPy, no torch, nothing from the library), so that a
hand-derived expected value stays independent of the code under test.
"""

from __future__ import annotations

import math


def sigmoid(x: float) -> float:
    """``1 / (1 + exp(-x))``."""
    return 1 / (1 + math.exp(-x))


def softplus(x: float) -> float:
    """``log(1 + exp(x))``: ``-log sigmoid(-x)``, the BCE of logit ``-x`` against 1."""
    return math.log1p(math.exp(x))


def bce(x: float, t: float) -> float:
    """Binary cross-entropy of logit ``x`` against target ``t``:
    ``-(t log sigmoid(x) + (1 - t) log(1 - sigmoid(x)))``."""
    return -(t * math.log(sigmoid(x)) + (1 - t) * math.log(sigmoid(-x)))
