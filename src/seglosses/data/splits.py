"""Subject-level 60/20/20 split, seeded: no subject has slices in two splits."""

from __future__ import annotations

import numpy as np
import torch

from ._core import Case, DataBundle, DataError, SliceSet

#: Fractions of subjects in the train, validation and test splits.
SPLIT_FRACTIONS = (0.6, 0.2, 0.2)


def split_subjects(names: list[str], seed: int) -> tuple[list[str], list[str], list[str]]:
    """Split subject names 60/20/20 at random (seeded); each split gets at least one.

    The validation and test splits each receive ``round(0.2 * n)`` subjects (at least one)
    and the training split the rest. The order inside each split follows ``names``.

    Example:
        >>> train, val, test = split_subjects([f"s{i}" for i in range(10)], seed=0)
        >>> len(train), len(val), len(test)
        (6, 2, 2)
    """
    n = len(names)
    if len(set(names)) != n:
        raise DataError("subjects: duplicate subject names " + ", ".join(
            sorted({x for x in names if names.count(x) > 1})[:5]))
    if n < 3:
        raise DataError(
            f"subjects: a train/validation/test split needs at least 3 subjects or images; got {n}"
        )
    n_val = max(1, int(round(SPLIT_FRACTIONS[1] * n)))
    n_test = max(1, int(round(SPLIT_FRACTIONS[2] * n)))
    order = np.random.default_rng([int(seed), 0x5EED]).permutation(n)
    val_idx = set(order[:n_val].tolist())
    test_idx = set(order[n_val:n_val + n_test].tolist())
    train = [x for i, x in enumerate(names) if i not in val_idx and i not in test_idx]
    val = [x for i, x in enumerate(names) if i in val_idx]
    test = [x for i, x in enumerate(names) if i in test_idx]
    return train, val, test


def slice_set(cases: list[Case]) -> SliceSet:
    """Concatenate cases into a :class:`SliceSet` (images float32, masks float32 in {0, 1})."""
    if not cases:
        return SliceSet(torch.zeros(0, 1, 1, 1), torch.zeros(0, 1, 1, 1), [])
    images = torch.cat([c.images for c in cases]).unsqueeze(1).float().contiguous()
    masks = torch.cat([c.masks for c in cases]).unsqueeze(1).float().contiguous()
    subjects = [c.name for c in cases for _ in range(c.images.shape[0])]
    return SliceSet(images, masks, subjects)


def bundle(cases: list[Case], *, seed: int, format: str, description: str, volumetric: bool,
           spacing: tuple[float, float]) -> DataBundle:
    """Split cases by subject and assemble the :class:`DataBundle`."""
    by_name = {c.name: c for c in cases}
    train, val, test = split_subjects([c.name for c in cases], seed)
    return DataBundle(
        train=slice_set([by_name[x] for x in train]),
        val=slice_set([by_name[x] for x in val]),
        test=slice_set([by_name[x] for x in test]),
        format=format,
        description=description,
        volumetric=volumetric,
        spacing=spacing,
    )
