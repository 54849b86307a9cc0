"""Exact separable Euclidean distance transform in pure torch (CPU and CUDA).

The squared distance transform of a binary mask separates over the axes (Saito & Toriwaki
1994; Felzenszwalb & Huttenlocher 2012):

1. Along the first spatial axis, each voxel gets the squared distance to the nearest
   background voxel of its own line. Two cumulative scans (``cummax`` / ``cummin`` of the
   background positions) give it for every line at once.
2. Along every further axis, each line solves the 1-D problem
   ``g(i) = min_j f(j) + s^2 (i - j)^2``: the lower envelope of parabolas rooted at the
   samples of the previous pass. The envelope is built by a masked state machine that runs
   the Felzenszwalb-Huttenlocher stack algorithm on all lines in lock-step (one push or one
   pop per line and step, so at most ``2 n`` steps), and read out for all positions of all
   lines by one batched ``searchsorted`` over the envelope's breakpoints.

Every step is a fixed-shape tensor operation: nothing is copied to the host and no value is
read back on CUDA. On CPU two cheap shortcuts read values back: lines whose result is known
without the envelope (all background, or no background in the whole plane) are left out, and
the state machine stops as soon as every line has consumed its samples.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

_INF = float("inf")


def squared_edt(mask: Tensor, spacing: Sequence[float], spatial_dims: int) -> Tensor:
    """Squared exact EDT of a bool tensor over its last ``spatial_dims`` dims, float32.

    ``mask`` True marks the voxels whose distance to the nearest False voxel is wanted; False
    voxels get 0. An item with no False voxel gets ``inf`` everywhere.
    """
    nd = spatial_dims
    lead = mask.shape[: mask.dim() - nd]
    spatial = mask.shape[mask.dim() - nd:]
    items = mask.reshape(-1, *spatial)
    # the first pass runs along the longest axis: the cheap scan takes the most work
    first = max(range(nd), key=lambda a: spatial[a])
    order = [first] + [a for a in range(nd) if a != first]
    f = _scan_pass(items, 1 + first, float(spacing[first]))
    for axis in order[1:]:
        f = _envelope_pass(f, 1 + axis, float(spacing[axis]))
    return f.reshape(*lead, *spatial)


def _scan_pass(items: Tensor, dim: int, step: float) -> Tensor:
    """Squared distance to the nearest False voxel along ``dim`` (``inf`` if none)."""
    n = items.shape[dim]
    shape = [1] * items.dim()
    shape[dim] = n
    pos = torch.arange(n, device=items.device, dtype=torch.float32).view(shape)
    background = ~items
    before = torch.where(background, pos, -_INF).cummax(dim).values
    after = torch.where(background, pos, _INF).flip(dim).cummin(dim).values.flip(dim)
    dist = torch.minimum(pos - before, after - pos)
    dist = dist * step if step != 1.0 else dist
    return dist * dist


def _envelope_pass(f: Tensor, dim: int, step: float) -> Tensor:
    """``g(i) = min_j f(j) + step^2 (i - j)^2`` along ``dim`` for every line of ``f``."""
    n = f.shape[dim]
    if n == 1:
        return f
    moved = f.movedim(dim, -1)
    lines = moved.reshape(-1, n)
    scale = step * step
    h = lines / scale if scale != 1.0 else lines
    if h.device.type == "cuda":
        g = _envelope_lines(h, check_done=False)
    else:
        g = _envelope_cpu(h)
    if scale != 1.0:
        g = g * scale
    return g.reshape(moved.shape).movedim(-1, dim)


def _envelope_cpu(h: Tensor) -> Tensor:
    """CPU driver: solve only the lines that need the envelope, in place of all of them."""
    finite = torch.isfinite(h)
    nonzero = h > 0
    # a line of zeros stays zeros; a line of infs stays infs; every other line needs work
    busy = (finite.any(1) & nonzero.any(1)).nonzero().squeeze(1)
    if busy.numel() == h.shape[0]:
        return _envelope_lines(h, check_done=True)
    out = h.clone()
    if busy.numel():
        out[busy] = _envelope_lines(h[busy], check_done=True)
    return out


def _envelope_lines(h: Tensor, check_done: bool) -> Tensor:
    """Lower envelope of the unit parabolas ``h(j) + (i - j)^2`` of each row of ``h``.

    ``h``: (L, n) float32, ``inf`` for absent samples. Returns ``min_j h(j) + (i - j)^2``
    for every row and position, ``inf`` on rows with no finite sample.
    """
    lines, n = h.shape
    device = h.device
    cols = h.t().contiguous()  # (n, L): the samples of step q are one contiguous row
    # stack of envelope parabolas per line: vertex position, its value, its left breakpoint
    vert = torch.zeros(n + 1, lines, device=device, dtype=torch.float32)
    val = torch.zeros(n + 1, lines, device=device, dtype=torch.float32)
    left = torch.zeros(n + 1, lines, device=device, dtype=torch.float32)
    top = torch.full((1, lines), -1, device=device, dtype=torch.long)
    q = torch.zeros(1, lines, device=device, dtype=torch.long)
    minus_inf = torch.tensor(-_INF, device=device)
    last = n - 1
    for step in range(2 * n):
        if check_done and step >= n and step % 8 == 0 and bool((q > last).all()):
            break
        active = q <= last
        qc = q.clamp(max=last)
        hq = cols.gather(0, qc)
        qf = qc.to(torch.float32)
        has_top = top >= 0
        tc = top.clamp(min=0)
        v = vert.gather(0, tc)
        hv = val.gather(0, tc)
        z = left.gather(0, tc)
        # breakpoint of the new parabola with the top one (finite for finite hq, hv)
        s = (hq - hv) / (2.0 * (qf - v)) + 0.5 * (qf + v)
        usable = active & torch.isfinite(hq)
        pop = usable & has_top & (s <= z)
        push = usable & ~pop
        top = top - pop.long()
        slot = top + 1  # where a push writes; other lines write above their top, unread
        vert.scatter_(0, slot, qf)
        val.scatter_(0, slot, hq)
        left.scatter_(0, slot, torch.where(top >= 0, s, minus_inf))
        top = top + push.long()
        q = q + (active & ~pop).long()
    # read out: the parabola of position i is the last one whose left breakpoint is <= i
    index = torch.arange(n + 1, device=device).view(n + 1, 1)
    left = torch.where(index > top, _INF, left)
    breaks = left.t().contiguous()  # (L, n + 1), sorted per row
    pos = torch.arange(n, device=device, dtype=torch.float32).expand(lines, n).contiguous()
    which = torch.searchsorted(breaks, pos, right=True) - 1
    empty = which < 0
    which = which.clamp(min=0)
    v = vert.t().gather(1, which)
    hv = val.t().gather(1, which)
    d = pos - v
    g = hv + d * d
    return torch.where(empty, _INF, g)
