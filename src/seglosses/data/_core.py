"""Containers, the data error, and the slice operations every format shares.

Every format ends as a list of :class:`Case` (one subject or image: its slices and masks);
:func:`~seglosses.data.splits.bundle` splits the cases by subject into a :class:`DataBundle`.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

#: Fraction of mask-free slices kept per volume, relative to the number of slices with
#: foreground (volume loaders only).
EMPTY_SLICE_FRACTION = 0.1

#: Percentiles of the robust intensity normalisation: values are clipped to
#: [p_low, p_high] and mapped linearly onto [0, 1].
NORMALISE_PERCENTILES = (0.5, 99.5)


class DataError(ValueError):
    """Bad or missing data: a one-line message naming the file (path) and the problem."""


DataError.__module__ = "seglosses.data"


def fail(path: str | os.PathLike[str], problem: str) -> DataError:
    """Build the :class:`DataError` for ``path``: ``"<path>: <problem>"`` on one line."""
    text = f"{os.fspath(path)}: {problem}"
    return DataError(" ".join(text.split()))


def match_pairs(images: dict[str, Path], masks: dict[str, Path], image_hint: str,
                mask_hint: str) -> list[tuple[str, Path, Path]]:
    """(id, image, mask) of files indexed by id, sorted by id.

    Args:
        images: image file of each id.
        masks: mask file of each id.
        image_hint: where the image of an id is expected, ``{}`` standing for the id.
        mask_hint: where the mask of an id is expected, likewise.

    Raises:
        DataError: an image without its mask or a mask without its image.
    """
    for key, file in images.items():
        if key not in masks:
            raise fail(file, f"no matching mask {mask_hint.format(key)}")
    for key, file in masks.items():
        if key not in images:
            raise fail(file, f"no matching image {image_hint.format(key)}")
    return [(key, images[key], masks[key]) for key in sorted(images)]


@dataclass(eq=False, repr=False)
class SliceSet(Dataset):
    """2D slices with binary masks, and the subject (case) each slice belongs to.

    ``images`` is (N, 1, H, W) float32 in [0, 1] (robustly normalised per volume for volume
    formats, per image otherwise), ``masks`` is (N, 1, H, W) float32 in {0, 1}, and
    ``subjects[i]`` names the subject or image of slice ``i``: test metrics are grouped by it.

    Example:
        >>> import torch
        >>> s = SliceSet(torch.zeros(3, 1, 4, 4), torch.ones(3, 1, 4, 4), ["a", "a", "b"])
        >>> len(s), s[2][0].shape, s.num_subjects
        (3, torch.Size([1, 4, 4]), 2)
    """

    images: Tensor
    masks: Tensor
    subjects: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.images.dim() != 4 or self.images.shape[1] != 1:
            raise ValueError(
                f"`images` must have shape (N, 1, H, W); got {tuple(self.images.shape)}"
            )
        if self.masks.shape != self.images.shape:
            raise ValueError(
                f"`masks` must have the shape of `images` {tuple(self.images.shape)}; "
                f"got {tuple(self.masks.shape)}"
            )
        if len(self.subjects) != self.images.shape[0]:
            raise ValueError(
                f"`subjects` must name each of the {self.images.shape[0]} slices; "
                f"got {len(self.subjects)} names"
            )

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        return self.images[i], self.masks[i]

    @property
    def num_subjects(self) -> int:
        """Number of distinct subjects (cases)."""
        return len(set(self.subjects))

    def subject_indices(self) -> dict[str, list[int]]:
        """Slice indices of each subject, in order of first appearance."""
        groups: dict[str, list[int]] = {}
        for i, name in enumerate(self.subjects):
            groups.setdefault(name, []).append(i)
        return groups

    def __repr__(self) -> str:
        h, w = (self.images.shape[-2], self.images.shape[-1]) if len(self) else (0, 0)
        fg = float(self.masks.mean()) if len(self) else 0.0
        return (
            f"SliceSet({len(self)} slices of {h}x{w} from {self.num_subjects} subjects, "
            f"foreground {fg:.3f})"
        )


@dataclass(repr=False)
class DataBundle:
    """Train, validation and test slices split by subject, with what the data is.

    ``volumetric`` is True for volume data (test metrics per subject volume) and False for 2D
    images (metrics per image); ``spacing`` is the in-plane pixel spacing in mm after
    resampling ((1.0, 1.0) when unknown, i.e. pixels).
    """

    train: SliceSet
    val: SliceSet
    test: SliceSet
    format: str
    description: str
    volumetric: bool
    spacing: tuple[float, float] = (1.0, 1.0)

    def __repr__(self) -> str:
        return (
            f"DataBundle(format={self.format!r}, volumetric={self.volumetric}, "
            f"spacing={self.spacing}, train={self.train!r}, val={self.val!r}, test={self.test!r})"
        )


@dataclass
class Case:
    """One subject (volume) or image after preprocessing: (n, H, W) slices and masks."""

    name: str
    images: Tensor  # (n, H, W) float32
    masks: Tensor  # (n, H, W) uint8 in {0, 1}


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run with one intra-op thread, restoring the setting afterwards.

    Data preparation works on small tensors, where a second thread gains little; on a busy
    machine, or beside parallel test workers, OpenMP's waiting threads make the same work
    many times slower.
    """
    before = torch.get_num_threads()
    if before == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def robust_normalise(x: Tensor) -> Tensor:
    """Clip to the 0.5th/99.5th percentiles and map linearly onto [0, 1] (float32).

    The percentiles are estimated on at most about a million evenly strided values, so large
    volumes cost little. A constant input gives zeros.
    """
    flat = x.reshape(-1).float()
    step = max(1, flat.numel() // 1_000_000)
    sample = flat[::step].numpy().astype(np.float64)
    lo, hi = np.percentile(sample, NORMALISE_PERCENTILES)
    if not np.isfinite(lo) or not np.isfinite(hi) or hi - lo <= 1e-12 * max(1.0, abs(hi)):
        return torch.zeros_like(x, dtype=torch.float32)
    out = (x.float() - float(lo)) / float(hi - lo)
    return out.clamp_(0.0, 1.0)


def to_square(images: Tensor, masks: Tensor, size: int, spacing: tuple[float, float] = (1.0, 1.0)
              ) -> tuple[Tensor, Tensor, float]:
    """Resample (n, H, W) slices onto a square ``size`` x ``size`` grid keeping proportions.

    The physical field of view (H * spacing[0] by W * spacing[1]) is padded, centred, to a
    square of side max(H * sy, W * sx) with the image minimum (images) and 0 (masks), then
    resampled: images with area averaging when shrinking and bilinear interpolation when
    enlarging, masks bilinearly then thresholded at 0.5. Returns images (float32), masks
    (uint8) and the new pixel spacing.
    """
    n, h, w = images.shape
    sy, sx = float(spacing[0]), float(spacing[1])
    side = max(h * sy, w * sx)
    # Output pixel centres across the square field of view, in mm from the input's corner.
    new_spacing = side / size
    ys = (torch.arange(size, dtype=torch.float64) + 0.5) * new_spacing - (side - h * sy) / 2
    xs = (torch.arange(size, dtype=torch.float64) + 0.5) * new_spacing - (side - w * sx) / 2
    # Convert to normalised coordinates (align_corners=False: -1 is the outer edge).
    gy = (ys / (h * sy)) * 2 - 1
    gx = (xs / (w * sx)) * 2 - 1
    grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], dim=-1).float()
    img = images.float().unsqueeze(1)
    factor_y, factor_x = new_spacing / sy, new_spacing / sx
    if factor_y > 1.5 or factor_x > 1.5:
        # Anti-alias before point sampling: box filter about one output pixel wide.
        ky, kx = max(1, int(round(factor_y))), max(1, int(round(factor_x)))
        pad = (kx // 2, (kx - 1) // 2, ky // 2, (ky - 1) // 2)
        img = F.avg_pool2d(F.pad(img, pad, mode="replicate"), (ky, kx), stride=1)
    background = img.amin(dim=(1, 2, 3), keepdim=True)
    sampled = F.grid_sample(img - background, grid.expand(n, -1, -1, -1), mode="bilinear",
                            padding_mode="zeros", align_corners=False) + background
    msk = F.grid_sample(masks.float().unsqueeze(1), grid.expand(n, -1, -1, -1), mode="bilinear",
                        padding_mode="zeros", align_corners=False)
    return sampled[:, 0].contiguous(), (msk[:, 0] > 0.5).to(torch.uint8), new_spacing


def choose_slices(has_fg: np.ndarray, limit: int | None) -> np.ndarray:
    """Indices of the slices to keep from a volume, in increasing order.

    All slices with foreground are kept, plus ``EMPTY_SLICE_FRACTION`` as many mask-free
    slices, evenly spaced among the mask-free ones. With ``limit`` the total is capped: about
    ``limit / 1.1`` foreground slices evenly spaced over the foreground range and the rest
    mask-free.
    """
    fg = np.flatnonzero(has_fg)
    empty = np.flatnonzero(~has_fg)
    n_empty = min(len(empty), int(round(EMPTY_SLICE_FRACTION * len(fg))))
    n_fg = len(fg)
    if limit is not None and n_fg + n_empty > limit:
        n_fg = min(n_fg, max(1, int(round(limit / (1 + EMPTY_SLICE_FRACTION)))))
        n_empty = min(len(empty), limit - n_fg)
    keep = list(_evenly(fg, n_fg)) + list(_evenly(empty, n_empty))
    return np.array(sorted(keep), dtype=np.int64)


def _evenly(values: np.ndarray, count: int) -> np.ndarray:
    if count <= 0 or len(values) == 0:
        return values[:0]
    if count >= len(values):
        return values
    idx = np.round(np.linspace(0, len(values) - 1, count)).astype(np.int64)
    return values[np.unique(idx)]


def quantise(images: Tensor) -> Tensor:
    """Round float32 images to float16 precision (what the cache stores), as float32."""
    return images.to(torch.float16).to(torch.float32)
