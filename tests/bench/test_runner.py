"""Training runner: schedule, case grouping, per-case metrics, determinism, records."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from seglosses import metrics
from seglosses.bench.presets import BenchConfig
from seglosses.bench.runner import (
    EpochRecord,
    RunFailed,
    RunResult,
    StepRecord,
    case_groups,
    case_means,
    choose_examples,
    cosine_lr,
    count_steps,
    evaluate_cases,
    resolve_device,
    train_run,
)


def _split(n: int, size: int, seed: int, subjects: list[str]) -> SimpleNamespace:
    g = torch.Generator().manual_seed(seed)
    masks = torch.zeros(n, 1, size, size)
    for i in range(n):
        r0, c0 = torch.randint(1, size // 2, (2,), generator=g).tolist()
        masks[i, 0, r0:r0 + size // 3, c0:c0 + size // 3] = 1.0
    images = 0.6 * masks + 0.2 * torch.rand(n, 1, size, size, generator=g)
    return SimpleNamespace(images=images, masks=masks, subjects=subjects)


def _bundle(volumetric: bool = False) -> SimpleNamespace:
    if volumetric:
        subj = lambda k, n: [f"s{k}{j // 3}" for j in range(n)]  # noqa: E731
    else:
        subj = lambda k, n: [f"i{k}{j}" for j in range(n)]  # noqa: E731
    return SimpleNamespace(train=_split(12, 16, 0, subj("a", 12)), val=_split(6, 16, 1, subj("b", 6)),
                           test=_split(6, 16, 2, subj("c", 6)), format="toy", description="toy",
                           volumetric=volumetric, spacing=(1.0, 1.0))


CFG = BenchConfig(losses=("bce",), format="shapes", epochs=2, batch_size=5, width=2, depth=2,
                  device="cpu")


def test_cosine_schedule() -> None:
    assert cosine_lr(0, 10, 1e-3, 1e-5) == pytest.approx(1e-3)
    assert cosine_lr(9, 10, 1e-3, 1e-5) == pytest.approx(1e-5)
    assert cosine_lr(0, 1, 1e-3, 1e-5) == 1e-3
    values = [cosine_lr(s, 50, 1e-3, 1e-5) for s in range(50)]
    assert all(a > b for a, b in zip(values, values[1:]))
    assert count_steps(12, 5) == 3 and count_steps(3, 16) == 1 and count_steps(0, 4) == 0


def test_case_groups() -> None:
    assert case_groups(["a", "a", "b", "a"], True) == [("a", [0, 1, 3]), ("b", [2])]
    assert case_groups(["x", "y"], False) == [("x", [0]), ("y", [1])]
    assert case_groups(["x", "x"], False) == [("x:0", [0]), ("x:1", [1])]


def test_evaluate_cases_volume_aggregation() -> None:
    target = torch.zeros(4, 1, 12, 12, dtype=torch.bool)
    pred = torch.zeros_like(target)
    target[0, 0, 2:8, 2:8] = True       # slice 0: both masks, prediction shifted
    pred[0, 0, 3:9, 2:8] = True
    target[1, 0, 4:6, 4:6] = True       # slice 1: prediction empty -> HD95 infinite
    # slice 2: both empty -> no structure, left out
    target[3, 0, 1:5, 1:9] = True       # slice 3: both masks, prediction shrunk
    pred[3, 0, 2:5, 1:7] = True
    (case,) = evaluate_cases(pred, target.float(), [("s", [0, 1, 2, 3])], volumetric=True,
                             spacing=(0.5, 2.0))
    per_slice = metrics.hd95(pred, target, spacing=(0.5, 2.0)).reshape(-1)
    assert math.isinf(per_slice[1]) and per_slice[2] == 0
    assert case.hd95 == pytest.approx(float((per_slice[0] + per_slice[3]) / 2))
    assert case.hd95_excluded == 1 and case.n_slices == 4
    tp = (pred & target).sum().item()
    fp = (pred & ~target).sum().item()
    fn = (~pred & target).sum().item()
    tn = (~pred & ~target).sum().item()
    assert case.dice == pytest.approx(2 * tp / (2 * tp + fp + fn))  # counts pooled over slices
    assert case.sensitivity == pytest.approx(tp / (tp + fn))
    assert case.specificity == pytest.approx(tn / (tn + fp))
    (only_missing,) = evaluate_cases(pred[1:3], target[1:3].float(), [("t", [0, 1])],
                                     volumetric=True)
    assert math.isinf(only_missing.hd95) and only_missing.hd95_excluded == 1
    (nothing,) = evaluate_cases(pred[2:3], target[2:3].float(), [("u", [0])], volumetric=True)
    assert nothing.hd95 == 0.0 and nothing.hd95_excluded == 0
    images = evaluate_cases(pred, target.float(), case_groups(["a", "b", "c", "d"], False),
                            volumetric=False)
    assert [c.hd95_excluded for c in images] == [0, 1, 0, 0]
    means = case_means(images)
    assert means["hd95_inf"] == 1
    assert means["hd95"] == pytest.approx(np.mean([images[0].hd95, images[2].hd95, images[3].hd95]))


def test_choose_examples() -> None:
    masks = torch.zeros(6, 1, 4, 4)
    masks[1, 0, :2] = 1
    masks[2, 0, :3] = 1
    masks[4, 0, :1] = 1
    subjects = ["a", "a", "a", "b", "b", "c"]
    assert choose_examples(masks, subjects, 2) == [2, 5]   # largest slice of a, then c
    assert choose_examples(masks, subjects, 3) == [2, 4, 5]
    assert choose_examples(masks, subjects, 5) == [0, 1, 2, 3, 4]
    assert choose_examples(masks, subjects, 0) == []


def test_train_run_records_and_determinism() -> None:
    bundle = _bundle()

    def run() -> list:
        return list(train_run(bundle, "bce", 3, CFG, example_indices=[0, 2]))

    records = run()
    steps = [r for r in records if isinstance(r, StepRecord)]
    epochs = [r for r in records if isinstance(r, EpochRecord)]
    result = records[-1]
    assert isinstance(result, RunResult)
    assert len(steps) == 2 * 3 and steps[0] == StepRecord(1, 1, 3)
    assert [e.epoch for e in epochs] == [1, 2]
    assert epochs[0].lr == pytest.approx(1e-3)
    assert epochs[1].lr == pytest.approx(cosine_lr(3, 6, 1e-3, 1e-5))
    assert result.curves == epochs and 1 <= result.best_epoch <= 2
    assert len(result.cases) == 6 and result.examples.shape == (2, 16, 16)
    again = run()[-1]
    assert [e.train_loss for e in again.curves] == [e.train_loss for e in epochs]
    assert [c.dice for c in again.cases] == [c.dice for c in result.cases]
    other = list(train_run(bundle, "bce", 4, CFG))[-1]
    assert [e.train_loss for e in other.curves] != [e.train_loss for e in epochs]


def test_train_run_volumes_and_failures() -> None:
    result = list(train_run(_bundle(volumetric=True), "dice", 0, CFG))[-1]
    assert [c.case_id for c in result.cases] == ["sc0", "sc1"]
    assert all(c.n_slices == 3 for c in result.cases)
    with pytest.raises(RunFailed, match="cannot build loss"):
        list(train_run(_bundle(), "dice(", 0, CFG))
    nan_bundle = _bundle()
    nan_bundle.train.images[0, 0, 0, 0] = float("nan")
    with pytest.raises(RunFailed, match="non-finite in epoch 1"):
        list(train_run(nan_bundle, "bce", 0, CFG))


def test_resolve_device() -> None:
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device is available"):
            resolve_device("cuda")
    with pytest.raises(ValueError,
                       match=r"`device` must be one of \['auto', 'cpu', 'cuda'\]; got 'gpu'"):
        resolve_device("gpu")
