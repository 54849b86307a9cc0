"""The NFBS skull-stripping repository as downloaded (``nfbs`` format).

NFBS (Neurofeedback Skull-stripped repository; Puccio et al. 2016, distributed by the
Preprocessed Connectomes Project) holds 125 T1-weighted head scans with manually corrected
brain masks, one folder per subject::

    NFBS_Dataset/
      A00028185/
        sub-A00028185_ses-NFB3_T1w.nii.gz            <- image
        sub-A00028185_ses-NFB3_T1w_brain.nii.gz      (ignored)
        sub-A00028185_ses-NFB3_T1w_brainmask.nii.gz  <- mask
      ...

``path`` is that folder (or a folder holding only it). Subject folders with neither file
are ignored; one with only one of the two, or with several candidates, is an error.
"""

from __future__ import annotations

import os
from pathlib import Path

from ._core import fail
from .nifti import check_dir


def _matches(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    return sorted(
        p for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.name.endswith(suffixes)
    )


_IMAGE = ("_T1w.nii.gz", "_T1w.nii")
_MASK = ("_brainmask.nii.gz", "_brainmask.nii")


def _subject_dirs(root: Path) -> list[Path]:
    return [d for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith(".")
            and (_matches(d, _IMAGE) or _matches(d, _MASK))]


def find_pairs(path: str | os.PathLike[str] | None) -> list[tuple[str, Path, Path]]:
    """(subject, T1w image, brain mask) for every subject folder, sorted by subject."""
    root = check_dir(path, "nfbs")
    subjects = _subject_dirs(root)
    if not subjects:
        inner = [d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")]
        if len(inner) == 1:
            root = inner[0]
            subjects = _subject_dirs(root)
    if not subjects:
        raise fail(root, "no NFBS subject folders found; expected a folder per subject holding "
                         "*_T1w.nii.gz and *_brainmask.nii.gz")
    pairs = []
    for folder in subjects:
        images, masks = _matches(folder, _IMAGE), _matches(folder, _MASK)
        if not images:
            raise fail(folder, f"no *_T1w.nii.gz image beside {masks[0].name}")
        if not masks:
            raise fail(folder, f"no *_brainmask.nii.gz mask beside {images[0].name}")
        for found, what in ((images, "*_T1w.nii.gz images"), (masks, "*_brainmask.nii.gz masks")):
            if len(found) > 1:
                names = ", ".join(p.name for p in found)
                raise fail(folder, f"{len(found)} {what} ({names}); expected one")
        pairs.append((folder.name, images[0], masks[0]))
    return pairs
