"""Exact EDT of CPU tensors with SciPy, the items spread over a few threads.

Each item (the leading dims flattened) goes through ``scipy.ndimage.distance_transform_edt``
with ``sampling=spacing``, which releases the GIL while it computes the feature transform
(the index of the nearest background voxel of every voxel). The squared distances are then
summed from those indices in float64, so for unit spacing they are the exact integers (no
square root and square back); :func:`distances` takes the square root in the same pass when
asked, and stores float32.

Items are split into one contiguous chunk per thread, at most ``torch.get_num_threads()``
threads: the calling thread and a pool of the others (one pool per size, created on first
use and rebuilt after a fork), so a batch of small maps pays one hand-off per thread, not one
per item. A call with fewer than ``_MIN_VOXELS_PER_THREAD`` voxels per thread uses fewer
threads: waking a pool thread costs more than it saves there. Apart from wrapping the result,
no torch operation runs here: each would use torch's own threads, and on a busy machine every
such operation waits for them. Items without a background voxel get ``inf`` everywhere
without calling SciPy (it would measure to the edge of the array instead).

SciPy is an optional dependency: this module imports it only when called, and
:func:`available` tells whether it can.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from types import ModuleType
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = ["available", "distances", "load_ndimage"]

_MIN_VOXELS_PER_THREAD = 1 << 16     # about 1 ms of SciPy time per thread (2-D)
_POOLS: dict[int, ThreadPoolExecutor] = {}
_POOLS_PID = [os.getpid()]
_POOLS_LOCK = threading.Lock()


def load_ndimage() -> ModuleType | None:
    """``scipy.ndimage`` if it can be imported, else ``None``."""
    try:
        import scipy.ndimage as ndimage
    except ImportError:
        return None
    return ndimage


def available() -> bool:
    """Whether SciPy's ``ndimage`` can be imported."""
    return load_ndimage() is not None


def _pool(size: int) -> ThreadPoolExecutor:
    """The shared pool of ``size`` threads (a forked child builds its own)."""
    with _POOLS_LOCK:
        if _POOLS_PID[0] != os.getpid():        # threads do not survive a fork
            _POOLS.clear()
            _POOLS_PID[0] = os.getpid()
        pool = _POOLS.get(size)
        if pool is None:
            pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="seglosses-edt")
            _POOLS[size] = pool
        return pool


def thread_count(items: int, voxels: int) -> int:
    """Threads for ``items`` items of ``voxels`` voxels each: at most
    ``torch.get_num_threads()``, one item and ``_MIN_VOXELS_PER_THREAD`` voxels at least each."""
    by_work = (items * voxels) // _MIN_VOXELS_PER_THREAD
    return max(1, min(torch.get_num_threads(), items, by_work))


def distances(mask: Tensor, spacing: Sequence[float], spatial_dims: int, *,
              squared: bool) -> Tensor:
    """Exact EDT (``squared=False``) or its square of a CPU bool tensor, float32.

    Same contract as :func:`seglosses.ops._edt_torch.squared_edt` over the last
    ``spatial_dims`` dims: True voxels get the distance to the nearest False voxel of their
    item, False voxels 0, an item with no False voxel ``inf`` everywhere.

    Raises:
        ImportError: SciPy is not installed.
    """
    ndimage = load_ndimage()
    if ndimage is None:
        raise ImportError("the SciPy EDT backend needs scipy (pip install scipy)")
    arr = mask.numpy()                          # a view, whatever the strides
    spatial = arr.shape[arr.ndim - spatial_dims:]
    items = arr.reshape(-1, *spatial)           # copies only if the view cannot be reshaped
    out = np.empty(items.shape, dtype=np.float32)
    count = items.shape[0]
    if count == 0 or items[0].size == 0:
        return torch.from_numpy(out).reshape(mask.shape)
    steps = tuple(float(s) for s in spacing)
    grid = np.indices(spatial, dtype=np.int32)

    def work(first: int, stop: int) -> None:
        for i in range(first, stop):
            item = items[i]
            if item.all():
                out[i] = np.inf
                continue
            total = _squared_item(ndimage, item, steps, grid)
            out[i] = total if squared else np.sqrt(total, out=total)

    threads = thread_count(count, items[0].size)
    if threads == 1:
        work(0, count)
    else:
        bounds = [count * k // threads for k in range(threads + 1)]
        pool = _pool(threads - 1)               # the calling thread is the other one
        futures = [pool.submit(work, bounds[k], bounds[k + 1]) for k in range(1, threads)]
        try:
            work(bounds[0], bounds[1])
        finally:
            wait(futures)                       # never return while a worker still writes
        for future in futures:
            future.result()
    return torch.from_numpy(out).reshape(mask.shape)


def _squared_item(ndimage: ModuleType, item: np.ndarray, spacing: tuple[float, ...],
                  grid: np.ndarray) -> np.ndarray:
    """Squared EDT of one bool array that has a False voxel, float64."""
    nearest = ndimage.distance_transform_edt(item, sampling=spacing, return_distances=False,
                                             return_indices=True)
    offset = np.subtract(nearest, grid, out=nearest).astype(np.float64)
    total = np.zeros(item.shape, dtype=np.float64)
    for k, step in enumerate(spacing):
        axis = offset[k]
        if step != 1.0:
            axis *= step
        total += axis * axis
    return total
