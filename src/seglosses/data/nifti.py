"""NIfTI volumes: reading, slicing, and the ``nifti`` folder layout.

Volumes are reoriented to the closest canonical (RAS+) orientation with nibabel, so the
third axis runs inferior to superior and slicing it gives axial slices whatever the storage
order. Each slice is shown with anterior at the top (rows) and the x axis across (columns).
A mask is foreground where it is nonzero; a mask holding fractional values (a probability
map) is foreground where it exceeds 0.5. Images are normalised per volume (0.5th and 99.5th
percentiles of the whole volume mapped to [0, 1], clipped). All slices with foreground are
kept plus 10 % as many mask-free ones (evenly spaced), and each slice is padded to a square
field of view in mm and resampled to ``image_size`` (see ``_core.to_square``).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import torch

from ._core import (
    Case,
    DataError,
    choose_slices,
    fail,
    match_pairs,
    quantise,
    robust_normalise,
    to_square,
)

NIFTI_SUFFIXES = (".nii.gz", ".nii")
_LAYOUTS = (
    "IMG_<id>.nii[.gz] with MASK_<id>.nii[.gz], or images/<id>.nii[.gz] with masks/<id>.nii[.gz]"
)


def require_nibabel() -> None:
    """Raise :class:`DataError` when nibabel is missing."""
    if importlib.util.find_spec("nibabel") is None:
        raise DataError(
            "nibabel: not installed; NIfTI data needs it (pip install 'seglosses[mri]')"
        )


def nifti_id(name: str) -> str | None:
    """The name without its NIfTI suffix, or None for another kind of file."""
    lower = name.lower()
    for suffix in NIFTI_SUFFIXES:
        if lower.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return None


def check_dir(path: str | os.PathLike[str] | None, what: str) -> Path:
    """An existing folder, else :class:`DataError`."""
    if path is None:
        raise DataError(f"path: the {what} format needs a data folder (--data PATH); got none")
    root = Path(path).expanduser()
    if not root.exists():
        raise fail(root, "no such file or directory")
    if not root.is_dir():
        raise fail(root, f"not a folder; the {what} format expects a folder")
    return root


def _visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def find_pairs(path: str | os.PathLike[str] | None) -> list[tuple[str, Path, Path]]:
    """(id, image, mask) of every volume pair of a ``nifti`` folder, sorted by id."""
    root = check_dir(path, "nifti")
    images_dir, masks_dir = root / "images", root / "masks"
    if images_dir.is_dir() or masks_dir.is_dir():
        for folder in (images_dir, masks_dir):
            if not folder.is_dir():
                raise fail(folder, "missing folder; expected images/<id>.nii[.gz] with "
                                   "masks/<id>.nii[.gz]")
        images = _index(images_dir, "")
        masks = _index(masks_dir, "")
        img_hint, mask_hint = "images/{}.nii[.gz]", "masks/{}.nii[.gz]"
    else:
        images = _index(root, "IMG_")
        masks = _index(root, "MASK_")
        img_hint, mask_hint = "IMG_{}.nii[.gz]", "MASK_{}.nii[.gz]"
    if not images and not masks:
        raise fail(root, f"no NIfTI volume pairs found; expected {_LAYOUTS}")
    return match_pairs(images, masks, img_hint, mask_hint)


def _index(folder: Path, prefix: str) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for file in _visible(folder):
        if not file.name.upper().startswith(prefix):
            continue
        key = nifti_id(file.name[len(prefix):])
        if key is None or not key:
            continue
        if key in found:
            raise fail(file, f"duplicate id {key!r}: also {found[key].name}")
        found[key] = file
    return found


def read_shape(path: Path) -> tuple[int, int, int]:
    """Spatial shape from the header only (cheap), as a 3D shape; DataError when unreadable."""
    import nibabel as nib

    if path.stat().st_size == 0:
        raise fail(path, "empty file (0 bytes)")
    try:
        shape = tuple(int(v) for v in nib.load(str(path)).header.get_data_shape())
    except Exception as err:  # nibabel raises many types for a bad file
        raise fail(path, f"unreadable NIfTI file ({type(err).__name__}: {err})") from None
    return _as_3d(path, shape)


def _as_3d(path: Path, shape: tuple[int, ...]) -> tuple[int, int, int]:
    extra = [d for d in shape[3:] if d != 1]
    if len(shape) < 2 or extra or any(d == 0 for d in shape):
        raise fail(path, f"expected a 2D or 3D volume; got shape {shape}")
    return (shape + (1,))[:3] if len(shape) == 2 else tuple(shape[:3])  # type: ignore[return-value]


def read_volume(path: Path) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Voxel array (X, Y, Z) in RAS+ orientation and the voxel size in mm."""
    import nibabel as nib

    try:
        img = nib.load(str(path))
        shape = tuple(int(v) for v in img.shape)
        if len(shape) == 2:
            img = img.__class__(np.asanyarray(img.dataobj)[:, :, None], img.affine, img.header)
        img = nib.as_closest_canonical(img)
        data = np.asarray(img.dataobj)
        zooms = tuple(float(z) for z in img.header.get_zooms()[:3])
    except Exception as err:  # nibabel raises many types for a bad file
        raise fail(path, f"unreadable NIfTI file ({type(err).__name__}: {err})") from None
    data = data.reshape(_as_3d(path, tuple(data.shape)))
    if data.dtype.kind not in "biuf":
        raise fail(path, f"unsupported voxel type {data.dtype}")
    zooms = tuple(z if np.isfinite(z) and z > 0 else 1.0 for z in (zooms + (1.0, 1.0))[:3])
    return data, zooms  # type: ignore[return-value]


def mask_to_binary(path: Path, data: np.ndarray) -> np.ndarray:
    """Nonzero = foreground; fractional values (probability maps): > 0.5."""
    values = np.nan_to_num(data.astype(np.float32, copy=False))
    if data.dtype.kind == "f" and np.any(values != np.round(values)):
        out = values > 0.5
    else:
        out = values != 0
    if not out.any():
        raise fail(path, "mask has no foreground voxel (all zero)")
    return out


def volume_case(name: str, image_path: Path, mask_path: Path, image_size: int,
                slices_per_subject: int | None) -> tuple[Case, float]:
    """Read one volume pair into a :class:`Case` of axial slices; returns it and its spacing."""
    image, zooms = read_volume(image_path)
    mask_raw, _ = read_volume(mask_path)
    if mask_raw.shape != image.shape:
        raise fail(mask_path, f"mask shape {mask_raw.shape} differs from image {image_path.name} "
                              f"shape {image.shape}")
    mask = mask_to_binary(mask_path, mask_raw)
    vol = torch.from_numpy(np.nan_to_num(image.astype(np.float32, copy=False)))
    vol = robust_normalise(vol)
    # (X, Y, Z) -> (Z, Y, X) with anterior (high y) in row 0.
    slices = vol.permute(2, 1, 0).flip(1)
    masks = torch.from_numpy(mask).permute(2, 1, 0).flip(1)
    keep = choose_slices(masks.flatten(1).any(dim=1).numpy(), slices_per_subject)
    idx = torch.from_numpy(keep)
    imgs, msks, spacing = to_square(slices[idx], masks[idx], image_size, (zooms[1], zooms[0]))
    if not bool(msks.any()):
        raise fail(mask_path, f"mask foreground vanishes when resampled to {image_size} pixels")
    return Case(name, quantise(imgs), msks), spacing


def validate_pairs(pairs: list[tuple[str, Path, Path]]) -> None:
    """Header check of every pair: readable, 2D/3D, same grid size."""
    require_nibabel()
    for _, image, mask in pairs:
        a, b = read_shape(image), read_shape(mask)
        if a != b:
            raise fail(mask, f"mask shape {b} differs from image {image.name} shape {a}")


def build_volumes(pairs: list[tuple[str, Path, Path]], image_size: int,
                  slices_per_subject: int | None) -> tuple[list[Case], tuple[float, float]]:
    """Read and slice every pair; the bundle spacing is the median pixel spacing."""
    cases, spacings = [], []
    for name, image, mask in pairs:
        case, spacing = volume_case(name, image, mask, image_size, slices_per_subject)
        cases.append(case)
        spacings.append(spacing)
    pixel = round(float(np.median(spacings)), 6)
    return cases, (pixel, pixel)


def describe(kind: str, root: Path, cases: list[Case], image_size: int, pixel: float) -> str:
    n_slices = sum(c.images.shape[0] for c in cases)
    return (
        f"{kind} from {root}: {len(cases)} subjects, {n_slices} axial slices resampled to "
        f"{image_size}x{image_size} pixels (median {pixel:.3g} mm per pixel), normalised per "
        f"volume; all slices with foreground plus 10% as many without."
    )
