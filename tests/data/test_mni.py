"""The MNI pseudo-subject formats: ``mni-skullstrip`` (embedded default) and ``mni-gm``."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from seglosses.data import DataBundle, DataError, load_data, mri_available
from seglosses.data import mni
from seglosses.data._core import single_thread

pytestmark = pytest.mark.skipif(
    not mri_available(),
    reason="needs nibabel, scipy and the MNI152 files of the nilearn wheel "
    "(pip install 'seglosses[mri]')",
)
ndi = pytest.importorskip("scipy.ndimage")

SMALL = dict(image_size=64, subjects=5, slices_per_subject=8, seed=0)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mni-cache")


@pytest.fixture(scope="module")
def brain(cache: Path) -> DataBundle:
    return load_data("mni-skullstrip", cache_dir=cache, **SMALL)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def grey(cache: Path) -> DataBundle:
    return load_data("mni-gm", cache_dir=cache, **SMALL)  # type: ignore[arg-type]


def _slices(data: DataBundle) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(img[0].numpy(), m[0].numpy() > 0)
            for part in (data.train, data.val, data.test) for img, m in part]


def test_bundle_metadata(brain: DataBundle) -> None:
    assert brain.format == "mni-skullstrip" and brain.volumetric is True
    assert brain.spacing == (4.0, 4.0)  # 256 mm field of view over 64 pixels
    text = brain.description
    for phrase in ("MNI152 2009a", "synthetic", "skull", "not real patients", "brain mask"):
        assert phrase in text
    assert [part.num_subjects for part in (brain.train, brain.val, brain.test)] == [3, 1, 1]
    for part in (brain.train, brain.val, brain.test):
        assert part.images.shape[1:] == (1, 64, 64) and part.images.dtype == torch.float32
        assert float(part.images.min()) >= 0.0 and float(part.images.max()) <= 1.0
        assert set(part.masks.unique().tolist()) == {0.0, 1.0}
        assert all(len(idx) == 8 for idx in part.subject_indices().values())


def test_skull_and_scalp_around_the_brain(brain: DataBundle) -> None:
    """Within 12 mm outside the brain mask the image holds tissue (CSF, bone, marrow, fat,
    skin): bright, unlike the air far outside, and unlike a skull-stripped image."""
    spacing = brain.spacing[0]
    for image, mask in _slices(brain):
        if mask.sum() * spacing**2 < 30 * 100:  # sections under 30 cm^2: tips of the brain
            continue
        ring = ndi.binary_dilation(mask, iterations=round(12 / spacing)) & ~mask
        far = ~ndi.binary_dilation(mask, iterations=round(40 / spacing))
        assert image[ring].mean() > 0.12
        assert np.percentile(image[ring], 90) > 0.2  # marrow and fat are bright on T1
        assert image[ring].mean() > 3 * np.median(image[far])
        assert image[mask].mean() > 0.4


def test_mask_is_a_plausible_brain(brain: DataBundle) -> None:
    spacing = brain.spacing[0]
    for part in (brain.train, brain.val, brain.test):
        for idx in part.subject_indices().values():
            masks = part.masks[idx, 0].numpy() > 0
            area_cm2 = masks.sum(axis=(1, 2)) * spacing**2 / 100
            middle = masks[int(np.argmax(area_cm2))]
            # An adult axial brain section: at most about 120 x 170 mm.
            assert 120 < area_cm2.max() < 260
            assert area_cm2[0] < 0.5 * area_cm2.max() and area_cm2[-1] < 0.5 * area_cm2.max()
            _, components = ndi.label(middle)
            assert components == 1
            assert np.array_equal(ndi.binary_fill_holes(middle), middle)  # ventricles filled
            rows, cols = np.nonzero(middle)
            height, width = np.ptp(rows) * spacing, np.ptp(cols) * spacing
            # Longer front to back than across.
            assert 120 < height < 200 and 90 < width < 170 and height > width


def test_gm_is_thin_and_imbalanced(brain: DataBundle, grey: DataBundle) -> None:
    assert grey.format == "mni-gm" and "grey matter" in grey.description
    # Same pseudo-subjects, other target.
    assert torch.equal(brain.train.images, grey.train.images)
    assert brain.train.subjects == grey.train.subjects
    b, g = brain.train.masks, grey.train.masks
    assert float(g.mean()) < 0.75 * float(b.mean())
    assert float((g * b).sum()) > 0.97 * float(g.sum())  # grey matter lies in the brain

    def boundary_per_area(m: torch.Tensor) -> float:
        m = m[:, 0]
        edges = (m[:, 1:] != m[:, :-1]).sum() + (m[:, :, 1:] != m[:, :, :-1]).sum()
        return float(edges / m.sum())

    assert boundary_per_area(g) > 2 * boundary_per_area(b)


def test_deterministic_and_prefix() -> None:
    with single_thread():
        two, _, _ = mni.build("skullstrip", 64, 1, 2, 4, None)
        three, _, _ = mni.build("skullstrip", 64, 1, 3, 4, None)
        other, _, _ = mni.build("skullstrip", 64, 2, 2, 4, None)
    for a, b in zip(two, three):
        assert a.name == b.name
        assert torch.equal(a.images, b.images) and torch.equal(a.masks, b.masks)
    assert not torch.equal(two[0].images, other[0].images)
    assert not torch.equal(three[0].masks, three[1].masks)  # subjects differ from each other


def test_default_slices_cover_the_brain(cache: Path) -> None:
    data = load_data("mni-skullstrip", image_size=64, subjects=3, cache_dir=cache)
    for part in (data.train, data.val, data.test):
        for idx in part.subject_indices().values():
            # The brain spans about 150 mm (minus the tips) at 4 mm per slice.
            assert 25 <= len(idx) <= 42
            assert bool((part.masks[idx].flatten(1).sum(1) > 0).all())


def test_mri_available_does_not_import_nilearn(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "nilearn" or m.startswith("nilearn.")]:
        monkeypatch.delitem(sys.modules, name)
    assert mri_available() is True
    assert mni.template_dir() is not None
    assert not any(m == "nilearn" or m.startswith("nilearn.") for m in sys.modules)


def test_template_folder_argument(tmp_path: Path, cache: Path) -> None:
    source = mni.template_dir()
    assert source is not None
    for name in mni.MNI_FILES.values():
        (tmp_path / name).symlink_to(source / name)
    data = load_data("mni-skullstrip", tmp_path, image_size=64, subjects=3, slices_per_subject=2,
                     cache_dir=cache)
    assert len(data.train) == 2
    (tmp_path / mni.MNI_FILES["gm"]).unlink()
    with pytest.raises(DataError, match=mni.MNI_FILES["gm"] + ": missing MNI152 template file"):
        load_data("mni-gm", tmp_path, image_size=64, subjects=3, cache_dir=cache)
