"""Benchmark: ``seglosses.ops.edt`` against SciPy, MONAI and cuCIM, all measured in one run.

Masks are smooth random blobs (Gaussian noise, box-filtered, thresholded; about a quarter
of the voxels set in 2-D), fixed by ``--seed``:

- ``2d``: 16 x 1 x 512 x 512
- ``3d``: 2 x 1 x 128 x 128 x 128

Rows:

- ``seglosses``: ``seglosses.ops.edt`` on ``--device``, the whole batch in one call, with
  ``backend="auto"``; on CPU also each backend forced (``torch``: the separable torch
  driver, ``scipy``: SciPy per item on ``--threads`` threads);
- ``scipy``: ``scipy.ndimage.distance_transform_edt`` item by item (CPU, one thread);
- ``monai``: ``monai.transforms.utils.distance_transform_edt`` on the batch (on CUDA it
  runs cuCIM when that is installed, on CPU it loops SciPy);
- ``cucim``: ``cucim.core.operations.morphology.distance_transform_edt`` item by item
  (CUDA only, when installed);
- ``hausdorff_dt``: forward + backward of ``seglosses.get_loss("hausdorff_dt")`` against
  MONAI's ``HausdorffDTLoss`` (binary, sigmoid) at 8 x 1 x 256 x 256, when both exist.

Every row reports the median and the minimum wall time and the median CPU time of
``--repeats`` timed calls after one warm-up call, and its ratios to the SciPy row (or to
MONAI for the loss). On a machine shared with other work the CPU-time ratio is the stable
one. Outputs are checked against SciPy before timing.

``--sweep`` instead times ``ops.squared_edt`` with ``backend="torch"`` against
``backend="scipy"`` on CPU over a grid of 1-D, 2-D and 3-D shapes and batch sizes, on three
kinds of masks (``blobs`` as above: many small objects; ``objects``: a few large smooth
ones, as in ``bench_losses.py``; ``salt-pepper``: half the voxels set at random, the worst
case of the torch driver), the two backends alternating block by block, and prints a
Markdown table with the minimum times, their ratio and the backend that ``"auto"`` picks
(the measurements behind that rule, see ``docs/ops.md``). On a machine shared with other
work it leaves out the blocks during which other processes were busy (Linux only; see
``sweep``). Usage::

    python benchmarks/bench_edt.py [--device cpu|cuda] [--repeats 5] [--threads 2]
    python benchmarks/bench_edt.py --sweep [--sweep-dims 1,2,3] [--repeats 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import time
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F


def blobs(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """Smooth random blobs of the given (B, C, *S) shape."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g)
    if len(shape) == 4:
        x = F.avg_pool2d(F.avg_pool2d(x, 9, 1, 4), 9, 1, 4)
    else:
        x = F.avg_pool3d(x, 9, 1, 4)
    return x > 0.05


def timeit(fn: Callable[[], object], repeats: int, cuda: bool) -> tuple[float, float, float]:
    """(median wall, min wall, median CPU) seconds of ``repeats`` calls after a warm-up call.

    The CPU time (all threads of the process) is the fairer number on a shared machine.
    """
    fn()
    times, cpu = [], []
    for _ in range(repeats):
        if cuda:
            torch.cuda.synchronize()
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(times), min(times), statistics.median(cpu)


def scipy_loop(mask_np: np.ndarray) -> list[np.ndarray]:
    from scipy import ndimage

    return [ndimage.distance_transform_edt(mask_np[idx]) for idx in np.ndindex(*mask_np.shape[:2])]


def bench_edt(name: str, mask: torch.Tensor, device: torch.device, repeats: int) -> None:
    from seglosses.ops import edt

    cuda = device.type == "cuda"
    mask_dev = mask.to(device)
    mask_np = mask.numpy()
    rows: list[tuple[str, float, float, float]] = []

    ours = edt(mask_dev).cpu().numpy()
    expected = scipy_loop(mask_np)
    for k, idx in enumerate(np.ndindex(*mask_np.shape[:2])):
        np.testing.assert_allclose(ours[idx], expected[k], rtol=1e-4, atol=1e-4)

    rows.append(("seglosses", *timeit(lambda: edt(mask_dev), repeats, cuda)))
    if not cuda:
        for backend in ("torch", "scipy"):
            rows.append((f"  {backend}", *timeit(lambda b=backend: edt(mask_dev, backend=b),
                                                 repeats, False)))
    rows.append(("scipy", *timeit(lambda: scipy_loop(mask_np), repeats, False)))
    try:
        from monai.transforms.utils import distance_transform_edt as monai_edt
    except ImportError:
        print("  (monai not installed: skipped)")
    else:
        # MONAI takes (channels, *S): every (sample, channel) is one channel
        monai_in = (mask_dev if cuda else mask).flatten(0, 1)
        rows.append(("monai", *timeit(lambda: monai_edt(monai_in), repeats, cuda)))
    if cuda:
        try:
            import cupy
            from cucim.core.operations.morphology import distance_transform_edt as cucim_edt
        except ImportError:
            print("  (cucim not installed: skipped)")
        else:
            arr = cupy.asarray(mask_dev)

            def run_cucim() -> None:
                for idx in np.ndindex(*mask_np.shape[:2]):
                    cucim_edt(arr[idx])

            rows.append(("cucim", *timeit(run_cucim, repeats, True)))

    print(f"EDT {name} {tuple(mask.shape)} on {device} "
          f"(foreground {mask.float().mean().item():.3f})")
    _report(rows, "scipy")


def _report(rows: list[tuple[str, float, float, float]], base: str) -> None:
    ref = {r[0]: r for r in rows}[base]
    for label, median, best, cpu in rows:
        print(f"  {label:10s} wall median {median * 1e3:8.1f} ms  min {best * 1e3:8.1f} ms  "
              f"cpu {cpu * 1e3:8.1f} ms   ratio to {base}: wall {median / ref[1]:5.2f}  "
              f"cpu {cpu / ref[3]:5.2f}")


def bench_loss(mask: torch.Tensor, device: torch.device, repeats: int) -> None:
    import seglosses

    try:
        ours = seglosses.get_loss("hausdorff_dt")
    except ValueError:
        print("hausdorff_dt: not registered: skipped")
        return
    try:
        from monai.losses import HausdorffDTLoss
    except ImportError:
        print("hausdorff_dt: monai not installed: skipped")
        return
    cuda = device.type == "cuda"
    target = mask.float().to(device)
    g = torch.Generator().manual_seed(1)
    logits = (torch.randn(mask.shape, generator=g) + (mask.float() * 2 - 1)).to(device)
    peer = HausdorffDTLoss(sigmoid=True, include_background=True)

    def step(loss: torch.nn.Module) -> Callable[[], None]:
        def run() -> None:
            x = logits.clone().requires_grad_(True)
            loss(x, target).backward()
        return run

    rows = [("seglosses", *timeit(step(ours), repeats, cuda)),
            ("monai", *timeit(step(peer), repeats, cuda))]
    print(f"hausdorff_dt forward + backward {tuple(mask.shape)} on {device}")
    _report(rows, "monai")


def salt_pepper(shape: tuple[int, ...], seed: int, fraction: float = 0.5) -> torch.Tensor:
    """Independent random voxels of the given (B, C, *S) shape, ``fraction`` of them True."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g) < fraction


def objects(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """Large smooth objects of the given (B, C, *S) shape, about a third of the voxels set:
    coarse noise (one cell per 16 voxels, at least 4 cells per axis) interpolated up."""
    g = torch.Generator().manual_seed(seed)
    spatial = shape[2:]
    coarse = torch.randn(*shape[:2], *(max(4, n // 16) for n in spatial), generator=g)
    mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[len(spatial)]
    return F.interpolate(coarse, size=spatial, mode=mode, align_corners=False) > 0.3


SWEEP_1D = [(n, b) for n in (256, 4096, 65536) for b in (1, 32)]
SWEEP_2D = [(n, b) for n in (64, 128, 256, 512, 1024) for b in (1, 8, 32)]
SWEEP_3D = [(n, b) for n in (32, 48, 64, 96, 128) for b in (1, 4)]
SWEEP_MASKS = ("blobs", "objects", "salt-pepper")


def _busy_seconds() -> float | None:
    """CPU seconds spent so far by every process of the machine (Linux ``/proc/stat``)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    busy = sum(fields[:3]) + sum(fields[5:8])          # user nice system irq softirq steal
    return busy / os.sysconf("SC_CLK_TCK")


def _timed_block(fn: Callable[[], object], block: float) -> tuple[float, float | None]:
    """(seconds per call, CPU cores used by other processes meanwhile) over calls of ``fn``
    repeated for at least ``block`` seconds (``None`` when that cannot be read)."""
    busy0, cpu0 = _busy_seconds(), time.process_time()
    start = time.perf_counter()
    calls = 0
    while True:
        fn()
        calls += 1
        wall = time.perf_counter() - start
        if wall >= block:
            break
    busy1, cpu1 = _busy_seconds(), time.process_time()
    others = None
    if busy0 is not None and busy1 is not None:
        others = max(0.0, (busy1 - busy0) - (cpu1 - cpu0)) / wall
    return wall / calls, others


def sweep(repeats: int, seed: int, dims: list[int], block: float = 0.2,
          max_others: float = 0.25) -> None:
    """Time ``backend="torch"`` against ``backend="scipy"`` of ``ops.squared_edt`` on CPU.

    The two backends alternate block by block in this process (a block: calls repeated for
    at least ``block`` seconds). On a shared machine a block during which other processes
    used more than ``max_others`` of a core is not counted (read from ``/proc/stat``) and is
    taken again, up to ``4 * repeats`` rounds. Every row reports the minimum time per call
    over the ``repeats`` counted blocks of each backend (after one warm-up call, with the
    outputs compared), their ratio, the rounds it took, and the backend ``"auto"`` picks.
    """
    from seglosses.ops import squared_edt

    edt_module = importlib.import_module("seglosses.ops.edt")

    grids = {1: SWEEP_1D, 2: SWEEP_2D, 3: SWEEP_3D}
    print("| dims | item | batch | mask | torch ms | scipy ms | torch / scipy | rounds | auto |")
    print("|---|---|---|---|---|---|---|---|---|")
    for nd in dims:
        for n, batch in grids[nd]:
            shape = (batch, 1) + (n,) * nd
            for kind in SWEEP_MASKS:
                if kind == "blobs":
                    mask = blobs(shape, seed) if nd > 1 else blobs_1d(shape, seed)
                elif kind == "objects":
                    mask = objects(shape, seed)
                else:
                    mask = salt_pepper(shape, seed)
                ref = squared_edt(mask, backend="torch")
                assert torch.equal(squared_edt(mask, backend="scipy"), ref), (shape, kind)
                clean: dict[str, list[float]] = {"torch": [], "scipy": []}
                every: dict[str, list[float]] = {"torch": [], "scipy": []}
                rounds = 0
                while rounds < 4 * repeats and min(len(v) for v in clean.values()) < repeats:
                    rounds += 1
                    for backend in ("torch", "scipy"):
                        per_call, others = _timed_block(
                            lambda b=backend: squared_edt(mask, backend=b), block)
                        every[backend].append(per_call)
                        if others is None or others <= max_others:
                            clean[backend].append(per_call)
                best = {b: min(clean[b] or every[b]) for b in clean}
                auto = edt_module.resolve_backend("auto", mask, nd)
                item = "x".join([str(n)] * nd)
                print(f"| {nd} | {item} | {batch} | {kind} | {best['torch'] * 1e3:.2f} | "
                      f"{best['scipy'] * 1e3:.2f} | {best['torch'] / best['scipy']:.2f} | "
                      f"{rounds} | {auto} |", flush=True)


def blobs_1d(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """Smooth random segments of the given (B, C, n) shape."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g)
    return F.avg_pool1d(F.avg_pool1d(x, 9, 1, 4), 9, 1, 4) > 0.05


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-loss", action="store_true", help="do not time hausdorff_dt")
    parser.add_argument("--sweep", action="store_true",
                        help="instead: time the torch and SciPy CPU backends of "
                             "ops.squared_edt on a grid of shapes (the table behind "
                             "backend='auto')")
    parser.add_argument("--sweep-dims", default="1,2,3",
                        help="spatial ranks of the sweep, comma-separated (default 1,2,3)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device available")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, repeats {args.repeats}")
    if args.sweep:
        sweep(args.repeats, args.seed, [int(d) for d in args.sweep_dims.split(",")])
        return
    bench_edt("2d", blobs((16, 1, 512, 512), args.seed), device, args.repeats)
    bench_edt("3d", blobs((2, 1, 128, 128, 128), args.seed), device, args.repeats)
    if not args.skip_loss:
        bench_loss(blobs((8, 1, 256, 256), args.seed), device, args.repeats)


if __name__ == "__main__":
    main()
