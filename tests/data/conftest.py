"""Fixtures for the data tests: a private cache folder and writers for small test datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Never touch ~/.cache: every test gets its own cache folder through the env variable."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("SEGLOSSES_CACHE", str(folder))
    return folder


def head_volume(shape: tuple[int, int, int] = (20, 24, 12), seed: int = 0,
                fg_slices: tuple[int, int] = (3, 9)) -> tuple[np.ndarray, np.ndarray]:
    """A small 'head': noisy image with a bright ellipsoid; the mask is the ellipsoid,
    present only in axial (third-axis) slices fg_slices[0] <= z < fg_slices[1]."""
    rng = np.random.default_rng(seed)
    x, y, z = np.meshgrid(*(np.linspace(-1, 1, n) for n in shape), indexing="ij")
    ball = (x / 0.7) ** 2 + (y / 0.6) ** 2 < 1.0
    mask = np.zeros(shape, dtype=np.uint8)
    mask[:, :, fg_slices[0]:fg_slices[1]] = ball[:, :, fg_slices[0]:fg_slices[1]]
    image = (100.0 + 400.0 * mask + rng.normal(0, 20, shape)).astype(np.float32)
    return image, mask


def write_nifti(path: Path, data: np.ndarray, zooms: tuple[float, ...] = (1.0, 1.0, 1.0)) -> Path:
    nib = pytest.importorskip("nibabel")
    affine = np.diag(list(zooms[:3]) + [1.0] * (4 - len(zooms[:3])))
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, affine), str(path))
    return path


def write_png(path: Path, array: np.ndarray) -> Path:
    image_mod = pytest.importorskip("PIL.Image")
    path.parent.mkdir(parents=True, exist_ok=True)
    image_mod.fromarray(array).save(path)
    return path


def blob_image(size: tuple[int, int] = (40, 30), seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A grey uint8 image with a bright disc, and its 0/255 mask."""
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    cy, cx = rng.uniform(0.35, 0.65) * h, rng.uniform(0.35, 0.65) * w
    disc = (yy - cy) ** 2 + (xx - cx) ** 2 < (0.25 * min(h, w)) ** 2
    image = np.clip(60 + 120 * disc + rng.normal(0, 10, size), 0, 255).astype(np.uint8)
    return image, (disc * 255).astype(np.uint8)


@pytest.fixture
def nifti_dir(tmp_path: Path) -> Path:
    """Five IMG_/MASK_ pairs."""
    root = tmp_path / "nifti"
    for i in range(5):
        image, mask = head_volume(seed=i)
        write_nifti(root / f"IMG_{i:02d}.nii.gz", image, (1.0, 1.2, 2.0))
        write_nifti(root / f"MASK_{i:02d}.nii.gz", mask, (1.0, 1.2, 2.0))
    return root


@pytest.fixture
def nfbs_dir(tmp_path: Path) -> Path:
    """The NFBS layout: NFBS_Dataset/<subject>/sub-<subject>_ses-NFB3_T1w*.nii.gz."""
    root = tmp_path / "NFBS_Dataset"
    for i in range(4):
        subject = f"A000{i:05d}"
        image, mask = head_volume(seed=10 + i)
        stem = root / subject / f"sub-{subject}_ses-NFB3_T1w"
        write_nifti(Path(f"{stem}.nii.gz"), image)
        write_nifti(Path(f"{stem}_brain.nii.gz"), image * mask)
        write_nifti(Path(f"{stem}_brainmask.nii.gz"), mask)
    return root


@pytest.fixture
def images_dir(tmp_path: Path) -> Path:
    """Six PNG pairs of different sizes, one RGB JPEG image."""
    root = tmp_path / "pngs"
    for i in range(6):
        image, mask = blob_image((40 + 2 * i, 30 + i), seed=i)
        if i == 5:
            rgb = np.repeat(image[:, :, None], 3, axis=2)
            pil = pytest.importorskip("PIL.Image")
            (root / "images").mkdir(parents=True, exist_ok=True)
            pil.fromarray(rgb).save(root / "images" / f"case{i}.jpg", quality=95)
        else:
            write_png(root / "images" / f"case{i}.png", image)
        write_png(root / "masks" / f"case{i}.png", mask)
    return root
