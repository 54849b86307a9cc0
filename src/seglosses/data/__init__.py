"""Datasets for ``seglosses bench``: 2D slices with binary masks, split 60/20/20 by subject.

Formats (see ``docs/data.md``):

- ``shapes``: procedural 2D shapes (NumPy/PyTorch only), one case per image;
- ``mni-skullstrip`` (the embedded default) and ``mni-gm``: pseudo-subjects built from the
  real MNI152 2009a template anatomy shipped in the nilearn wheel, with synthetic skull and
  scalp; targets brain mask and grey matter (extra ``mri``);
- ``nfbs``: the NFBS skull-stripping repository as downloaded;
- ``nifti``: ``IMG_<id>.nii[.gz]`` + ``MASK_<id>.nii[.gz]`` or ``images/`` + ``masks/``;
- ``images``: ``images/<id>.{png,jpg,jpeg,tif,tiff}`` + ``masks/<id>.png``.

Example:
    >>> import tempfile
    >>> from seglosses.data import load_data
    >>> data = load_data("shapes", image_size=32, subjects=5, cache_dir=tempfile.mkdtemp())
    >>> data.train
    SliceSet(3 slices of 32x32 from 3 subjects, foreground 0.125)
"""

from __future__ import annotations

from ._core import DataBundle, DataError, SliceSet
from ._load import FORMATS, load_data, validate_data
from .mni import mri_available
from .shapes import SHAPE_TYPES, ShapesOptions, make_shapes
from .splits import split_subjects

DataBundle.__module__ = SliceSet.__module__ = __name__

__all__ = [
    "FORMATS", "SHAPE_TYPES", "DataBundle", "DataError", "ShapesOptions", "SliceSet", "load_data",
    "make_shapes", "mri_available", "split_subjects", "validate_data",
]
