"""Forward + backward time and peak memory of every seglosses loss against its peers.

For every registered loss (``seglosses.list_losses()``) and every input shape, the script
times one forward + backward call (``torch.autograd.grad`` of the scalar loss with respect to
the logits) of seglosses and of the same loss in MONAI, segmentation-models-pytorch (smp),
kornia or PyTorch itself, where they have it, on the same inputs and in the same run.

- **Time**: each implementation gets two untimed calls (the first gives its value, the
  second its memory), then all implementations of a row are timed interleaved round-robin;
  the median (``--stat min``: the minimum) in milliseconds is reported. CPU calls are timed
  with ``time.perf_counter``, CUDA calls with CUDA events.
- **Memory**: peak memory of one call above what was allocated before it, in MiB. CUDA:
  ``torch.cuda.max_memory_allocated``; CPU: live torch tensor storages tracked by a dispatch
  mode (NumPy/SciPy buffers of a peer are not seen), see ``benchmarks/_common.py``.
- **Value**: "same" when both implementations gave the same loss on these inputs (within
  1e-4 times the larger of 1 and the values' magnitude). Where a peer pools or smooths
  differently by default, seglosses is configured to compute the peer's definition (the
  "ours params" column, e.g. ``batch=True`` against smp, whose region losses pool the
  batch), so a ratio is a like-for-like speed comparison where the value column says "same".
- **Floor** (CUDA only): the time to move the bytes a fused forward + backward must touch
  (read logits and target, read them again and write the gradient) at the copy bandwidth
  measured in the same run.
- **Process state**: the allocator and the math library are warmed first
  (``benchmarks/_common.py``); on CPU, the promised comparison (below) is also measured in a
  fresh process where the math library is not warmed. docs/performance.md explains why.

Usage::

    python benchmarks/bench_losses.py                      # CPU: the "cpu" shapes, 2 threads
    python benchmarks/bench_losses.py --device cuda        # CUDA: the "full" shapes
    python benchmarks/bench_losses.py --small --losses dice,focal
    python benchmarks/bench_losses.py --shapes full --cpu-threads 2 --repeats 5

Shapes (``--shapes``): ``full`` = 16x1x512x512 and 2x1x128^3 binary, 4x4x256x256 multiclass
(the CUDA default); ``cpu`` = 8x1x256x256 binary (the CPU comparison the project promises:
dice, tversky, focal, dice_ce and hausdorff_dt no slower than MONAI's), 2x1x48^3 binary and
4x4x128x128 multiclass (the CPU default, under two minutes on two cores); ``small``
(``--small``) = tiny shapes for a smoke run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    copy_bandwidth,
    environment,
    fmt_mib,
    fmt_ms,
    markdown_table,
    peak_extra_bytes,
    time_interleaved,
    warm_allocator,
    warm_libm,
)

import seglosses  # noqa: E402

SHAPE_SETS: dict[str, list[tuple[str, tuple[int, ...]]]] = {
    "full": [("binary", (16, 1, 512, 512)), ("binary", (2, 1, 128, 128, 128)),
             ("multiclass", (4, 4, 256, 256))],
    "cpu": [("binary", (8, 1, 256, 256)), ("binary", (2, 1, 48, 48, 48)),
            ("multiclass", (4, 4, 128, 128))],
    "small": [("binary", (2, 1, 64, 64)), ("binary", (1, 1, 16, 16, 16)),
              ("multiclass", (2, 3, 32, 32))],
}

#: The CPU comparison promised in docs/performance.md: these losses, this shape, 2 threads,
#: never slower than MONAI's equivalent.
PROMISE_LOSSES = ("dice", "tversky", "focal", "dice_ce", "hausdorff_dt")
PROMISE_SHAPE = (8, 1, 256, 256)

PEERS = ("monai", "smp", "kornia", "torch")


# --------------------------------------------------------------------------- inputs


@dataclass
class Inputs:
    """One input set; every implementation reads the target in the form it expects."""

    kind: str                      # "binary" or "multiclass"
    shape: tuple[int, ...]
    logits: torch.Tensor           # (B, C, *S) fp32, requires_grad
    target: torch.Tensor           # binary: float (B, 1, *S); multiclass: int64 (B, *S)
    onehot: torch.Tensor           # float (B, C, *S)
    labels_ch: torch.Tensor        # multiclass: int64 (B, 1, *S) (MONAI's to_onehot_y)

    @property
    def spatial_dims(self) -> int:
        return len(self.shape) - 2


def _blobs(b: int, c: int, spatial: tuple[int, ...], g: torch.Generator) -> torch.Tensor:
    """Smooth random fields (B, C, *S): coarse noise upsampled, so masks are blobs."""
    coarse = tuple(max(4, s // 16) for s in spatial)
    noise = torch.randn(b, c, *coarse, generator=g)
    interp = {1: "linear", 2: "bilinear", 3: "trilinear"}[len(spatial)]
    return F.interpolate(noise, size=spatial, mode=interp, align_corners=False)


def make_inputs(kind: str, shape: tuple[int, ...], device: torch.device, seed: int = 0) -> Inputs:
    """Blob-shaped targets and logits that roughly agree with them (plus noise)."""
    g = torch.Generator().manual_seed(seed)
    b, c, *spatial = shape
    field_ = _blobs(b, c, tuple(spatial), g)
    noise = torch.randn(shape, generator=g)
    if kind == "binary":
        target = (field_ > 0.3).float()
        logits = 3.0 * (2.0 * target - 1.0) + 2.5 * noise
        onehot = target
        labels_ch = target.long()
    else:
        labels = field_.argmax(dim=1)
        onehot = F.one_hot(labels, c).movedim(-1, 1).float()
        logits = 3.0 * onehot + 2.0 * noise
        target = labels
        labels_ch = labels.unsqueeze(1)
    return Inputs(
        kind=kind, shape=shape,
        logits=logits.to(device).requires_grad_(True),
        target=target.to(device), onehot=onehot.to(device), labels_ch=labels_ch.to(device),
    )


# --------------------------------------------------------------------------- peers

LossFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class PeerSpec:
    """One peer implementation of a loss, and the seglosses parameters that match it."""

    peer: str
    kinds: tuple[str, ...]
    build: Callable[[Inputs], LossFn]
    ours: dict[str, Any] = field(default_factory=dict)
    ours_multiclass: dict[str, Any] | None = None  # overrides ``ours`` for multiclass inputs
    note: str = ""

    def ours_for(self, kind: str) -> dict[str, Any]:
        if kind == "multiclass" and self.ours_multiclass is not None:
            return self.ours_multiclass
        return self.ours


def _monai():
    import monai.losses as ml

    return ml


def _smp():
    import segmentation_models_pytorch.losses as sl

    return sl


def _kornia():
    import kornia.losses as kl

    return kl


def _act(inp: Inputs) -> dict[str, bool]:
    return {"sigmoid": True} if inp.kind == "binary" else {"softmax": True, "to_onehot_y": True}


def _monai_target(inp: Inputs) -> torch.Tensor:
    return inp.target if inp.kind == "binary" else inp.labels_ch


def _monai_module(cls_name: str, **kw: Any) -> Callable[[Inputs], LossFn]:
    def build(inp: Inputs) -> LossFn:
        mod = getattr(_monai(), cls_name)(**_act(inp), **kw)
        t = _monai_target(inp)
        return lambda x: mod(x, t)
    return build


def _smp_module(cls_name: str, **kw: Any) -> Callable[[Inputs], LossFn]:
    def build(inp: Inputs) -> LossFn:
        mod = getattr(_smp(), cls_name)(mode=inp.kind, **kw)
        t = inp.target
        return lambda x: mod(x, t)
    return build


def _peer_focal_monai(inp: Inputs) -> LossFn:
    ml = _monai()
    if inp.kind == "binary":
        mod = ml.FocalLoss(gamma=2.0, alpha=0.25)
        return lambda x: mod(x, inp.target)
    mod = ml.FocalLoss(gamma=2.0, use_softmax=True, to_onehot_y=True)
    return lambda x: mod(x, inp.labels_ch)


def _peer_focal_kornia(inp: Inputs) -> LossFn:
    kl = _kornia()
    if inp.kind == "binary":
        return lambda x: kl.binary_focal_loss_with_logits(x, inp.target, alpha=0.25, gamma=2.0,
                                                          reduction="mean")
    return lambda x: kl.focal_loss(x, inp.target, alpha=None, gamma=2.0, reduction="mean")


def _peer_kornia_region(fn_name: str, **kw: Any) -> Callable[[Inputs], LossFn]:
    def build(inp: Inputs) -> LossFn:
        fn = getattr(_kornia(), fn_name)
        return lambda x: fn(x, inp.target, **kw)
    return build


def _peer_lovasz_kornia(inp: Inputs) -> LossFn:
    kl = _kornia()
    if inp.kind == "binary":
        labels = inp.target[:, 0]  # kornia takes (B, H, W) labels with one logit channel
        return lambda x: kl.lovasz_hinge_loss(x, labels)
    return lambda x: kl.lovasz_softmax_loss(x, inp.target)


def _probs(x: torch.Tensor, inp: Inputs) -> torch.Tensor:
    return torch.sigmoid(x) if inp.kind == "binary" else torch.softmax(x, dim=1)


def _peer_ssim_monai(inp: Inputs) -> LossFn:
    mod = _monai().SSIMLoss(spatial_dims=inp.spatial_dims, data_range=1.0, win_size=11,
                            kernel_sigma=1.5)
    return lambda x: mod(_probs(x, inp), inp.onehot)


def _peer_ssim_kornia(inp: Inputs) -> LossFn:
    kl = _kornia()
    fn = kl.ssim_loss if inp.spatial_dims == 2 else kl.ssim3d_loss
    # kornia returns (1 - SSIM) / 2; the factor 2 restores 1 - SSIM (a scalar op, no cost)
    return lambda x: 2.0 * fn(_probs(x, inp), inp.onehot, 11, max_val=1.0)


def _peer_bce_torch(inp: Inputs) -> LossFn:
    if inp.kind == "binary":
        return lambda x: F.binary_cross_entropy_with_logits(x, inp.target)
    return lambda x: F.cross_entropy(x, inp.target)


def _peer_hausdorff_monai(inp: Inputs) -> LossFn:
    mod = _monai().HausdorffDTLoss(alpha=2.0, include_background=True, **_act(inp))
    t = _monai_target(inp)
    return lambda x: mod(x, t)


BIN, MC = ("binary",), ("multiclass",)
BOTH = ("binary", "multiclass")

SPECS: dict[str, list[PeerSpec]] = {
    "bce": [PeerSpec("torch", BOTH, _peer_bce_torch,
                     note="F.binary_cross_entropy_with_logits / F.cross_entropy")],
    "dice": [
        PeerSpec("monai", BOTH, _monai_module("DiceLoss", smooth_nr=1.0, smooth_dr=1.0)),
        PeerSpec("smp", BOTH, _smp_module("DiceLoss", smooth=1.0),
                 ours={"batch": True, "smooth": 2.0},
                 note="smp pools the batch; its Dice is the Tversky index with alpha = beta "
                      "= 0.5, so its smooth s is our 2 s"),
        PeerSpec("kornia", MC, _peer_kornia_region("dice_loss", average="macro"),
                 ours={"smooth": 0.0}, note="kornia: no smoothing (eps 1e-8)"),
    ],
    "jaccard": [
        PeerSpec("monai", BOTH, _monai_module("DiceLoss", jaccard=True, smooth_nr=1.0,
                                               smooth_dr=1.0), ours={"smooth": 0.5},
                 note="MONAI jaccard=True with smooth 1 is ours with smooth 0.5"),
        PeerSpec("smp", BOTH, _smp_module("JaccardLoss", smooth=1.0), ours={"batch": True}),
    ],
    "tversky": [
        PeerSpec("monai", BOTH, _monai_module("TverskyLoss", alpha=0.3, beta=0.7, smooth_nr=1.0,
                                               smooth_dr=1.0)),
        PeerSpec("smp", BOTH, _smp_module("TverskyLoss", alpha=0.3, beta=0.7, smooth=1.0),
                 ours={"batch": True}),
        PeerSpec("kornia", MC, _peer_kornia_region("tversky_loss", alpha=0.3, beta=0.7),
                 ours={"smooth": 0.0}),
    ],
    "focal_tversky": [
        PeerSpec("smp", BOTH, _smp_module("TverskyLoss", alpha=0.3, beta=0.7, gamma=0.75,
                                          smooth=1.0), ours={"batch": True}),
    ],
    "focal": [
        PeerSpec("monai", BOTH, _peer_focal_monai, ours_multiclass={"alpha": None},
                 note="multiclass: MONAI also averages over the C channels"),
        PeerSpec("smp", BIN, _smp_module("FocalLoss", alpha=0.25, gamma=2.0)),
        PeerSpec("kornia", BOTH, _peer_focal_kornia, ours_multiclass={"alpha": None},
                 note="multiclass: kornia also averages over the C channels"),
    ],
    "dice_ce": [
        PeerSpec("monai", BOTH, _monai_module("DiceCELoss", smooth_nr=1.0, smooth_dr=1.0)),
    ],
    "dice_focal": [
        PeerSpec("monai", BIN, _monai_module("DiceFocalLoss", smooth_nr=1.0, smooth_dr=1.0,
                                              gamma=2.0, alpha=0.25)),
        PeerSpec("monai", MC, _monai_module("DiceFocalLoss", smooth_nr=1.0, smooth_dr=1.0,
                                            gamma=2.0), ours={"alpha": None},
                 note="multiclass: MONAI's focal term also averages over the C channels"),
    ],
    "generalized_dice": [
        PeerSpec("monai", MC, _monai_module("GeneralizedDiceLoss", smooth_nr=0.0,
                                            smooth_dr=0.0),
                 note="MONAI's smoothing is added outside the weighted sums; 0 here"),
    ],
    "hausdorff_dt": [PeerSpec("monai", BOTH, _peer_hausdorff_monai)],
    "boundary": [PeerSpec("monai", BOTH, _monai_module("BoundaryLoss"))],
    "cldice": [PeerSpec("monai", BOTH, _monai_module("SoftclDiceLoss", iter_=3, smooth_nr=1.0,
                                                     smooth_dr=1.0))],
    "lovasz": [
        PeerSpec("smp", BOTH, _smp_module("LovaszLoss", per_image=True)),
        PeerSpec("kornia", BOTH, _peer_lovasz_kornia),
    ],
    "ssim": [
        PeerSpec("monai", BOTH, _peer_ssim_monai),
        PeerSpec("kornia", BOTH, _peer_ssim_kornia, note="kornia's (1 - SSIM) / 2, times 2"),
    ],
}


# --------------------------------------------------------------------------- running


@dataclass
class Row:
    loss: str
    shape: str
    peer: str
    ours_ms: float
    peer_ms: float | None
    ours_mem: int | None
    peer_mem: int | None
    value: str
    floor_ms: float | None
    ours_params: dict[str, Any]

    @property
    def ratio(self) -> float | None:
        if self.peer_ms is None or not self.peer_ms:
            return None
        return self.ours_ms / self.peer_ms


def _shape_str(shape: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in shape)


def _ours_fn(name: str, params: dict[str, Any], inp: Inputs) -> LossFn:
    mod = seglosses.get_loss(name, **params)
    return lambda x: mod(x, inp.target)


def _fwd_bwd(fn: LossFn, x: torch.Tensor) -> Callable[[], Any]:
    def call() -> Any:
        loss = fn(x)
        return torch.autograd.grad(loss, x)
    return call


def _same(a: float, b: float) -> str:
    if not (math.isfinite(a) and math.isfinite(b)):
        return "nan"
    return "same" if abs(a - b) <= 1e-4 * max(1.0, abs(a), abs(b)) else "differs"


def _floor_ms(inp: Inputs, bandwidth: float | None) -> float | None:
    """Time to move the bytes a fused fwd+bwd must touch: read logits and target in the
    forward, read them again and write the gradient in the backward."""
    if bandwidth is None:
        return None
    x = inp.logits.numel() * inp.logits.element_size()
    t = inp.target.numel() * inp.target.element_size()
    return (2 * (x + t) + x) / bandwidth * 1e3


def _first_call(fn: LossFn, x: torch.Tensor) -> float:
    """One fwd+bwd call (the first warm-up); returns the loss value."""
    loss = fn(x)
    torch.autograd.grad(loss, x)
    return float(loss.detach())


def bench_group(name: str, inp: Inputs, peers: list[str], args: argparse.Namespace,
                bandwidth: float | None) -> list[Row]:
    """All rows of one (loss, shape): ours in each needed configuration and every peer.

    Each implementation gets two untimed calls: the first gives its value (and fails here if
    a peer cannot run the case), the second measures its peak memory (or is a plain warm-up
    with ``--no-memory``). Then all are timed interleaved.
    """
    info = seglosses.loss_info(name)
    if inp.kind not in info.modes:
        return []
    specs = [s for s in SPECS.get(name, []) if s.peer in peers and inp.kind in s.kinds]
    configs: list[dict[str, Any]] = [{}]
    for s in specs:
        if s.ours_for(inp.kind) not in configs:
            configs.append(s.ours_for(inp.kind))
    x = inp.logits
    runnable: list[LossFn] = []
    values: list[float] = []
    peer_index: list[int | None] = []
    peer_err: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for cfg in configs:
            fn = _ours_fn(name, cfg, inp)
            values.append(_first_call(fn, x))
            runnable.append(fn)
        for s in specs:
            try:
                fn = s.build(inp)
                values.append(_first_call(fn, x))
            except Exception as exc:  # noqa: BLE001  (a peer that cannot run this case)
                peer_index.append(None)
                peer_err.append(type(exc).__name__)
                continue
            peer_index.append(len(runnable))
            peer_err.append("")
            runnable.append(fn)
        calls = [_fwd_bwd(f, x) for f in runnable]
        if args.no_memory:
            mems: list[int | None] = [None] * len(calls)
            for call in calls:
                call()
        else:
            mems = [peak_extra_bytes(call, x.device) for call in calls]
        # the promised comparison gets more rounds: its ratios are the ones quoted
        promised = name in PROMISE_LOSSES and inp.shape == PROMISE_SHAPE
        scale = 3 if promised else 1
        timings = time_interleaved(calls, x.device, warmup=0, repeats=args.repeats,
                                   min_repeats=7 if promised else 3,
                                   max_repeats=args.max_repeats * scale,
                                   budget_s=args.budget * scale, cap_s=2.0 * scale)
    stat = [t.median if args.stat == "median" else min(t.times_ms) for t in timings]
    rows: list[Row] = []
    floor = _floor_ms(inp, bandwidth)
    shape = _shape_str(inp.shape)
    if not specs:
        rows.append(Row(name, shape, "-", stat[0], None, mems[0], None, "-", floor, {}))
    for s, k, err in zip(specs, peer_index, peer_err):
        cfg = s.ours_for(inp.kind)
        ci = configs.index(cfg)
        if k is None:
            rows.append(Row(name, shape, s.peer, stat[ci], None, mems[ci], None,
                            f"error ({err})", floor, cfg))
            continue
        rows.append(Row(name, shape, s.peer, stat[ci], stat[k], mems[ci], mems[k],
                        _same(values[ci], values[k]), floor, cfg))
    return rows


def _params_str(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


def render(rows: list[Row], cuda: bool) -> str:
    header = ["loss", "shape", "peer", "ours ms", "peer ms", "ours/peer", "ours MiB",
              "peer MiB", "value", "ours params"]
    if cuda:
        header.insert(6, "floor ms")
    out = []
    for r in rows:
        cells = [r.loss, r.shape, r.peer, fmt_ms(r.ours_ms), fmt_ms(r.peer_ms),
                 "-" if r.ratio is None else f"{r.ratio:.2f}", fmt_mib(r.ours_mem),
                 "-" if r.peer == "-" else fmt_mib(r.peer_mem), r.value,
                 _params_str(r.ours_params)]
        if cuda:
            cells.insert(6, fmt_ms(r.floor_ms))
        out.append(cells)
    return markdown_table(header, out)


def _promise_ratios(rows: list[Row]) -> dict[str, tuple[float, float]]:
    """(ours ms, MONAI ms) of the promised losses at the promised shape."""
    shape = _shape_str(PROMISE_SHAPE)
    out = {}
    for r in rows:
        if r.loss in PROMISE_LOSSES and r.shape == shape and r.peer == "monai" \
                and r.peer_ms is not None:
            out[r.loss] = (r.ours_ms, r.peer_ms)
    return out


def promise_summary(warm: dict[str, tuple[float, float]],
                    cold: dict[str, tuple[float, float]] | None) -> tuple[str, bool]:
    """The promised CPU comparison: ours / MONAI at 8x1x256x256 for the promised losses,
    in the warmed process of the main table and (if measured) in a fresh, cold process."""
    lines = []
    ok = True
    for name in PROMISE_LOSSES:
        cells = [name]
        verdict = []
        for label, found in (("warm", warm), ("cold", cold)):
            if found is None:
                continue
            if name not in found:
                cells += ["-", "-", "not measured"]
                ok = False
                continue
            ours, peer = found[name]
            ratio = ours / peer
            cells += [fmt_ms(ours), fmt_ms(peer), f"{ratio:.2f}"]
            if ratio > 1.0:
                verdict.append(f"slower ({label})")
                ok = False
        lines.append(cells + [", ".join(verdict) or "ok"])
    header = ["loss", "ours ms", "MONAI ms", "ours/MONAI"]
    if cold is not None:
        header = ["loss", "warm: ours ms", "MONAI ms", "ours/MONAI", "cold: ours ms",
                  "MONAI ms", "ours/MONAI"]
    return markdown_table(header + ["verdict"], lines), ok


def measure_cold_promise(args: argparse.Namespace) -> dict[str, tuple[float, float]] | None:
    """The promised comparison in a fresh process that never warms the math library."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--promise-only", "--device", "cpu",
           "--cpu-threads", str(args.cpu_threads), "--stat", args.stat, "--budget",
           str(args.budget), "--max-repeats", str(args.max_repeats), "--no-memory"]
    if args.repeats is not None:
        cmd += ["--repeats", str(args.repeats)]
    if args.no_validation:
        cmd.append("--no-validation")
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("PROMISE-JSON: "):
            return {k: tuple(v) for k, v in json.loads(line[len("PROMISE-JSON: "):]).items()}
    print(f"cold promise run failed:\n{done.stderr[-2000:]}", file=sys.stderr)
    return None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=["cpu", "cuda"], default=None,
                   help="default: cuda when available, else cpu")
    p.add_argument("--shapes", choices=sorted(SHAPE_SETS), default=None,
                   help="shape set; default: full on cuda, cpu on cpu")
    p.add_argument("--small", action="store_true", help="same as --shapes small")
    p.add_argument("--cpu-threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    p.add_argument("--losses", default="all",
                   help="comma-separated registry names (default: every registered loss)")
    p.add_argument("--peers", default=",".join(PEERS), help="comma-separated subset of "
                   f"{','.join(PEERS)}")
    p.add_argument("--repeats", type=int, default=None,
                   help="timed calls per implementation (default: adaptive, see --budget)")
    p.add_argument("--budget", type=float, default=0.3,
                   help="seconds of timed calls per (loss, shape) group when adaptive")
    p.add_argument("--max-repeats", type=int, default=50)
    p.add_argument("--stat", choices=["median", "min"], default="median",
                   help="statistic of the timed calls (min is steadier on a shared machine)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory column")
    p.add_argument("--no-validation", action="store_true",
                   help="seglosses.set_validation(False) (value checks off)")
    p.add_argument("--no-kernels", action="store_true",
                   help="seglosses.kernels.set_enabled(False): the eager path on CUDA too")
    p.add_argument("--check", action="store_true",
                   help="exit with status 1 if a promised CPU comparison is slower than MONAI")
    p.add_argument("--cold", action="store_true",
                   help="do not warm the math library first (see _common.warm_libm); the "
                        "state then changes during the run, when a loss first runs a pow")
    p.add_argument("--no-cold-promise", action="store_true",
                   help="skip the promised comparison in a fresh (cold) process")
    p.add_argument("--promise-only", action="store_true",
                   help="measure only the promised comparison against MONAI, in this process "
                        "as it starts (cold); prints its rows as JSON")
    p.add_argument("--out", type=Path, default=None, help="also write the report to this file")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    start_load = os.getloadavg()
    args = parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        print("--device cuda: no CUDA device available", file=sys.stderr)
        return 2
    torch.set_num_threads(args.cpu_threads)
    if args.no_validation:
        seglosses.set_validation(False)
    if args.no_kernels:
        seglosses.kernels.set_enabled(False)
    shape_set = "small" if args.small else args.shapes or ("full" if device.type == "cuda"
                                                           else "cpu")
    names = seglosses.list_losses() if args.losses == "all" else \
        [n.strip() for n in args.losses.split(",") if n.strip()]
    for n in names:
        seglosses.loss_info(n)  # unknown names fail here, with suggestions
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    cuda = device.type == "cuda"
    warm_allocator()
    if args.promise_only:
        inp = make_inputs("binary", PROMISE_SHAPE, device)
        rows = [r for name in PROMISE_LOSSES
                for r in bench_group(name, inp, ["monai"], args, None)]
        print("PROMISE-JSON: " + json.dumps(_promise_ratios(rows)))
        return 0
    promise = not cuda and shape_set == "cpu" and "monai" in peers
    cold = measure_cold_promise(args) if promise and not args.no_cold_promise else None
    if not args.cold:
        warm_libm()
    bandwidth = copy_bandwidth(device) if cuda else None

    rows: list[Row] = []
    for kind, shape in SHAPE_SETS[shape_set]:
        inp = make_inputs(kind, shape, device)
        for name in names:
            start = time.perf_counter()
            group = bench_group(name, inp, peers, args, bandwidth)
            spent = time.perf_counter() - start
            for r in group:
                print(f"  {r.loss:24s} {r.shape:18s} {r.peer:7s} ours {fmt_ms(r.ours_ms):>8s} ms"
                      f"  peer {fmt_ms(r.peer_ms):>8s} ms  {r.value:8s} ({spent:.1f} s)",
                      file=sys.stderr)
            rows.extend(group)
        del inp
        if cuda:
            torch.cuda.empty_cache()

    env = environment(device, ["torch", "monai", "segmentation_models_pytorch", "kornia",
                               "seglosses"], load=start_load)
    cmd = "python " + " ".join(shlex.quote(a) for a in ["benchmarks/bench_losses.py",
                                                        *(sys.argv[1:] if argv is None else argv)])
    lines = [f"command: `{cmd}`", f"device: {device}" + (f" ({env['gpu']})" if cuda else ""),
             *(f"{k}: {v}" for k, v in env.items() if k != "gpu"),
             f"shapes: {shape_set} ({', '.join(_shape_str(s) for _, s in SHAPE_SETS[shape_set])})",
             f"validation: {'off' if args.no_validation else 'on'}",
             "fused kernels: " + ("off (--no-kernels)" if args.no_kernels else
                                  "Triton" if cuda and seglosses.kernels.use_for(
                                      torch.zeros(1, device=device)) else "none (eager)"),
             f"statistic: {args.stat} of the timed fwd+bwd calls",
             "process: allocator warmed first (warm_allocator); math library "
             + ("not warmed (--cold)" if args.cold else "warmed first (warm_libm)")
             + ", see benchmarks/_common.py"]
    if cuda and bandwidth:
        lines.append(f"copy bandwidth: {bandwidth / 1e9:.0f} GB/s")
    report = "\n".join(f"- {ln}" for ln in lines) + "\n\n" + render(rows, cuda) + "\n"
    ok = True
    if promise:
        summary, ok = promise_summary(_promise_ratios(rows), cold)
        report += f"\nPromised CPU comparison ({_shape_str(PROMISE_SHAPE)} binary, " \
                  f"{args.cpu_threads} threads, {args.stat} ms; warm: the main table's " \
                  f"process, cold: a fresh process):\n\n{summary}\n"
    print(report)
    if args.out:
        args.out.write_text(report, encoding="utf-8")
    return 1 if (args.check and not ok) else 0


if __name__ == "__main__":
    sys.exit(main())
