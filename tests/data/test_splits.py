"""Subject-level 60/20/20 splits and the containers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seglosses.data import DataError, SliceSet, load_data, split_subjects
from seglosses.data._core import Case, choose_slices
from seglosses.data.splits import bundle


@pytest.mark.parametrize("n, sizes", [(3, (1, 1, 1)), (5, (3, 1, 1)), (10, (6, 2, 2)),
                                      (12, (8, 2, 2)), (30, (18, 6, 6)), (125, (75, 25, 25))])
def test_split_sizes(n: int, sizes: tuple[int, int, int]) -> None:
    names = [f"s{i}" for i in range(n)]
    train, val, test = split_subjects(names, seed=0)
    assert (len(train), len(val), len(test)) == sizes
    assert sorted(train + val + test) == sorted(names)
    assert not (set(train) & set(val) or set(train) & set(test) or set(val) & set(test))


def test_split_seeded() -> None:
    names = [f"s{i}" for i in range(20)]
    assert split_subjects(names, 4) == split_subjects(names, 4)
    assert split_subjects(names, 4) != split_subjects(names, 5)


def test_split_errors() -> None:
    with pytest.raises(DataError, match="at least 3 subjects"):
        split_subjects(["a", "b"], 0)
    with pytest.raises(DataError, match="duplicate subject names a"):
        split_subjects(["a", "a", "b"], 0)


def test_bundle_is_subject_disjoint() -> None:
    cases = [Case(f"c{i}", torch.full((i + 1, 4, 4), float(i)),
                  torch.ones(i + 1, 4, 4, dtype=torch.uint8)) for i in range(10)]
    data = bundle(cases, seed=3, format="nifti", description="d", volumetric=True,
                  spacing=(1.0, 1.0))
    parts = (data.train, data.val, data.test)
    names = [set(p.subjects) for p in parts]
    assert not (names[0] & names[1] or names[0] & names[2] or names[1] & names[2])
    assert [len(n) for n in names] == [6, 2, 2]
    assert sum(len(p) for p in parts) == sum(range(1, 11))
    for part in parts:  # every slice keeps its subject
        for image, name in zip(part.images, part.subjects):
            assert float(image[0, 0, 0]) == float(name[1:])


def test_shapes_bundle_is_60_20_20() -> None:
    data = load_data("shapes", image_size=16, subjects=50, seed=7)
    assert (len(data.train), len(data.val), len(data.test)) == (30, 10, 10)
    sets = [set(p.subjects) for p in (data.train, data.val, data.test)]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])


def test_slice_set() -> None:
    s = SliceSet(torch.rand(4, 1, 8, 6), torch.zeros(4, 1, 8, 6), ["a", "a", "b", "c"])
    image, mask = s[1]
    assert image.shape == mask.shape == (1, 8, 6)
    assert len(s) == 4 and s.num_subjects == 3
    assert s.subject_indices() == {"a": [0, 1], "b": [2], "c": [3]}
    assert "4 slices of 8x6 from 3 subjects" in repr(s)
    loader = torch.utils.data.DataLoader(s, batch_size=2)
    assert next(iter(loader))[0].shape == (2, 1, 8, 6)
    with pytest.raises(ValueError, match="images"):
        SliceSet(torch.rand(4, 8, 6), torch.zeros(4, 8, 6), ["a"] * 4)
    with pytest.raises(ValueError, match="masks"):
        SliceSet(torch.rand(4, 1, 8, 6), torch.zeros(4, 1, 8, 5), ["a"] * 4)
    with pytest.raises(ValueError, match="subjects"):
        SliceSet(torch.rand(4, 1, 8, 6), torch.zeros(4, 1, 8, 6), ["a"] * 3)


def test_choose_slices() -> None:
    has_fg = np.zeros(100, dtype=bool)
    has_fg[30:70] = True
    keep = choose_slices(has_fg, None)
    assert set(range(30, 70)) <= set(keep.tolist())
    assert len(keep) == 44  # 40 with foreground + 10 % as many without
    limited = choose_slices(has_fg, 11)
    assert len(limited) == 11 and int(has_fg[limited].sum()) == 10
    assert limited[has_fg[limited]][0] == 30 and limited[has_fg[limited]][-1] == 69  # spread evenly
    assert choose_slices(np.ones(5, dtype=bool), None).tolist() == [0, 1, 2, 3, 4]
