"""The on-disk cache: hits, keys, atomic writes, location."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from seglosses.data import DataBundle, load_data
from seglosses.data import _load, cache


def _same(a: DataBundle, b: DataBundle) -> bool:
    parts = ("train", "val", "test")
    return all(
        torch.equal(getattr(a, p).images, getattr(b, p).images)
        and torch.equal(getattr(a, p).masks, getattr(b, p).masks)
        and getattr(a, p).subjects == getattr(b, p).subjects
        for p in parts
    ) and all(getattr(a, k) == getattr(b, k)
              for k in ("format", "description", "volumetric", "spacing"))


def _no_build(*args: object, **kwargs: object) -> DataBundle:
    raise AssertionError("built although the cache holds this bundle")


def test_second_call_hits_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_data("shapes", image_size=24, subjects=6, cache_dir=tmp_path)
    files = list(tmp_path.glob("shapes-*.pt"))
    assert len(files) == 1
    monkeypatch.setattr(_load, "_build", _no_build)
    second = load_data("shapes", image_size=24, subjects=6, cache_dir=tmp_path)
    assert _same(first, second)
    assert second.train.images.dtype == torch.float32 and second.train.masks.dtype == torch.float32


def test_cached_equals_fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    load_data("shapes", image_size=24, subjects=6, cache_dir=tmp_path)
    cached = load_data("shapes", image_size=24, subjects=6, cache_dir=tmp_path)
    monkeypatch.setenv("SEGLOSSES_CACHE", "off")
    fresh = load_data("shapes", image_size=24, subjects=6)
    assert _same(cached, fresh)


@pytest.mark.parametrize("change", [dict(image_size=32), dict(seed=1), dict(subjects=7),
                                    dict(path="fraction=0.3")])
def test_key_changes_with_parameters(tmp_path: Path, change: dict) -> None:
    base = dict(image_size=24, subjects=6, seed=0, path=None)
    load_data("shapes", base.pop("path"), cache_dir=tmp_path, **base)
    args = {**dict(image_size=24, subjects=6, seed=0, path=None), **change}
    load_data("shapes", args.pop("path"), cache_dir=tmp_path, **args)
    assert len(list(tmp_path.glob("shapes-*.pt"))) == 2


def test_key_covers_version_and_every_parameter() -> None:
    base = {"format": "nifti", "image_size": 64, "seed": 0, "subjects": None,
            "slices_per_subject": None, "files": [("/a", 1, 2)]}
    key = cache.cache_key(base)
    assert key == cache.cache_key(dict(base))
    changes = [("format", "nfbs"), ("image_size", 65), ("seed", 1), ("subjects", 3),
               ("slices_per_subject", 4), ("files", [("/a", 1, 3)]), ("files", [("/a", 2, 2)])]
    for name, value in changes:
        assert cache.cache_key({**base, name: value}) != key, name


def test_user_data_change_invalidates(tmp_path: Path, nifti_dir: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "store"
    load_data("nifti", nifti_dir, image_size=16, cache_dir=store)
    target = nifti_dir / "MASK_00.nii.gz"
    stat = target.stat()
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    load_data("nifti", nifti_dir, image_size=16, cache_dir=store)
    assert len(list(store.glob("nifti-*.pt"))) == 2
    monkeypatch.setattr(_load, "_build", _no_build)
    load_data("nifti", nifti_dir, image_size=16, cache_dir=store)  # now cached


def test_damaged_entry_is_rebuilt(tmp_path: Path) -> None:
    first = load_data("shapes", image_size=16, subjects=5, cache_dir=tmp_path)
    (entry,) = tmp_path.glob("shapes-*.pt")
    entry.write_bytes(b"not a torch file")
    again = load_data("shapes", image_size=16, subjects=5, cache_dir=tmp_path)
    assert _same(first, again)
    assert entry.stat().st_size > 1000  # rewritten


def test_atomic_write_leaves_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy(src: str, dst: str) -> None:
        calls.append((str(src), str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(cache.os, "replace", spy)
    load_data("shapes", image_size=16, subjects=5, cache_dir=tmp_path / "a" / "b")
    (entry,) = (tmp_path / "a" / "b").glob("*")
    assert entry.suffix == ".pt" and calls == [(calls[0][0], str(entry))]
    assert Path(calls[0][0]).parent == entry.parent and calls[0][0].endswith(".tmp")


def test_unwritable_cache_warns_and_continues(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.warns(RuntimeWarning, match="cache not written"):
        data = load_data("shapes", image_size=16, subjects=5, cache_dir=blocker / "sub")
    assert len(data.train) == 3


def test_cache_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGLOSSES_CACHE", str(tmp_path / "env"))
    assert cache.cache_root(None) == tmp_path / "env"
    assert cache.cache_root(tmp_path / "arg") == tmp_path / "arg"
    load_data("shapes", image_size=16, subjects=5)
    assert len(list((tmp_path / "env").glob("shapes-*.pt"))) == 1
    monkeypatch.setenv("SEGLOSSES_CACHE", "off")
    assert cache.cache_root(None) is None
    monkeypatch.delenv("SEGLOSSES_CACHE")
    assert cache.cache_root(None) == Path.home() / ".cache" / "seglosses"
