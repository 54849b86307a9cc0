"""Loss registry: metadata, the ``register_loss`` decorator, ``get_loss`` and ``list_losses``."""

from __future__ import annotations

import difflib
import inspect
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import torch

from ._types import Family

if TYPE_CHECKING:  # pragma: no cover
    from .losses._base import SegLoss

SHARED_PARAMS: tuple[str, ...] = (
    "mode", "from_logits", "reduction", "include_background", "ignore_index", "class_weights",
)


@dataclass
class LossInfo:
    """What the registry knows about a loss.

    Attributes:
        name: registry name (``snake_case``).
        family: one of the survey's four families.
        source: primary source, "Authors Year".
        arxiv: arXiv identifier of the primary source, if any.
        summary: one line saying what the loss is.
        params: meaning of each loss-specific parameter (defaults come from the signature).
        modes: the modes the loss supports.
        value_range: documented (low, high) range of the per-sample value.
        differentiable: whether ``gradcheck`` applies (smooth almost everywhere in the logits).
        compilable: whether ``torch.compile(fullgraph=True)`` is expected to work.
        needs_distance_maps: whether the loss computes distance transforms of masks.
        in_paper: whether the loss is one of the survey's nine experiment losses.
        batch_dependent: whether a sample's value depends on the other samples of the batch
            (e.g. a weight computed from the whole batch target).
        notes: where we differ from the survey or peers, and why.
    """

    name: str
    family: Family | str
    source: str
    arxiv: str | None = None
    summary: str = ""
    params: dict[str, str] = field(default_factory=dict)
    modes: tuple[str, ...] = ("binary", "multilabel", "multiclass")
    value_range: tuple[float, float] = (0.0, math.inf)
    differentiable: bool = True
    compilable: bool = True
    needs_distance_maps: bool = False
    in_paper: bool = False
    batch_dependent: bool = False
    notes: str = ""
    cls: Any = None
    function: Callable[..., torch.Tensor] | None = None

    def __post_init__(self) -> None:
        self.family = Family(self.family)

    def defaults(self) -> dict[str, Any]:
        """Loss-specific parameters and their defaults, read from the function signature."""
        if self.function is None:
            return {}
        sig = inspect.signature(self.function)
        return {
            name: p.default for name, p in sig.parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY and name not in SHARED_PARAMS
        }


_REGISTRY: dict[str, LossInfo] = {}


def register_loss(info: LossInfo) -> Callable[[type], type]:
    """Class decorator registering a :class:`~seglosses.losses._base.SegLoss` subclass."""

    def deco(cls: type) -> type:
        if info.name in _REGISTRY:
            raise ValueError(f"loss {info.name!r} is already registered")
        info.cls = cls
        info.function = cls.__dict__["function"].__func__
        cls.info = info  # type: ignore[attr-defined]
        _REGISTRY[info.name] = info
        return cls

    return deco


def _ensure_loaded() -> None:
    from . import losses  # noqa: F401  (importing registers every loss)


def list_losses() -> list[str]:
    """Sorted registry names of every loss.

    Example:
        >>> import seglosses
        >>> "dice" in seglosses.list_losses()
        True
    """
    _ensure_loaded()
    return sorted(_REGISTRY)


def loss_info(name: str) -> LossInfo:
    """Metadata of one registered loss; unknown names raise ``ValueError`` with suggestions."""
    _ensure_loaded()
    if not isinstance(name, str):
        raise TypeError(f"`name` must be a str; got {type(name).__name__}")
    key = name.strip()
    if key not in _REGISTRY:
        close = difflib.get_close_matches(key, list(_REGISTRY), n=3, cutoff=0.5)
        hint = f"; closest: {', '.join(close)}" if close else ""
        raise ValueError(
            f"`name` {name!r} is not a registered loss{hint}. Known losses: "
            f"{', '.join(sorted(_REGISTRY))}"
        )
    return _REGISTRY[key]


def accepted_params(info: LossInfo) -> list[str]:
    """Every keyword the loss's constructor accepts."""
    return list(SHARED_PARAMS) + list(info.defaults())


_TOKEN = re.compile(r"\s*(?:(?P<num>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)"
                    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>[+*]))")


def parse_expression(expr: str) -> list[tuple[float, str]]:
    """Parse ``"0.5*dice + 0.5*bce"`` into ``[(0.5, "dice"), (0.5, "bce")]`` (never ``eval``).

    Grammar: ``term ("+" term)*`` with ``term = [number "*"] name ["*" number]``.

    Example:
        >>> parse_expression("0.5*dice + bce*2")
        [(0.5, 'dice'), (2.0, 'bce')]
    """
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = expr.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise ValueError(
                f"`name` {expr!r} is not a valid loss expression: unexpected {text[pos:]!r} at "
                f"position {pos}; expected e.g. '0.5*dice + 0.5*bce'"
            )
        kind = m.lastgroup or ""
        tokens.append((kind, m.group(kind)))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    terms: list[tuple[float, str]] = []
    i = 0

    def fail(why: str) -> ValueError:
        return ValueError(
            f"`name` {expr!r} is not a valid loss expression ({why}); expected terms like "
            f"'0.5*dice' joined by '+'"
        )

    while True:
        weight = 1.0
        if i < len(tokens) and tokens[i][0] == "num":
            weight = float(tokens[i][1])
            i += 1
            if i >= len(tokens) or tokens[i] != ("op", "*"):
                raise fail("a number must be followed by '*'")
            i += 1
        if i >= len(tokens) or tokens[i][0] != "name":
            raise fail("missing loss name")
        name = tokens[i][1]
        i += 1
        if i < len(tokens) and tokens[i] == ("op", "*"):
            if i + 1 >= len(tokens) or tokens[i + 1][0] != "num":
                raise fail("'*' after a name must be followed by a number")
            weight *= float(tokens[i + 1][1])
            i += 2
        terms.append((weight, name))
        if i == len(tokens):
            return terms
        if tokens[i] != ("op", "+"):
            raise fail(f"unexpected {tokens[i][1]!r}")
        i += 1
        if i == len(tokens):
            raise fail("dangling '+'")


def get_loss(name: str, **params: Any) -> SegLoss | Any:
    """Build a loss module by registry name, or a weighted sum such as ``"0.5*dice + 0.5*bce"``.

    Args:
        name: a name from :func:`list_losses`, or a weighted sum of names.
        **params: the shared parameters (``mode``, ``from_logits``, ``reduction``,
            ``include_background``, ``ignore_index``, ``class_weights``) and, for a single loss,
            its own parameters. An expression accepts only the shared parameters, given to every
            term.

    Raises:
        ValueError: unknown name (the closest names are listed) or malformed expression.
        TypeError: a parameter the loss does not accept.

    Example:
        >>> import torch, seglosses
        >>> loss = seglosses.get_loss("0.5*dice + 0.5*bce")
        >>> logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]])
        >>> target = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
        >>> loss(logits, target)
        tensor(0.2047)
    """
    from .losses.compound.compound import CompoundLoss

    _ensure_loaded()
    if not isinstance(name, str):
        raise TypeError(f"`name` must be a str; got {type(name).__name__}")
    if "+" in name or "*" in name:
        terms = parse_expression(name)
        extra = sorted(set(params) - set(SHARED_PARAMS))
        if extra:
            raise TypeError(
                f"a loss expression accepts only the shared parameters {list(SHARED_PARAMS)}; got "
                f"{extra}; build the terms with get_loss(name, ...) and combine them with + and *"
            )
        return CompoundLoss([(w, get_loss(n, **params)) for w, n in terms])
    info = loss_info(name)
    allowed = accepted_params(info)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise TypeError(
            f"loss {info.name!r} got unexpected parameter(s) {unknown}; it accepts {allowed}"
        )
    return info.cls(**params)
