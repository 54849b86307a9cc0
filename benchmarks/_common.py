"""Timing, memory and environment helpers shared by the benchmark scripts.

Timing: the median of ``repeats`` timed calls after warm-up calls. On CPU each call is timed
with :func:`time.perf_counter`; on CUDA with a pair of CUDA events around the call, read after
one synchronisation at the end. Implementations compared in one row are timed in an
interleaved round-robin (A, B, A, B, ...) so that load changes on a shared machine hit them
alike.

Memory: "peak extra memory" of one call, in bytes above what was allocated before it.
On CUDA it is ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats`` minus
``torch.cuda.memory_allocated`` before the call. On CPU PyTorch keeps no allocator statistics,
so :class:`LiveTensorBytes` approximates the same quantity: a dispatch mode that sees every
tensor produced by an ATen operator (forward and backward), adds the size of its storage while
that storage lives and records the peak. It counts torch tensor storages only: buffers that a
peer allocates in NumPy or SciPy (e.g. MONAI's CPU distance transforms) are not seen, and
neither is scratch memory inside a single kernel.
"""

from __future__ import annotations

import datetime
import gc
import importlib
import os
import platform
import statistics
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

Fn = Callable[[], Any]


def sync(device: torch.device) -> None:
    """Wait for queued work on ``device`` (no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Timing:
    """Per-call times in milliseconds of one implementation."""

    times_ms: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.times_ms) if self.times_ms else float("nan")

    @property
    def spread(self) -> float:
        """Interquartile range relative to the median (0.1 = 10 %)."""
        if len(self.times_ms) < 4:
            return float("nan")
        q = statistics.quantiles(self.times_ms, n=4)
        return (q[2] - q[0]) / self.median


def time_interleaved(fns: Sequence[Fn], device: torch.device, *, warmup: int = 2,
                     repeats: int | None = None, min_repeats: int = 5, max_repeats: int = 50,
                     budget_s: float = 0.5, cap_s: float = 2.0) -> list[Timing]:
    """Time each of ``fns`` (one fwd+bwd call each), interleaved round-robin.

    With ``repeats`` given, every function runs exactly that many timed calls. Otherwise the
    number adapts to the cost: at most ``max_repeats`` rounds, stopping once the round-robin
    has used ``budget_s`` seconds (after warm-up) and ``min_repeats`` rounds are done, or
    ``cap_s`` seconds whatever the count (at least one round: calls of seconds are timed once).
    """
    for fn in fns:
        for _ in range(warmup):
            fn()
    sync(device)
    out = [Timing() for _ in fns]
    cuda = device.type == "cuda"
    events: list[list[tuple[Any, Any]]] = [[] for _ in fns]
    start_all = time.perf_counter()
    rounds = 0
    while True:
        for i, fn in enumerate(fns):
            if cuda:
                a = torch.cuda.Event(enable_timing=True)
                b = torch.cuda.Event(enable_timing=True)
                a.record()
                fn()
                b.record()
                events[i].append((a, b))
            else:
                t0 = time.perf_counter()
                fn()
                out[i].times_ms.append((time.perf_counter() - t0) * 1e3)
        rounds += 1
        if repeats is not None:
            if rounds >= repeats:
                break
        else:
            spent = time.perf_counter() - start_all
            if rounds >= max_repeats or spent >= cap_s or (
                    rounds >= min_repeats and spent >= budget_s):
                break
        if cuda and rounds % 8 == 0:
            sync(device)  # keep the host from queueing too far ahead of the timed work
    if cuda:
        sync(device)
        for i, pairs in enumerate(events):
            out[i].times_ms = [a.elapsed_time(b) for a, b in pairs]
    return out


class LiveTensorBytes(TorchDispatchMode):
    """Peak bytes of live tensor storages created by ATen operators while the mode is active.

    Storages are counted once (views and in-place results share them) and released when the
    storage is freed. See the module docstring for what this does and does not see.
    """

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._refs: dict[int, Any] = {}

    def _release(self, key: int, nbytes: int) -> None:
        if self._refs.pop(key, None) is not None:
            self.live -= nbytes

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        result = func(*args, **(kwargs or {}))
        for t in tree_flatten(result)[0]:
            if not isinstance(t, torch.Tensor):
                continue
            storage = t.untyped_storage()
            key = storage.data_ptr()
            nbytes = storage.nbytes()
            if nbytes == 0 or key in self._refs:
                continue
            self._refs[key] = weakref.ref(
                storage, lambda _r, k=key, n=nbytes: self._release(k, n))
            self.live += nbytes
            self.peak = max(self.peak, self.live)
        return result


def peak_extra_bytes(fn: Fn, device: torch.device) -> int | None:
    """Peak memory above the starting point during one call of ``fn``; ``None`` if it fails."""
    gc.collect()
    try:
        if device.type == "cuda":
            sync(device)
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
            fn()
            sync(device)
            return int(torch.cuda.max_memory_allocated(device) - base)
        with LiveTensorBytes() as mode:
            fn()
        return mode.peak
    except Exception:  # noqa: BLE001  (a peer failing under the tracker gives "n/a")
        return None


def copy_bandwidth(device: torch.device, nbytes: int = 256 * 2**20, repeats: int = 10) -> float:
    """Device memory bandwidth in bytes/s of a large tensor copy (read + write counted)."""
    n = nbytes // 4
    src = torch.empty(n, dtype=torch.float32, device=device).uniform_()
    dst = torch.empty_like(src)
    timing = time_interleaved([lambda: dst.copy_(src)], device, warmup=3, repeats=repeats)[0]
    return 2 * n * 4 / (timing.median / 1e3)


def warm_libm() -> None:
    """Put the process in the state where float32 ``log1p``-based CPU kernels run fast.

    With the PyTorch CPU wheel on our AMD EPYC test machine, float32 ``torch.log1p`` (and
    ``F.logsigmoid``, ``F.softplus`` and ``F.binary_cross_entropy_with_logits``, which use
    it) ran 10 to 20 times slower than ``torch.log`` in a fresh process, and at full speed
    for the rest of the process once a vectorized ``torch.pow`` with a non-integer exponent
    (or ``torch.lgamma``) had run. We did not pin the cause down (it lies in the math-library
    dispatch of the build). Benchmarks call this first so that every implementation is timed
    in the same, fast state whatever ran before; docs/performance.md gives both states.
    """
    a = torch.full((256,), 1.5)
    torch.pow(a, 2.5)
    torch.lgamma(a)


def warm_allocator(nbytes: int = 16 * 2**20) -> None:
    """Let the C allocator keep large blocks instead of returning them to the system.

    glibc serves blocks above its mmap threshold (128 KiB at start) with fresh pages and
    unmaps them on free, so every large temporary costs page faults, until a large block has
    been freed once: the threshold then rises to its size (and the trim threshold to twice
    that). A long-running training process gets there by itself; a fresh benchmark process
    would otherwise time page faults that depend on what ran before (we measured 500 faults
    per Dice call at 8x1x256x256, doubling its median). Touching and freeing one 16 MiB block
    at start removes that noise for every implementation alike.
    """
    block = torch.empty(nbytes // 4, dtype=torch.float32)
    block.fill_(0.0)
    del block


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (falls back to ``platform.processor()``)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def package_version(name: str) -> str:
    """Installed version of ``name``, or "absent"."""
    try:
        return str(importlib.import_module(name).__version__)
    except Exception:  # noqa: BLE001
        return "absent"


def environment(device: torch.device, packages: Sequence[str],
                load: Sequence[float] | None = None) -> dict[str, str]:
    """Device, threads, date, package versions and load average, for the report header.

    ``load``: the (1, 5, 15 min) load average to report, e.g. taken when the run started;
    default: now.
    """
    load = os.getloadavg() if load is None else load
    info = {
        "date": datetime.date.today().isoformat(),
        "cpu": f"{cpu_model()} ({os.cpu_count()} logical cores)",
        "threads": str(torch.get_num_threads()),
        "load average (1/5/15 min)": " / ".join(f"{v:.2f}" for v in load),
        "python": platform.python_version(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    for pkg in packages:
        info[pkg] = package_version(pkg)
    return info


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table with columns padded to a common width."""
    cells = [list(header)] + [list(r) for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def fmt_ms(value: float | None) -> str:
    if value is None or value != value:
        return "-"
    return f"{value:.3f}" if value < 1 else f"{value:.2f}" if value < 100 else f"{value:.0f}"


def fmt_mib(nbytes: int | None) -> str:
    if nbytes is None:
        return "n/a"
    return f"{nbytes / 2**20:.1f}"
