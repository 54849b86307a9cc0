"""On-disk cache of preprocessed data bundles.

A bundle is stored as one ``.pt`` file named by a SHA-256 hash of everything that shapes it:
the format, the data version, ``image_size``, ``seed``, ``subjects``,
``slices_per_subject`` and, for data read from files, the resolved path of every file used
with its size and modification time. Any change gives a new key, so a stale entry is never
read. Images are stored as float16 and masks as uint8 (the loader rounds images to float16
precision on a cold build too, so a cached bundle equals a fresh one). Writes go to a
temporary file in the same folder, then ``os.replace``: a reader never sees a partial file.

Location: ``cache_dir`` if given, else the ``SEGLOSSES_CACHE`` environment variable, else
``~/.cache/seglosses``. ``SEGLOSSES_CACHE=off`` (or ``0``, ``none``) turns caching off.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from ._core import DataBundle, SliceSet

#: Bump when preprocessing changes: old cache entries are then ignored.
DATA_VERSION = 1
_OFF = {"off", "0", "none", "false", "no"}


def cache_root(cache_dir: str | os.PathLike[str] | None) -> Path | None:
    """The cache folder, or None when caching is off."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("SEGLOSSES_CACHE")
    if env is not None:
        if env.strip().lower() in _OFF or not env.strip():
            return None
        return Path(env).expanduser()
    return Path.home() / ".cache" / "seglosses"


def cache_key(params: dict[str, Any]) -> str:
    """SHA-256 hex digest of the parameters (JSON, sorted keys) and ``DATA_VERSION``."""
    text = json.dumps({"data_version": DATA_VERSION, **params}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def cache_file(root: Path, format: str, key: str) -> Path:
    return root / f"{format}-{key[:24]}.pt"


def load(path: Path, key: str) -> DataBundle | None:
    """The cached bundle, or None when absent, unreadable or from another key/version."""
    if not path.is_file():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if payload.get("key") != key or payload.get("version") != DATA_VERSION:
            return None
        splits = {
            name: SliceSet(part["images"].to(torch.float32), part["masks"].to(torch.float32),
                           list(part["subjects"]))
            for name, part in payload["splits"].items()
        }
        return DataBundle(
            train=splits["train"], val=splits["val"], test=splits["test"],
            format=str(payload["format"]), description=str(payload["description"]),
            volumetric=bool(payload["volumetric"]),
            spacing=(float(payload["spacing"][0]), float(payload["spacing"][1])),
        )
    except Exception:  # a damaged or foreign file is rebuilt, never trusted
        return None


def save(path: Path, key: str, bundle: DataBundle) -> None:
    """Write atomically; on failure (read-only folder, full disk) warn and go on."""
    payload = {
        "version": DATA_VERSION,
        "key": key,
        "format": bundle.format,
        "description": bundle.description,
        "volumetric": bundle.volumetric,
        "spacing": list(bundle.spacing),
        "splits": {
            name: {
                "images": part.images.to(torch.float16),
                "masks": part.masks.to(torch.uint8),
                "subjects": list(part.subjects),
            }
            for name, part in (("train", bundle.train), ("val", bundle.val), ("test", bundle.test))
        },
    }
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            torch.save(payload, fh)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a cache entry is ordinary data
        os.replace(tmp, path)
        tmp = None
    except OSError as err:
        warnings.warn(f"seglosses data cache not written to {path}: {err}", RuntimeWarning,
                      stacklevel=3)
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
