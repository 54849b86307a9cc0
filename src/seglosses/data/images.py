"""2D image folders (``images`` format), read with Pillow.

Layout: ``images/<id>.{png,jpg,jpeg,tif,tiff}`` with ``masks/<id>.png`` (``.tif``/``.tiff``
masks are accepted too; JPEG masks are not, compression blurs the labels). A mask pixel is
foreground where it is nonzero (on any colour channel; alpha is ignored). Colour images are
converted to grey (ITU-R 601 luma), 16-bit and float images keep their range. Each image is
normalised on its own (0.5th/99.5th percentiles to [0, 1]), padded to a square (keeping its
proportions) and resampled to ``image_size``. Each image is one case: metrics are per image.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import torch

from ._core import Case, DataError, fail, match_pairs, quantise, robust_normalise, to_square
from .nifti import check_dir

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
MASK_SUFFIXES = (".png", ".tif", ".tiff")
_LAYOUT = "images/<id>.{png,jpg,jpeg,tif,tiff} with masks/<id>.png"


def require_pillow() -> None:
    """Raise :class:`DataError` when Pillow is missing."""
    if importlib.util.find_spec("PIL") is None:
        raise DataError(
            "Pillow: not installed; the images format needs it (pip install 'seglosses[bench]')"
        )


def _index(folder: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for file in sorted(folder.iterdir()):
        if file.name.startswith(".") or not file.is_file() or file.suffix.lower() not in suffixes:
            continue
        key = file.stem
        if key in found:
            raise fail(file, f"duplicate id {key!r}: also {found[key].name}")
        found[key] = file
    return found


def find_pairs(path: str | os.PathLike[str] | None) -> list[tuple[str, Path, Path]]:
    """(id, image, mask) of every image pair, sorted by id."""
    root = check_dir(path, "images")
    for sub in ("images", "masks"):
        if not (root / sub).is_dir():
            raise fail(root / sub, f"missing folder; expected {_LAYOUT}")
    images = _index(root / "images", IMAGE_SUFFIXES)
    masks = _index(root / "masks", MASK_SUFFIXES)
    if not images and not masks:
        raise fail(root, f"no image pairs found; expected {_LAYOUT}")
    return match_pairs(images, masks, "images/{}.{{png,jpg,jpeg,tif,tiff}}", "masks/{}.png")


def _size(path: Path) -> tuple[int, int]:
    from PIL import Image

    if path.stat().st_size == 0:
        raise fail(path, "empty file (0 bytes)")
    try:
        with Image.open(path) as im:
            return im.size
    except Exception as err:  # Pillow raises several types for a bad file
        raise fail(path, f"unreadable image ({type(err).__name__}: {err})") from None


def validate_pairs(pairs: list[tuple[str, Path, Path]]) -> None:
    """Header check of every pair: readable, same size."""
    require_pillow()
    for _, image, mask in pairs:
        a, b = _size(image), _size(mask)
        if a != b:
            raise fail(mask, f"mask size {b[0]}x{b[1]} differs from image {image.name} "
                             f"size {a[0]}x{a[1]}")


def _read(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode == "P":
                im = im.convert("RGBA") if "transparency" in im.info else im.convert("RGB")
            arr = np.asarray(im)
    except Exception as err:
        raise fail(path, f"unreadable image ({type(err).__name__}: {err})") from None
    if arr.dtype.kind not in "biuf" or arr.ndim not in (2, 3) or arr.size == 0:
        raise fail(path, f"unsupported image data (shape {arr.shape}, type {arr.dtype})")
    return arr


def read_image(path: Path) -> np.ndarray:
    """Grey-level image (H, W) float32, colour converted with ITU-R 601 luma."""
    arr = _read(path).astype(np.float32)
    if arr.ndim == 3:
        if arr.shape[2] >= 3:
            arr = arr[..., 0] * 0.299 + arr[..., 1] * 0.587 + arr[..., 2] * 0.114
        else:
            arr = arr[..., 0]
    return np.nan_to_num(arr)


def read_mask(path: Path) -> np.ndarray:
    """Binary mask (H, W): nonzero on any colour channel (alpha ignored)."""
    arr = _read(path)
    if arr.ndim == 3:
        arr = arr[..., : 3 if arr.shape[2] >= 3 else 1]
        out = (np.nan_to_num(arr.astype(np.float32)) != 0).any(axis=2)
    else:
        out = np.nan_to_num(arr.astype(np.float32)) != 0
    if not out.any():
        raise fail(path, "mask has no foreground pixel (all zero)")
    return out


def build(pairs: list[tuple[str, Path, Path]], image_size: int) -> list[Case]:
    """Read, normalise and resample every pair: one case per image."""
    cases = []
    for name, image_path, mask_path in pairs:
        image, mask = read_image(image_path), read_mask(mask_path)
        if image.shape != mask.shape:
            raise fail(mask_path, f"mask size {mask.shape[1]}x{mask.shape[0]} differs from image "
                                  f"{image_path.name} size {image.shape[1]}x{image.shape[0]}")
        img = robust_normalise(torch.from_numpy(image)).unsqueeze(0)
        imgs, msks, _ = to_square(img, torch.from_numpy(mask).unsqueeze(0), image_size)
        if not bool(msks.any()):
            raise fail(mask_path, f"mask foreground vanishes when resampled to {image_size} pixels")
        cases.append(Case(name, quantise(imgs), msks))
    return cases


def describe(root: Path, cases: list[Case], image_size: int) -> str:
    return (
        f"2D images from {root}: {len(cases)} images resampled to {image_size}x{image_size} "
        f"pixels (proportions kept by padding), grey levels normalised per image."
    )
