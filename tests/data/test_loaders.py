"""The file formats on small folders written here: ``nifti``, ``nfbs``, ``images``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from seglosses.data import DataBundle, load_data, validate_data

from .conftest import blob_image, head_volume, write_nifti, write_png

nib = pytest.importorskip("nibabel", reason="NIfTI formats need nibabel")


def _all(data: DataBundle) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    out = []
    for part in (data.train, data.val, data.test):
        for name, idx in part.subject_indices().items():
            out.append((name, part.images[idx], part.masks[idx]))
    return sorted(out, key=lambda t: t[0])


def _check_common(data: DataBundle, size: int) -> None:
    for part in (data.train, data.val, data.test):
        assert part.images.shape[1:] == (1, size, size) and part.images.dtype == torch.float32
        assert part.masks.dtype == torch.float32 and set(part.masks.unique().tolist()) <= {0.0, 1.0}
        assert float(part.images.min()) >= 0.0 and float(part.images.max()) <= 1.0
    names = [set(p.subjects) for p in (data.train, data.val, data.test)]
    assert not (names[0] & names[1] or names[0] & names[2] or names[1] & names[2])


def test_nifti_prefix_layout(nifti_dir: Path) -> None:
    validate_data("nifti", nifti_dir)
    data = load_data("nifti", nifti_dir, image_size=32)
    _check_common(data, 32)
    assert data.format == "nifti" and data.volumetric is True
    assert [p.num_subjects for p in (data.train, data.val, data.test)] == [3, 1, 1]
    # Field of view 20 x 28.8 mm (1.0 x 1.2 mm voxels) padded to 28.8 mm over 32 pixels.
    assert data.spacing == pytest.approx((0.9, 0.9))
    for name, images, masks in _all(data):
        has_fg = masks.flatten(1).any(dim=1)
        # Axial = third axis: foreground in z = 3..8 only, plus 10 % as many empty slices.
        assert int(has_fg.sum()) == 6 and len(masks) == 7
        m = masks[has_fg][2, 0]
        rows, cols = torch.nonzero(m, as_tuple=True)
        height, width = int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
        # Ellipse semi-axes 0.6 * 14.4 mm (y, rows) and 0.7 * 10 mm (x, columns): aspect kept.
        assert 1.05 < height / width < 1.45
        assert float(images[has_fg][m.unsqueeze(0).bool().expand_as(images[has_fg])].mean()) > 0.5
    assert "5 subjects" in data.description


def test_nifti_folder_layout_and_storage_order(tmp_path: Path) -> None:
    plain, permuted = tmp_path / "plain", tmp_path / "permuted"
    swap = np.array([[0, 0, 1.2, 0], [0, 1.0, 0, 0], [2.0, 0, 0, 0], [0, 0, 0, 1]])
    for i in range(3):
        image, mask = head_volume(seed=i)
        write_nifti(plain / "images" / f"s{i}.nii.gz", image, (1.2, 1.0, 2.0))
        write_nifti(plain / "masks" / f"s{i}.nii.gz", mask, (1.2, 1.0, 2.0))
        # The same volumes stored with axes in the order (z, y, x): the affine says so.
        (permuted / "images").mkdir(parents=True, exist_ok=True)
        (permuted / "masks").mkdir(parents=True, exist_ok=True)
        for folder, volume in (("images", image), ("masks", mask)):
            stored = nib.Nifti1Image(volume.transpose(2, 1, 0).copy(), swap)
            nib.save(stored, str(permuted / folder / f"s{i}.nii"))
    a = load_data("nifti", plain, image_size=24)
    b = load_data("nifti", permuted, image_size=24)
    _check_common(a, 24)
    for (na, ia, ma), (nb, ib, mb) in zip(_all(a), _all(b)):
        assert na == nb and torch.equal(ma, mb) and torch.allclose(ia, ib)


def test_nifti_variants(tmp_path: Path) -> None:
    """A 4D volume with one frame, a 2D volume and a probability-map mask are accepted."""
    root = tmp_path / "v"
    image, mask = head_volume(seed=1)
    write_nifti(root / "IMG_a.nii.gz", image[..., None])
    write_nifti(root / "MASK_a.nii.gz", mask[..., None])
    write_nifti(root / "IMG_b.nii", image[:, :, 5])
    write_nifti(root / "MASK_b.nii", mask[:, :, 5])
    write_nifti(root / "IMG_c.nii.gz", image)
    write_nifti(root / "MASK_c.nii.gz", np.where(mask > 0, 0.8, 0.3).astype(np.float32))
    data = load_data("nifti", root, image_size=16)
    by_name = {name: masks for name, _, masks in _all(data)}
    assert len(by_name["b"]) == 1 and len(by_name["a"]) == 7
    assert torch.equal(by_name["c"], by_name["a"])  # 0.8 is foreground, 0.3 is not


def test_slice_cap_and_subject_subset(nifti_dir: Path) -> None:
    data = load_data("nifti", nifti_dir, image_size=16, slices_per_subject=3)
    assert all(len(masks) == 3 for _, _, masks in _all(data))
    subset = load_data("nifti", nifti_dir, image_size=16, subjects=3, seed=2)
    assert sum(p.num_subjects for p in (subset.train, subset.val, subset.test)) == 3
    again = load_data("nifti", nifti_dir, image_size=16, subjects=3, seed=2,
                      cache_dir=nifti_dir.parent / "c2")
    assert [n for n, _, _ in _all(subset)] == [n for n, _, _ in _all(again)]


@pytest.mark.parametrize("point_at_parent", [False, True])
def test_nfbs_layout(nfbs_dir: Path, point_at_parent: bool) -> None:
    path = nfbs_dir.parent if point_at_parent else nfbs_dir
    validate_data("nfbs", path)
    data = load_data("nfbs", path, image_size=24)
    _check_common(data, 24)
    assert data.format == "nfbs" and data.volumetric and "NFBS" in data.description
    names = sorted(n for n, _, _ in _all(data))
    assert names == [f"A000{i:05d}" for i in range(4)]
    assert [p.num_subjects for p in (data.train, data.val, data.test)] == [2, 1, 1]
    for _, _, masks in _all(data):
        assert int(masks.flatten(1).any(dim=1).sum()) == 6


def test_images_layout(images_dir: Path) -> None:
    validate_data("images", images_dir)
    data = load_data("images", images_dir, image_size=32, slices_per_subject=3)
    _check_common(data, 32)
    assert data.format == "images" and data.volumetric is False and data.spacing == (1.0, 1.0)
    assert [len(p) for p in (data.train, data.val, data.test)] == [4, 1, 1]
    for name, images, masks in _all(data):
        assert len(images) == 1
        m = masks[0, 0]
        rows, cols = torch.nonzero(m, as_tuple=True)
        height, width = int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
        assert abs(height - width) <= 2  # a disc stays a disc: proportions kept by padding
        assert float(images[0, 0][m.bool()].mean()) > float(images[0, 0][~m.bool()].mean()) + 0.3
    assert sorted(n for n, _, _ in _all(data)) == [f"case{i}" for i in range(6)]


def test_images_modes(tmp_path: Path) -> None:
    """16-bit grey images, RGBA masks (alpha ignored) and palette masks."""
    pil = pytest.importorskip("PIL.Image")
    root = tmp_path / "modes"
    for i in range(3):
        image, mask = blob_image((30, 30), seed=i)
        write_png(root / "images" / f"x{i}.png", (image.astype(np.uint16) * 200))
        if i == 0:
            rgba = np.zeros((30, 30, 4), np.uint8)
            rgba[..., 1] = mask
            rgba[..., 3] = 255
            write_png(root / "masks" / f"x{i}.png", rgba)
        elif i == 1:
            palette = pil.fromarray((mask > 0).astype(np.uint8), mode="L").convert("P")
            palette.save(root / "masks" / "x1.png")
        else:
            write_png(root / "masks" / f"x{i}.png", mask)
    data = load_data("images", root, image_size=30)
    for name, images, masks in _all(data):
        expected = torch.from_numpy(blob_image((30, 30), seed=int(name[1:]))[1] > 0).float()
        assert torch.equal(masks[0, 0], expected)
