"""Benchmark: ``seglosses.ops.edt`` against SciPy, MONAI and cuCIM, all measured in one run.

Masks are smooth random blobs (Gaussian noise, box-filtered, thresholded; about a quarter
of the voxels set in 2-D), fixed by ``--seed``:

- ``2d``: 16 x 1 x 512 x 512
- ``3d``: 2 x 1 x 128 x 128 x 128

Rows:

- ``seglosses``: ``seglosses.ops.edt`` on ``--device``, the whole batch in one call;
- ``scipy``: ``scipy.ndimage.distance_transform_edt`` item by item (CPU);
- ``monai``: ``monai.transforms.utils.distance_transform_edt`` on the batch (on CUDA it
  runs cuCIM when that is installed, on CPU it loops SciPy);
- ``cucim``: ``cucim.core.operations.morphology.distance_transform_edt`` item by item
  (CUDA only, when installed);
- ``hausdorff_dt``: forward + backward of ``seglosses.get_loss("hausdorff_dt")`` against
  MONAI's ``HausdorffDTLoss`` (binary, sigmoid), when both exist.

Every row reports the median and the minimum wall time and the median CPU time of
``--repeats`` timed calls after one warm-up call, and its ratios to the SciPy row (or to
MONAI for the loss). On a machine shared with other work the CPU-time ratio is the stable
one. Outputs are
checked against SciPy before timing. Usage::

    python benchmarks/bench_edt.py [--device cpu|cuda] [--repeats 5] [--threads 2]
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-loss", action="store_true", help="do not time hausdorff_dt")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device available")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, repeats {args.repeats}")
    bench_edt("2d", blobs((16, 1, 512, 512), args.seed), device, args.repeats)
    bench_edt("3d", blobs((2, 1, 128, 128, 128), args.seed), device, args.repeats)
    if not args.skip_loss:
        bench_loss(blobs((16, 1, 128, 128), args.seed), device, args.repeats)


if __name__ == "__main__":
    main()
