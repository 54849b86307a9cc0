"""``MetricAccumulator``: per-case rows, slice volumes, summaries, distributed merge."""

from __future__ import annotations

import math
import os
import socket
import statistics

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from seglosses.metrics import MetricAccumulator
from tests.reference import np_metrics as ref


def cases(n, seed, shape=(1, 10, 9)):
    g = torch.Generator().manual_seed(seed)
    pred = torch.rand(n, *shape, generator=g) < 0.5
    target = torch.rand(n, *shape, generator=g) < 0.5
    return pred, target


def test_reference_values():
    pred, target = cases(3, seed=0, shape=(2, 8, 7))
    acc = MetricAccumulator(["dice", "specificity", "hd95", "assd", "surface_dice"],
                            tolerance=1.0, spacing=(1.0, 0.5), channel_names=["bg", "fg"])
    acc.add_batch(pred, target, ["x", "y", "z"])
    rows = acc.rows
    assert [(r["case"], r["channel"]) for r in rows] == [
        ("x", "bg"), ("x", "fg"), ("y", "bg"), ("y", "fg"), ("z", "bg"), ("z", "fg")]
    for r, (b, c) in zip(rows, [(b, c) for b in range(3) for c in range(2)]):
        p, t = pred[b, c].numpy(), target[b, c].numpy()
        assert r["dice"] == pytest.approx(ref.dice(p, t), rel=1e-6)
        assert r["specificity"] == pytest.approx(ref.specificity(p, t), rel=1e-6)
        assert r["hd95"] == pytest.approx(ref.hausdorff(p, t, 95, (1.0, 0.5)), rel=1e-5)
        assert r["assd"] == pytest.approx(ref.assd(p, t, (1.0, 0.5)), rel=1e-5)
        assert r["surface_dice"] == pytest.approx(ref.surface_dice(p, t, 1.0, (1.0, 0.5)), rel=1e-5)
    assert len(acc) == 6


def test_add_and_slices():
    pred, target = cases(5, seed=1)
    # slices of two subjects, interleaved: "a" gets items 0, 2, 4 and "b" items 1, 3
    acc = MetricAccumulator(["dice", "hd95"])
    acc.add_slices(pred[:3], target[:3], ["a", "b", "a"])
    acc.add_slices(pred[3:], target[3:], ["b", "a"])
    rows = {r["case"]: r for r in acc.rows}
    vol_a = (pred[[0, 2, 4], 0].numpy(), target[[0, 2, 4], 0].numpy())
    vol_b = (pred[[1, 3], 0].numpy(), target[[1, 3], 0].numpy())
    assert rows["a"]["dice"] == pytest.approx(ref.dice(*vol_a), rel=1e-6)
    assert rows["a"]["hd95"] == pytest.approx(ref.hausdorff(*vol_a, 95), rel=1e-5)
    assert rows["b"]["hd95"] == pytest.approx(ref.hausdorff(*vol_b, 95), rel=1e-5)
    # a whole case at once gives the same row as its slices
    single = MetricAccumulator(["dice", "hd95"])
    single.add(pred[[0, 2, 4]].transpose(0, 1), target[[0, 2, 4]].transpose(0, 1), "a")
    assert single.rows[0] == rows["a"]
    acc.reset()
    assert acc.rows == []


def test_summary():
    acc = MetricAccumulator(["dice", "hd95"])
    target = torch.zeros(3, 1, 6, 6, dtype=torch.bool)
    target[:, :, 1:4, 1:4] = True
    pred = target.clone()
    pred[1, :, 1:4, 4] = True
    pred[2] = False                                  # empty prediction: HD95 = inf
    acc.add_batch(pred, target, [0, 1, 2])
    s = acc.summary()
    dices = [r["dice"] for r in acc.rows]
    assert s["dice"]["mean"] == pytest.approx(statistics.fmean(dices))
    assert s["dice"]["std"] == pytest.approx(statistics.stdev(dices))
    assert s["dice"]["count"] == 3 and s["dice"]["nonfinite"] == 0
    assert s["hd95"]["nonfinite"] == 1 and s["hd95"]["mean"] == pytest.approx(0.5)
    assert math.isinf(acc.rows[2]["hd95"])


def test_errors():
    with pytest.raises(ValueError, match=r"`metrics` must be one of .*got 'dise' \(did you mean 'dice'\?\)"):
        MetricAccumulator(["dise"])
    with pytest.raises(ValueError, match="`tolerance` must be given"):
        MetricAccumulator(["surface_dice"])
    with pytest.raises(ValueError, match="at least one metric"):
        MetricAccumulator([])
    acc = MetricAccumulator(["dice"], channel_names=["a", "b"])
    pred, target = cases(2, seed=2)
    with pytest.raises(ValueError, match=r"`case_ids` must hold one id per item of `pred` \(2\); got 1"):
        acc.add_batch(pred, target, ["x"])
    with pytest.raises(ValueError, match="`channel_names` holds 2 names; the data has 1 channels"):
        acc.add_batch(pred, target, ["x", "y"])
    with pytest.raises(ValueError, match=r"slices of shape \(B, C, H, W\)"):
        acc.add_slices(pred[:, :, :, :, None], target[:, :, :, :, None], ["x", "y"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        pred, target = cases(7, seed=5)
        acc = MetricAccumulator(["dice", "hd95"])
        # uneven shards: rank 0 scores cases 0-4 in two batches, rank 1 cases 5-6 in one
        shards = {0: [range(0, 3), range(3, 5)], 1: [range(5, 7)]}[rank]
        for idx in shards:
            idx = list(idx)
            acc.add_batch(pred[idx], target[idx], idx)
        acc.all_gather()
        torch.save(acc.rows, os.path.join(out_dir, f"rows{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_all_gather_two_processes(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    pred, target = cases(7, seed=5)
    single = MetricAccumulator(["dice", "hd95"])
    single.add_batch(pred, target, list(range(7)))
    for rank in range(2):
        rows = torch.load(tmp_path / f"rows{rank}.pt")
        assert sorted(rows, key=lambda r: r["case"]) == single.rows
    assert np.isclose(MetricAccumulator(["dice"]).all_gather().summary()["dice"]["count"], 0)
