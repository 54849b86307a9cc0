"""Every kind of bad data raises DataError, on one line naming the file and the problem."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from seglosses.data import DataError, load_data, validate_data

from .conftest import blob_image, head_volume, write_nifti, write_png

pytest.importorskip("nibabel", reason="NIfTI formats need nibabel")
pytest.importorskip("PIL", reason="the images format needs Pillow")


def _pair(root: Path, key: str, *, prefix: bool = True) -> None:
    image, mask = head_volume(seed=len(key))
    if prefix:
        write_nifti(root / f"IMG_{key}.nii.gz", image)
        write_nifti(root / f"MASK_{key}.nii.gz", mask)
    else:
        write_nifti(root / "images" / f"{key}.nii.gz", image)
        write_nifti(root / "masks" / f"{key}.nii.gz", mask)


def _png_pair(root: Path, key: str) -> None:
    image, mask = blob_image(seed=len(key))
    write_png(root / "images" / f"{key}.png", image)
    write_png(root / "masks" / f"{key}.png", mask)


def _nfbs_subject(root: Path, subject: str, *, image: bool = True, mask: bool = True) -> Path:
    vol, msk = head_volume()
    stem = root / subject / f"sub-{subject}_ses-NFB3_T1w"
    (root / subject).mkdir(parents=True, exist_ok=True)
    if image:
        write_nifti(Path(f"{stem}.nii.gz"), vol)
    if mask:
        write_nifti(Path(f"{stem}_brainmask.nii.gz"), msk)
    return root / subject


# Each case writes its data under tmp_path and returns (format, path, the file the message must
# name, the problem it must state, whether the header-only validate_data already sees it).
Case = Callable[[Path], tuple[str, "Path | None", str, str, bool]]


def missing_path(tmp: Path):
    return "nifti", tmp / "nowhere", "nowhere", "no such file or directory", True


def path_is_file(tmp: Path):
    f = tmp / "volume.nii.gz"
    f.write_bytes(b"x")
    return "nfbs", f, "volume.nii.gz", "not a folder", True


def no_path(tmp: Path):
    return "images", None, "path", "needs a data folder", True


def empty_nifti_folder(tmp: Path):
    (tmp / "empty").mkdir()
    return "nifti", tmp / "empty", "empty", "no NIfTI volume pairs found", True


def empty_images_folder(tmp: Path):
    (tmp / "d" / "images").mkdir(parents=True)
    (tmp / "d" / "masks").mkdir()
    return "images", tmp / "d", "d", "no image pairs found", True


def images_without_masks_folder(tmp: Path):
    _png_pair(tmp / "d", "a")
    for f in (tmp / "d" / "masks").iterdir():
        f.unlink()
    (tmp / "d" / "masks").rmdir()
    return "images", tmp / "d", "masks", "missing folder", True


def empty_nfbs_folder(tmp: Path):
    (tmp / "NFBS_Dataset" / "notes").mkdir(parents=True)
    (tmp / "NFBS_Dataset" / "other").mkdir()
    return "nfbs", tmp / "NFBS_Dataset", "NFBS_Dataset", "no NFBS subject folders found", True


def nifti_missing_mask(tmp: Path):
    _pair(tmp / "d", "01")
    _pair(tmp / "d", "02")
    (tmp / "d" / "MASK_02.nii.gz").unlink()
    return "nifti", tmp / "d", "IMG_02.nii.gz", "no matching mask MASK_02.nii[.gz]", True


def nifti_missing_image(tmp: Path):
    _pair(tmp / "d", "01")
    _pair(tmp / "d", "02")
    (tmp / "d" / "IMG_01.nii.gz").unlink()
    return "nifti", tmp / "d", "MASK_01.nii.gz", "no matching image IMG_01.nii[.gz]", True


def nifti_folder_layout_missing_mask(tmp: Path):
    _pair(tmp / "d", "x", prefix=False)
    _pair(tmp / "d", "y", prefix=False)
    (tmp / "d" / "masks" / "y.nii.gz").unlink()
    return "nifti", tmp / "d", "images/y.nii.gz", "no matching mask masks/y.nii[.gz]", True


def nifti_unreadable(tmp: Path):
    _pair(tmp / "d", "01")
    (tmp / "d" / "IMG_01.nii.gz").write_bytes(b"this is not a volume")
    return "nifti", tmp / "d", "IMG_01.nii.gz", "unreadable NIfTI file", True


def nifti_zero_bytes(tmp: Path):
    _pair(tmp / "d", "01")
    (tmp / "d" / "MASK_01.nii.gz").write_bytes(b"")
    return "nifti", tmp / "d", "MASK_01.nii.gz", "empty file", True


def nifti_truncated(tmp: Path):
    """Header intact, voxel data cut short: only reading the data finds it."""
    _pair(tmp / "d", "01")
    f = tmp / "d" / "IMG_01.nii.gz"
    raw = gzip.decompress(f.read_bytes())
    f.write_bytes(gzip.compress(raw[: len(raw) // 2]))
    return "nifti", tmp / "d", "IMG_01.nii.gz", "unreadable NIfTI file", False


def nifti_shape_mismatch(tmp: Path):
    _pair(tmp / "d", "01")
    write_nifti(tmp / "d" / "MASK_01.nii.gz", np.ones((20, 24, 11), np.uint8))
    return "nifti", tmp / "d", "MASK_01.nii.gz", "differs from image IMG_01.nii.gz", True


def nifti_empty_mask(tmp: Path):
    _pair(tmp / "d", "01")
    write_nifti(tmp / "d" / "MASK_01.nii.gz", np.zeros((20, 24, 12), np.uint8))
    return "nifti", tmp / "d", "MASK_01.nii.gz", "mask has no foreground voxel", False


def nifti_time_series(tmp: Path):
    image, mask = head_volume()
    write_nifti(tmp / "d" / "IMG_t.nii.gz", np.stack([image, image], axis=-1))
    write_nifti(tmp / "d" / "MASK_t.nii.gz", np.stack([mask, mask], axis=-1))
    return "nifti", tmp / "d", "IMG_t.nii.gz", "expected a 2D or 3D volume", True


def nifti_duplicate_id(tmp: Path):
    _pair(tmp / "d", "01")
    image, _ = head_volume()
    write_nifti(tmp / "d" / "IMG_01.nii", image)
    return "nifti", tmp / "d", "IMG_01.nii", "duplicate id '01'", True


def nfbs_missing_mask(tmp: Path):
    root = tmp / "NFBS_Dataset"
    _nfbs_subject(root, "A1")
    _nfbs_subject(root, "A2", mask=False)
    return "nfbs", root, "A2", "no *_brainmask.nii.gz mask", True


def nfbs_missing_image(tmp: Path):
    root = tmp / "NFBS_Dataset"
    _nfbs_subject(root, "A1", image=False)
    return "nfbs", root, "A1", "no *_T1w.nii.gz image", True


def nfbs_two_images(tmp: Path):
    root = tmp / "NFBS_Dataset"
    folder = _nfbs_subject(root, "A1")
    vol, _ = head_volume()
    write_nifti(folder / "sub-A1_ses-NFB4_T1w.nii.gz", vol)
    return "nfbs", root, "A1", "2 *_T1w.nii.gz images", True


def nfbs_empty_mask(tmp: Path):
    root = tmp / "NFBS_Dataset"
    folder = _nfbs_subject(root, "A1")
    write_nifti(folder / "sub-A1_ses-NFB3_T1w_brainmask.nii.gz", np.zeros((20, 24, 12), np.uint8))
    name = "sub-A1_ses-NFB3_T1w_brainmask.nii.gz"
    return "nfbs", root, name, "mask has no foreground voxel", False


def images_missing_mask(tmp: Path):
    _png_pair(tmp / "d", "a")
    write_png(tmp / "d" / "images" / "b.jpg", blob_image()[0])
    return "images", tmp / "d", "images/b.jpg", "no matching mask masks/b.png", True


def images_missing_image(tmp: Path):
    _png_pair(tmp / "d", "a")
    write_png(tmp / "d" / "masks" / "c.png", blob_image()[1])
    return "images", tmp / "d", "masks/c.png", "no matching image images/c.", True


def images_size_mismatch(tmp: Path):
    _png_pair(tmp / "d", "a")
    write_png(tmp / "d" / "masks" / "a.png", np.full((12, 9), 255, np.uint8))
    problem = "mask size 9x12 differs from image a.png size 30x40"
    return "images", tmp / "d", "masks/a.png", problem, True


def images_unreadable(tmp: Path):
    _png_pair(tmp / "d", "a")
    (tmp / "d" / "images" / "a.png").write_bytes(b"\x89PNG not really")
    return "images", tmp / "d", "images/a.png", "unreadable image", True


def images_truncated(tmp: Path):
    _png_pair(tmp / "d", "a")
    f = tmp / "d" / "images" / "a.png"
    f.write_bytes(f.read_bytes()[:60])
    return "images", tmp / "d", "images/a.png", "unreadable image", False


def images_empty_mask(tmp: Path):
    _png_pair(tmp / "d", "a")
    _png_pair(tmp / "d", "b")
    write_png(tmp / "d" / "masks" / "b.png", np.zeros((40, 30), np.uint8))
    return "images", tmp / "d", "masks/b.png", "mask has no foreground pixel", False


CASES: list[Case] = [
    missing_path, path_is_file, no_path, empty_nifti_folder, empty_images_folder,
    images_without_masks_folder, empty_nfbs_folder, nifti_missing_mask, nifti_missing_image,
    nifti_folder_layout_missing_mask, nifti_unreadable, nifti_zero_bytes, nifti_truncated,
    nifti_shape_mismatch, nifti_empty_mask, nifti_time_series, nifti_duplicate_id,
    nfbs_missing_mask, nfbs_missing_image, nfbs_two_images, nfbs_empty_mask,
    images_missing_mask, images_missing_image, images_size_mismatch, images_unreadable,
    images_truncated, images_empty_mask,
]


@pytest.mark.parametrize("case", CASES, ids=[c.__name__ for c in CASES])
def test_bad_data(case: Case, tmp_path: Path) -> None:
    fmt, path, names, problem, header_level = case(tmp_path)
    for check in ([validate_data] if header_level else []) + [load_data]:
        with pytest.raises(DataError) as info:
            check(fmt, path)
        message = str(info.value)
        assert "\n" not in message
        assert names in message, message
        assert problem in message, message
    assert not list((tmp_path / "cache").glob("*.pt"))  # nothing cached from bad data


def test_header_checks_pass_where_only_data_is_bad(tmp_path: Path) -> None:
    fmt, path, _, _, _ = nifti_empty_mask(tmp_path)
    validate_data(fmt, path)  # headers are fine; load_data finds the empty mask


def test_unknown_format() -> None:
    match = "format: must be one of shapes, mni-skullstrip.*did you mean 'nifti'"
    with pytest.raises(DataError, match=match):
        load_data("nifty")
    with pytest.raises(DataError, match="format"):
        validate_data(3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(image_size=8), ValueError, "image_size"),
        (dict(image_size=64.0), TypeError, "image_size"),
        (dict(seed=-1), ValueError, "seed"),
        (dict(subjects=2), ValueError, "subjects"),
        (dict(slices_per_subject=0), ValueError, "slices_per_subject"),
    ],
)
def test_bad_arguments(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        load_data("shapes", **kwargs)
