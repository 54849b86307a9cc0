"""``load_data`` and ``validate_data``: one entry point for every format."""

from __future__ import annotations

import difflib
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._validation import check_int
from . import cache, images, mni, nfbs, nifti, shapes
from ._core import DataBundle, DataError, single_thread
from .splits import bundle

FORMATS = ("shapes", "mni-skullstrip", "mni-gm", "nfbs", "nifti", "images")
_FILE_FORMATS = {"nfbs": nfbs.find_pairs, "nifti": nifti.find_pairs, "images": images.find_pairs}


def _check_format(format: Any) -> str:
    if isinstance(format, str) and format in FORMATS:
        return format
    hint = ""
    if isinstance(format, str):
        close = difflib.get_close_matches(format, FORMATS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise DataError(f"format: must be one of {', '.join(FORMATS)}; got {format!r}{hint}")


def _check_args(image_size: Any, seed: Any, subjects: Any, slices_per_subject: Any) -> None:
    check_int(image_size, "image_size", low=16, high=2048)
    check_int(seed, "seed", low=0)
    if subjects is not None:
        check_int(subjects, "subjects", low=3)
    if slices_per_subject is not None:
        check_int(slices_per_subject, "slices_per_subject", low=1)


def _subset(pairs: list[tuple[str, Path, Path]], subjects: int | None, seed: int
            ) -> list[tuple[str, Path, Path]]:
    """At most ``subjects`` pairs, drawn at random (seeded), kept in sorted order."""
    if subjects is None or subjects >= len(pairs):
        return pairs
    pick = np.random.default_rng([int(seed), 0x5B5E7]).choice(len(pairs), subjects, replace=False)
    return [pairs[i] for i in sorted(pick.tolist())]


def _stamp(files: list[Path]) -> list[tuple[str, int, int]]:
    out = []
    for f in files:
        st = f.stat()
        out.append((str(f.resolve()), st.st_size, st.st_mtime_ns))
    return out


def validate_data(format: str, path: str | os.PathLike[str] | None = None) -> None:
    """Check that ``format`` can be read from ``path`` without loading pixel data.

    Lists the files, pairs images with masks and reads every header (shape, size), raising
    :class:`DataError` with one line naming the file and the problem. Cheap; ``load_data``
    runs the same checks (and the ones that need pixel data, such as empty masks) anyway.

    Example:
        >>> validate_data("shapes")
        >>> validate_data("nifti", "/no/such/folder")
        Traceback (most recent call last):
        ...
        seglosses.data.DataError: /no/such/folder: no such file or directory
    """
    fmt = _check_format(format)
    if fmt == "shapes":
        shapes.parse_options(path)
    elif fmt.startswith("mni-"):
        mni.validate(path)
    else:
        pairs = _FILE_FORMATS[fmt](path)
        (images.validate_pairs if fmt == "images" else nifti.validate_pairs)(pairs)


def load_data(format: str, path: str | os.PathLike[str] | None = None, *, image_size: int = 128,
              seed: int = 0, subjects: int | None = None, slices_per_subject: int | None = None,
              cache_dir: str | os.PathLike[str] | None = None) -> DataBundle:
    """Load (or build) a dataset as 2D slices split 60/20/20 by subject.

    Args:
        format: one of :data:`FORMATS`.
        path: data folder for ``nfbs``, ``nifti`` and ``images``; for ``mni-*`` an optional
            folder holding the three MNI152 files (default: the nilearn wheel's); for
            ``shapes`` optional generator options ``"fraction=0.05,noise=0.5,..."``.
        image_size: side of the square slices in pixels.
        seed: seeds the generated data, the subject subset and the split.
        subjects: number of subjects (images for 2D formats) to use; None = the format's
            default (``shapes`` 300, MNI 30, files: all). Files: a seeded random subset.
        slices_per_subject: cap on the slices taken per volume; None = the format's default
            (MNI: every brain-containing slice at isotropic spacing; files: all slices with
            foreground plus 10 % as many without). Ignored by 2D formats.
        cache_dir: cache folder (default ``$SEGLOSSES_CACHE`` or ``~/.cache/seglosses``).

    Returns:
        A :class:`DataBundle`.

    Raises:
        DataError: unknown format, missing or bad data, with one line naming the file.
        ValueError, TypeError: bad ``image_size``, ``seed``, ``subjects`` or ``slices_per_subject``.

    Example:
        >>> import tempfile
        >>> data = load_data("shapes", image_size=32, subjects=10, cache_dir=tempfile.mkdtemp())
        >>> len(data.train.subjects), len(data.val), len(data.test), data.volumetric
        (6, 2, 2, False)
        >>> data.train[0][0].shape
        torch.Size([1, 32, 32])
    """
    fmt = _check_format(format)
    _check_args(image_size, seed, subjects, slices_per_subject)
    key_params: dict[str, Any] = {
        "format": fmt, "image_size": image_size, "seed": seed, "subjects": subjects,
        "slices_per_subject": slices_per_subject,
    }
    pairs: list[tuple[str, Path, Path]] = []
    if fmt == "shapes":
        options = shapes.parse_options(path)
        key_params["options"] = asdict(options)
        key_params["slices_per_subject"] = None
    elif fmt.startswith("mni-"):
        key_params["files"] = mni.file_stamp(mni.find_files(path))
    else:
        pairs = _subset(_FILE_FORMATS[fmt](path), subjects, seed)
        key_params["files"] = _stamp([f for _, a, b in pairs for f in (a, b)])
        if fmt == "images":
            key_params["slices_per_subject"] = None

    root = cache.cache_root(cache_dir)
    key = cache.cache_key(key_params)
    target = cache.cache_file(root, fmt, key) if root is not None else None
    if target is not None:
        hit = cache.load(target, key)
        if hit is not None:
            return hit

    with single_thread():
        result = _build(fmt, path, pairs, image_size, seed, subjects, slices_per_subject)
    if target is not None:
        cache.save(target, key, result)
    return result


def _build(fmt: str, path: str | os.PathLike[str] | None, pairs: list[tuple[str, Path, Path]],
           image_size: int, seed: int, subjects: int | None, slices_per_subject: int | None
           ) -> DataBundle:
    if fmt == "shapes":
        cases, desc = shapes.build(image_size, seed, subjects, path)
        return bundle(cases, seed=seed, format=fmt, description=desc, volumetric=False,
                      spacing=(1.0, 1.0))
    if fmt.startswith("mni-"):
        kind = "skullstrip" if fmt == "mni-skullstrip" else "gm"
        cases, desc, spacing = mni.build(kind, image_size, seed, subjects, slices_per_subject, path)
        return bundle(cases, seed=seed, format=fmt, description=desc, volumetric=True,
                      spacing=spacing)
    root = Path(os.fspath(path)).expanduser()  # type: ignore[arg-type]
    if fmt == "images":
        images.validate_pairs(pairs)
        cases = images.build(pairs, image_size)
        desc = images.describe(root, cases, image_size)
        return bundle(cases, seed=seed, format=fmt, description=desc, volumetric=False,
                      spacing=(1.0, 1.0))
    nifti.validate_pairs(pairs)
    cases, spacing = nifti.build_volumes(pairs, image_size, slices_per_subject)
    kind = "NFBS T1-weighted head MRI with brain masks" if fmt == "nfbs" else "NIfTI volumes"
    return bundle(cases, seed=seed, format=fmt,
                  description=nifti.describe(kind, root, cases, image_size, spacing[0]),
                  volumetric=True, spacing=spacing)
