"""The one place where loss inputs are validated, activated, one-hot encoded and masked.

Every loss calls :func:`prepare` first. What it returns holds the probabilities, their logs
(computed from the logits in log space), a float target of the logits' shape, the valid-voxel
weights built from ``mask`` and ``ignore_index``, the channels that enter region terms and the
class weights. Loss bodies then only state their formula.
"""

from __future__ import annotations

from typing import Any, Callable, Generic, Sequence, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor

from .._types import MODES, ClassWeights, ResolvedMode
from .._validation import (
    check_choice,
    check_floating,
    check_labels,
    check_nonempty,
    check_same_device,
    check_spatial_rank,
    check_tensor,
    check_values_in_unit_interval,
    get_validation,
    shape_str,
)

#: Probabilities given with ``from_logits=False`` are clamped to [EPS, 1 - EPS] before any log.
EPS = 1e-7


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Computation runs in at least fp32, in fp64 for fp64 input."""
    return torch.float64 if dtype == torch.float64 else torch.float32


_CPU_MATH_WARM = False


def _cpu_eager(x: Tensor) -> bool:
    """Whether the CPU-specific eager kernels of this module apply: a CPU tensor outside
    ``torch.compile`` (the compiler fuses the plain formulas itself; CUDA has its own path)."""
    return x.device.type == "cpu" and not torch.compiler.is_compiling()


def warm_cpu_math(x: Tensor) -> None:
    """Put the process in the state where PyTorch's float32 ``log1p`` runs at full speed.

    With the PyTorch 2.14 CPU wheels on our AMD EPYC machines, float32 ``torch.log1p`` (and
    ``logsigmoid``, ``softplus`` and ``binary_cross_entropy_with_logits``, built on it) runs 10
    to 20 times slower in a fresh process than after the first vectorized ``torch.pow`` with a
    non-integer exponent, in every thread and with identical results (docs/performance.md).
    The first CPU call of a loss runs one such ``pow`` on 256 numbers (microseconds); nothing
    else changes. Skipped under ``torch.compile``, whose kernels do not use these paths.
    """
    global _CPU_MATH_WARM
    if _CPU_MATH_WARM or x.device.type != "cpu" or torch.compiler.is_compiling():
        return
    torch.pow(torch.full((256,), 1.5), 2.5)
    _CPU_MATH_WARM = True


def log1mexp(log_p: Tensor) -> Tensor:
    """``log(1 - exp(a))`` for ``a <= 0``, accurate over the whole range (Maechler 2012)."""
    log_p = log_p.clamp(max=0.0)
    cut = -0.6931471805599453
    safe_hi = torch.where(log_p > cut, log_p, torch.full_like(log_p, cut))
    safe_lo = torch.where(log_p > cut, torch.full_like(log_p, cut), log_p)
    hi = torch.log(-torch.expm1(safe_hi).clamp(max=-torch.finfo(log_p.dtype).tiny))
    lo = torch.log1p(-torch.exp(safe_lo))
    return torch.where(log_p > cut, hi, lo)


def _softplus_neg_abs(x: Tensor) -> Tensor:
    """``log(1 + exp(-|x|))``, the term shared by ``log sigmoid(x)`` and ``log sigmoid(-x)``;
    computed without autograd (see :class:`_LogSigmoid`) and in place: on CPU every fresh
    full-size buffer costs page faults."""
    with torch.no_grad():
        return x.abs().neg_().exp_().log1p_()


class _LogSigmoid(torch.autograd.Function):
    """``log sigmoid(x)`` (or ``log sigmoid(-x)`` with ``negate``) from the shared term
    ``log(1 + exp(-|x|))``: ``min(x, 0) - term`` (``min(-x, 0) - term``), as ATen computes it.

    The gradient, ``sigmoid(-x)`` (``-sigmoid(x)`` with ``negate``), is written with
    differentiable operations of ``x``, so double backward works.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, term: Tensor, negate: bool) -> Tensor:
        ctx.save_for_backward(x)
        ctx.negate = negate
        low = (-x).clamp_(max=0.0) if negate else x.clamp(max=0.0)
        return low.sub_(term)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        (x,) = ctx.saved_tensors
        if torch.is_grad_enabled():  # double backward: out of place, so it is recorded
            if ctx.negate:
                return -grad * torch.sigmoid(x), None, None
            return grad * torch.sigmoid(-x), None, None
        if ctx.negate:
            return torch.sigmoid(x).mul_(grad).neg_(), None, None
        return torch.neg(x).sigmoid_().mul_(grad), None, None


def binary_cross_entropy_from_logits(x: Tensor, t: Tensor) -> Tensor:
    """``-[t log sigmoid(x) + (1 - t) log sigmoid(-x)]`` without cancellation, no autograd.

    It equals ``log(1 + e^x) - t x = log(e^{-t x} + e^{(1 - t) x})``, one ``logaddexp``
    (``max(a, b) + log1p(exp(-|a - b|))`` with ``|a - b| = |x|``) of two terms of which the
    larger is ``max(-t x, (1 - t) x) >= 0``: exact for targets in {0, 1} and accurate to
    rounding for soft ones, also for confident voxels. PyTorch's
    ``binary_cross_entropy_with_logits`` computes ``(1 - t) x - log sigmoid(x)``, which
    cancels for confident negatives: at ``x = -20, t = 0`` it returns 0 for ``2.1e-9``.
    """
    tx = t * x
    rest = x - tx
    return torch.logaddexp(tx.neg_(), rest)


class _BinaryCrossEntropy(torch.autograd.Function):
    """:func:`binary_cross_entropy_from_logits` in one node: the gradient ``sigmoid(x) - t``
    is one buffer, where the formula would run a dozen full-size nodes. ``t`` is a constant
    here."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, t: Tensor) -> Tensor:
        ctx.save_for_backward(x, t)
        return binary_cross_entropy_from_logits(x, t)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        x, t = ctx.saved_tensors
        if torch.is_grad_enabled():  # double backward: out of place, so it is recorded
            return (torch.sigmoid(x) - t) * grad, None
        return torch.sigmoid(x).sub_(t).mul_(grad), None


_T = TypeVar("_T")


class cached_property(Generic[_T]):  # noqa: N801  (drop-in for functools.cached_property)
    """A lazily computed attribute, stored in the instance on first access.

    ``functools.cached_property`` takes a lock on Python < 3.12, which ``torch.compile``
    cannot trace; this descriptor does the same caching without it.
    """

    def __init__(self, func: Callable[[Any], _T]) -> None:
        self.func = func
        self.attrname = func.__name__
        self.__doc__ = func.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.attrname = name

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        value = self.func(instance)
        instance.__dict__[self.attrname] = value
        return value


class Prepared:
    """Validated, activated loss inputs (see :func:`prepare`).

    Attributes:
        mode: the resolved mode, ``"binary"``, ``"multilabel"`` or ``"multiclass"``.
        raw: the logits (or probabilities) as given, (B, C, *S).
        dtype: the compute dtype, float32 (float64 for float64 input).
        values: ``raw`` in the compute dtype (converted on first use).
        target: float target of the logits' shape (B, C, *S) in the compute dtype; one-hot for
            integer multiclass labels; zero on ignored voxels.
        labels: int64 (B, *S) class indices for integer multiclass targets (ignored voxels set
            to 0), else ``None``.
        weight: float valid-voxel weights, shape (B, 1, *S) or (B, C, *S), 1 where a voxel
            counts and 0 where it is masked or ignored; ``None`` when every voxel counts.
        class_weights: (C,) tensor or ``None``.
        channels: the channel indices that enter region terms (``include_background``).
        spatial_dims: the spatial dimensions of the (B, C, *S) layout.
    """

    def __init__(self, *, mode: ResolvedMode, raw: Tensor, from_logits: bool,
                 target: Tensor | None, labels: Tensor | None, weight: Tensor | None,
                 class_weights: Tensor | None, channels: list[int]) -> None:
        self.mode = mode
        self.raw = raw
        self.dtype = compute_dtype(raw.dtype)
        if raw.dtype == self.dtype:
            vars(self)["values"] = raw
        self.from_logits = from_logits
        if target is not None:  # else built from ``labels`` on first use
            vars(self)["target"] = target
        elif labels is None:
            raise ValueError("Prepared needs a target or labels")
        self.labels = labels
        self.weight = weight
        self.class_weights = class_weights
        self.channels = channels
        self.spatial_dims = tuple(range(2, raw.dim()))

    @cached_property
    def values(self) -> Tensor:
        """The input in the compute dtype (float32, or float64 for float64 input), converted
        on first use: the fused GPU kernels read half-precision logits as they are."""
        return self.raw.to(self.dtype)

    @cached_property
    def target(self) -> Tensor:
        """The one-hot target of integer labels, built on first use (a loss that needs only
        the labels, such as the cross-entropy, never builds it)."""
        labels = self.labels
        assert labels is not None
        # one-hot in the logits' own (B, C, *S) layout: F.one_hot gives channels-last
        # strides, which slow down every later op that mixes it with p
        t = torch.zeros(self.raw.shape, dtype=self.dtype,
                        device=self.raw.device).scatter_(1, labels.unsqueeze(1), 1.0)
        return t if self.weight is None else t.mul_(self.weight)

    @property
    def num_classes(self) -> int:
        """C, the number of channels."""
        return self.raw.shape[1]

    @property
    def batch_size(self) -> int:
        """B."""
        return self.raw.shape[0]

    @property
    def logits(self) -> Tensor:
        """The logits in the compute dtype (``from_logits=True`` only)."""
        if not self.from_logits:
            raise ValueError("this loss needs logits; it cannot be used with from_logits=False")
        return self.values

    @cached_property
    def prob(self) -> Tensor:
        """p: sigmoid (binary, multilabel) or softmax over C (multiclass); the input itself
        when ``from_logits=False``."""
        if not self.from_logits:
            return self.values
        if self.mode == "multiclass":
            return torch.softmax(self.values, dim=1)
        return torch.sigmoid(self.values)

    @cached_property
    def prob_complement(self) -> Tensor:
        """1 - p, accurate where p is near 1: ``sigmoid(-x)`` from binary or multilabel
        logits (``1 - sigmoid(x)`` rounds to 0 for x above about 17 in float32)."""
        if self.from_logits and self.mode != "multiclass":
            return torch.sigmoid(-self.values)
        return 1.0 - self.prob

    @cached_property
    def _clamped(self) -> Tensor:
        return self.values.clamp(EPS, 1.0 - EPS)

    @cached_property
    def log_prob(self) -> Tensor:
        """log p, from log-sigmoid / log-softmax of the logits."""
        if not self.from_logits:
            return torch.log(self._clamped)
        if self.mode == "multiclass":
            return torch.log_softmax(self.values, dim=1)
        if _cpu_eager(self.values):
            return _LogSigmoid.apply(self.values, self._softplus_term, False)
        return F.logsigmoid(self.values)

    @cached_property
    def log_one_minus_prob(self) -> Tensor:
        """log(1 - p), from log-sigmoid(-x) or a stable log1mexp of the log-softmax."""
        if not self.from_logits:
            return torch.log1p(-self._clamped)
        if self.mode == "multiclass":
            return log1mexp(self.log_prob)
        if _cpu_eager(self.values):
            return _LogSigmoid.apply(self.values, self._softplus_term, True)
        return F.logsigmoid(-self.values)

    @cached_property
    def _softplus_term(self) -> Tensor:
        """``log(1 + exp(-|x|))`` of the logits, shared by ``log p`` and ``log(1 - p)``."""
        return _softplus_neg_abs(self.values)

    def binary_cross_entropy(self) -> Tensor:
        """Per-voxel ``-[t log p + (1 - t) log(1 - p)]``, (B, C, *S), binary/multilabel.

        The same values as the formula on :attr:`log_prob` and :attr:`log_one_minus_prob`, to
        rounding. From logits on CPU it is one fused node that needs neither log tensor (see
        :func:`binary_cross_entropy_from_logits`); elsewhere it is the formula itself.
        """
        t = self.target
        if self.from_logits and self.mode != "multiclass" and _cpu_eager(self.values) \
                and not t.requires_grad:
            return _BinaryCrossEntropy.apply(self.values, t)
        return -(t * self.log_prob + (1.0 - t) * self.log_one_minus_prob)

    @cached_property
    def valid(self) -> Tensor | None:
        """Bool valid-voxel map matching :attr:`weight`, or ``None``."""
        return None if self.weight is None else self.weight > 0


def _as_weight(cw: ClassWeights, num_classes: int, channels: Sequence[int], device: torch.device,
               dtype: torch.dtype) -> Tensor | None:
    if cw is None:
        return None
    if isinstance(cw, Tensor):
        w = cw.detach().to(device=device, dtype=dtype).flatten()
        if cw.dim() != 1:
            raise ValueError(
                f"`class_weights` must be a 1-D sequence of {num_classes} weights; got shape "
                f"{shape_str(cw.shape)}"
            )
    else:
        try:
            w = torch.tensor([float(v) for v in cw], device=device, dtype=dtype)
        except (TypeError, ValueError):
            raise TypeError(
                f"`class_weights` must be a sequence of numbers or a tensor; got {cw!r}")
    if w.numel() != num_classes:
        raise ValueError(
            f"`class_weights` must hold one weight per channel, C = {num_classes}; got "
            f"{w.numel()} weights"
        )
    if not get_validation():
        return w
    if bool((w < 0).any()) or not bool(torch.isfinite(w).all()):
        raise ValueError(f"`class_weights` must be finite and non-negative; got {w.tolist()}")
    if float(w[list(channels)].sum()) <= 0:
        raise ValueError(
            f"`class_weights` must not be zero on every channel used {list(channels)}; got "
            f"{w.tolist()}"
        )
    return w


def resolve_mode(mode: str, logits: Tensor, target: Tensor) -> ResolvedMode:
    """Resolve ``mode="auto"`` from the target's dtype and shape (SPEC section 2)."""
    check_choice(mode, "mode", MODES)
    if mode != "auto":
        return mode  # type: ignore[return-value]
    integer = not target.is_floating_point() and target.dtype != torch.bool
    if integer and target.dim() == logits.dim() - 1:
        return "multiclass"
    if integer and target.dim() == logits.dim() and target.shape[1] == 1 and logits.shape[1] > 1:
        return "multiclass"
    return "binary" if logits.shape[1] == 1 else "multilabel"


def prepare(logits: Tensor, target: Tensor, mask: Tensor | None = None, *, mode: str = "auto",
            from_logits: bool = True, include_background: bool = True,
            ignore_index: int | None = None, class_weights: ClassWeights = None) -> Prepared:
    """Validate and activate the inputs of a loss.

    Args:
        logits: (B, C, *S) float tensor, 1 to 3 spatial dims (probabilities when
            ``from_logits=False``).
        target: binary/multilabel: same shape as ``logits`` with values in [0, 1];
            multiclass: integer (B, *S) (or (B, 1, *S)) indices, or a (B, C, *S) one-hot or
            probability map.
        mask: optional bool (B, 1, *S) or (B, *S); False voxels count nowhere.
        mode: ``"auto"``, ``"binary"``, ``"multilabel"`` or ``"multiclass"``.
        from_logits: whether ``logits`` holds logits (``True``) or probabilities.
        include_background: multiclass: whether channel 0 enters region terms.
        ignore_index: voxels whose target equals this value count nowhere.
        class_weights: optional per-channel weights.

    Returns:
        A :class:`Prepared` holding everything a loss body needs.

    Raises:
        TypeError: non-tensor input, non-float logits, float labels in index form, non-bool mask.
        ValueError: shape mismatch, wrong rank, empty input, C = 1 with multiclass, labels out
            of range, target outside [0, 1], bad ``class_weights``.

    Example:
        >>> import torch
        >>> p = prepare(torch.zeros(2, 3, 4, 4), torch.zeros(2, 4, 4, dtype=torch.long))
        >>> p.mode, tuple(p.target.shape), p.channels
        ('multiclass', (2, 3, 4, 4), [0, 1, 2])
    """
    check_tensor(logits, "logits")
    check_tensor(target, "target")
    check_floating(logits, "logits")
    check_spatial_rank(logits, "logits")
    check_nonempty(logits, "logits")
    check_same_device(logits, "logits", target, "target")
    if not isinstance(from_logits, bool):
        raise TypeError(f"`from_logits` must be a bool; got {type(from_logits).__name__}")
    if not isinstance(include_background, bool):
        raise TypeError(
            f"`include_background` must be a bool; got {type(include_background).__name__}"
        )
    if ignore_index is not None and (isinstance(ignore_index, bool)
                                     or not isinstance(ignore_index, int)):
        raise TypeError(f"`ignore_index` must be an int or None; got {ignore_index!r}")
    if target.is_complex():
        raise TypeError(f"`target` must be a real tensor; got dtype {target.dtype}")

    warm_cpu_math(logits)
    resolved = resolve_mode(mode, logits, target)
    dtype = compute_dtype(logits.dtype)
    b, c = logits.shape[:2]
    spatial = tuple(logits.shape[2:])
    device = logits.device
    weight: Tensor | None = None
    labels: Tensor | None = None

    if resolved == "multiclass":
        if c < 2:
            raise ValueError(
                f"`logits` must have C >= 2 channels for mode='multiclass'; got C = {c} (shape "
                f"{shape_str(logits.shape)}); use mode='binary' for one foreground channel"
            )
        index_shape = (b, *spatial)
        if target.shape == logits.shape and (target.is_floating_point()
                                             or target.dtype == torch.bool):
            t = target.to(dtype)
            check_values_in_unit_interval(t, "target")
        elif target.shape in (torch.Size(index_shape), torch.Size((b, 1, *spatial))):
            if target.is_floating_point() or target.dtype == torch.bool:
                raise TypeError(
                    f"`target` in class-index form must have an integer dtype for "
                    f"mode='multiclass'; got dtype {target.dtype} with shape "
                    f"{shape_str(target.shape)}"
                )
            idx = target.reshape(index_shape).long()
            check_labels(idx, "target", c, ignore_index)
            if ignore_index is not None:
                keep = idx != ignore_index
                weight = keep.unsqueeze(1).to(dtype)
                idx = torch.where(keep, idx, torch.zeros_like(idx))
            labels = idx
            t = None  # the one-hot target is built from the labels on first use
        else:
            raise ValueError(
                f"`target` must have shape (B, *S) = {shape_str(index_shape)} or (B, C, *S) = "
                f"{shape_str(logits.shape)} for mode='multiclass'; got {shape_str(target.shape)}"
            )
    else:
        if resolved == "binary" and c != 1:
            raise ValueError(
                f"`logits` must have C = 1 channel for mode='binary'; got C = {c} (shape "
                f"{shape_str(logits.shape)}); use mode='multilabel' or 'multiclass'"
            )
        if target.shape != logits.shape:
            raise ValueError(
                f"`target` must have the shape of `logits` {shape_str(logits.shape)} for "
                f"mode={resolved!r}; got {shape_str(target.shape)}"
            )
        if ignore_index is not None:
            keep = target != ignore_index
            weight = keep.to(dtype)
            t = torch.where(keep, target.to(dtype), torch.zeros((), dtype=dtype, device=device))
            check_values_in_unit_interval(t, "target", keep)
        else:
            t = target if target.dtype == dtype else target.to(dtype)
            check_values_in_unit_interval(t, "target")

    if mask is not None:
        check_tensor(mask, "mask")
        check_same_device(logits, "logits", mask, "mask")
        if mask.dtype != torch.bool:
            raise TypeError(f"`mask` must be a bool tensor; got dtype {mask.dtype}")
        if mask.shape == torch.Size((b, *spatial)):
            mask = mask.unsqueeze(1)
        elif mask.shape != torch.Size((b, 1, *spatial)):
            raise ValueError(
                f"`mask` must have shape (B, 1, *S) = {shape_str((b, 1, *spatial))} or (B, *S) = "
                f"{shape_str((b, *spatial))}; got {shape_str(mask.shape)}"
            )
        m = mask.to(dtype)
        weight = m if weight is None else weight * m

    if weight is not None and t is not None:
        t = t * weight

    if not from_logits and resolved != "multiclass":
        check_values_in_unit_interval(logits.detach(), "logits (probabilities, from_logits=False)")

    channels = list(range(1, c)) if (resolved == "multiclass" and not include_background) \
        else list(range(c))
    cw = _as_weight(class_weights, c, channels, device, dtype)
    return Prepared(mode=resolved, raw=logits, from_logits=from_logits, target=t,
                    labels=labels, weight=weight, class_weights=cw, channels=channels)
