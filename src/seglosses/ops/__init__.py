"""Exact Euclidean distance transforms, batched, on the tensor's own device.

``edt(m)``: per True voxel, the distance to the nearest False voxel (0 on False voxels);
``signed_distance(m) = edt(~m) - edt(m)``; ``dist_to_boundary(m) = edt(m) + edt(~m)``.
See ``docs/ops.md``.
"""

from __future__ import annotations

from .edt import dist_to_boundary, edt, signed_distance, squared_edt

__all__ = ["dist_to_boundary", "edt", "signed_distance", "squared_edt"]
