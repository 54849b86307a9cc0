"""Report aggregation, paired test, summary.csv and the report files, from a hand-made store."""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import wilcoxon

from seglosses.bench.presets import BenchConfig
from seglosses.bench.published import PUBLISHED
from seglosses.bench.report import SUMMARY_COLUMNS, aggregate, build_report, fmt, fmt_pm
from seglosses.bench.store import ResultStore

from .conftest import make_result

CFG = BenchConfig(losses=("bce", "dice", "tversky"), seeds=(0, 1), format="shapes", epochs=2)
DATA = {"description": "Toy data for the report test.", "format": "shapes", "volumetric": False,
        "spacing": [1.0, 1.0], "spacing_unit": "px",
        "splits": {"train": {"cases": 6, "slices": 6}, "val": {"cases": 2, "slices": 2},
                   "test": {"cases": 8, "slices": 8}}}

DICE = {  # per seed, per case
    ("dice", 0): [0.90, 0.80, 0.85, 0.95, 0.70, 0.88, 0.91, 0.86],
    ("dice", 1): [0.92, 0.82, 0.83, 0.93, 0.72, 0.90, 0.89, 0.84],
    ("bce", 0): [0.60, 0.65, 0.70, 0.72, 0.50, 0.66, 0.71, 0.69],
    ("bce", 1): [0.62, 0.61, 0.74, 0.70, 0.52, 0.64, 0.69, 0.71],
    ("tversky", 0): [0.90, 0.80, 0.85, 0.95, 0.70, 0.88, 0.91, 0.86],
}


@pytest.fixture()
def results(tmp_path: Path) -> Path:
    image = np.linspace(0, 1, 30, dtype=np.float32).reshape(6, 5)
    with ResultStore(tmp_path) as st:
        st.start_sweep(CFG, DATA, [(0, "case0", image, image > 0.4), (1, "case1", image, image > 0.6)])
        for (loss, seed), dice in DICE.items():
            hd = [1.0 + i for i in range(8)]
            if loss == "bce":
                hd[0] = math.inf
            st.write_run(make_result(loss, seed, dice, hd95=hd), CFG, example_indices=[0, 1])
        st.write_failure("tversky", 1, CFG, "RunFailed: the training loss became non-finite")
        st.add_session({"started_at": "2026-01-01T00:00:00+00:00", "device": "cpu, 2 threads",
                        "threads": 2, "data_seconds": 1.0, "seconds": 9.0, "runs_done": 5,
                        "finished_at": "2026-01-01T00:00:09+00:00"})
    return tmp_path


def test_aggregate_by_hand(results: Path) -> None:
    with ResultStore(results, create=False) as st:
        stats, failed = aggregate(st)
    assert [s.loss for s in stats] == ["dice", "tversky", "bce"]
    assert [s.rank for s in stats] == [1, 2, 3]
    dice = stats[0]
    per_case = (np.array(DICE[("dice", 0)]) + np.array(DICE[("dice", 1)])) / 2
    assert dice.values["dice_mean"] == pytest.approx(np.mean(per_case))
    assert dice.values["dice_sd"] == pytest.approx(np.std(per_case, ddof=1))
    seed_means = [np.mean(DICE[("dice", 0)]), np.mean(DICE[("dice", 1)])]
    assert dice.values["dice_seed_sd"] == pytest.approx(np.std(seed_means, ddof=1))
    assert dice.seeds == [0, 1] and dice.n_cases == 8
    bce = stats[2]
    finite = [1.0 + i for i in range(1, 8)] * 2
    assert bce.values["hd95_mean"] == pytest.approx(np.mean(finite))
    assert (bce.hd95_inf, bce.hd95_total) == (2, 16)
    # Paired Wilcoxon on the seed-averaged per-case Dice against the best loss.
    bce_cases = (np.array(DICE[("bce", 0)]) + np.array(DICE[("bce", 1)])) / 2
    expected = wilcoxon(bce_cases - per_case).pvalue
    assert bce.p_value == pytest.approx(expected)
    assert bce.n_pairs == 8 and bce.median_diff == pytest.approx(np.median(bce_cases - per_case))
    # tversky (one seed) equals dice's seed 0, not its seed average: a real test is run.
    assert stats[1].p_value is not None and 0 < stats[1].p_value <= 1
    assert [f["loss"] for f in failed] == ["tversky"]


def test_identical_and_too_few_cases(tmp_path: Path) -> None:
    cfg = BenchConfig(losses=("dice", "jaccard", "bce"), format="shapes")
    with ResultStore(tmp_path) as st:
        st.start_sweep(cfg, DATA, [])
        st.write_run(make_result("dice", 0, [0.9]), cfg)
        st.write_run(make_result("jaccard", 0, [0.9]), cfg)
        st.write_run(make_result("bce", 0, [0.5]), cfg)
        stats, _ = aggregate(st)
    assert [s.test_note for s in stats] == ["best", "too few cases", "too few cases"]
    assert all(s.p_value is None for s in stats)
    assert math.isnan(stats[0].values["dice_sd"])  # one case: no sd
    cfg2 = BenchConfig(losses=("dice", "jaccard"), format="shapes")
    with ResultStore(tmp_path / "b") as st:
        st.start_sweep(cfg2, DATA, [])
        st.write_run(make_result("dice", 0, [0.9, 0.8, 0.7]), cfg2)
        st.write_run(make_result("jaccard", 0, [0.9, 0.8, 0.7]), cfg2)
        stats, _ = aggregate(st)
    assert stats[1].p_value == 1.0 and stats[1].test_note == "identical"


def test_build_report_files(results: Path) -> None:
    report = build_report(results)
    assert report.best == "dice"
    with (results / "summary.csv").open() as fh:
        rows = list(csv.reader(fh))
    assert tuple(rows[0]) == SUMMARY_COLUMNS
    assert [(r[0], r[1]) for r in rows[1:]] == [("bce", "0"), ("bce", "1"), ("dice", "0"),
                                                ("dice", "1"), ("tversky", "0")]
    bce0 = rows[1]
    assert float(bce0[2]) == pytest.approx(np.mean(DICE[("bce", 0)]), abs=1e-5)
    assert float(bce0[5]) == pytest.approx(np.mean([1.0 + i for i in range(1, 8)]), abs=1e-5)
    assert bce0[6] == "2" and float(bce0[7]) == 1.5
    for name in ("metrics.png", "learning_curves.png", "overlays.png", "loss_profiles.png"):
        assert (results / "figures" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (results / "report.md").read_text()
    assert "Toy data for the report test." in md
    assert "| 1 | `dice` |" in md and "Ranking by mean Dice: 1. `dice`, 2. `tversky`, 3. `bce`." in md
    assert "Wilcoxon" in md and "Failed runs" in md and "non-finite" in md
    assert "inf 2/16" in md
    assert "0.977" in md and "n/a" in md and "arXiv:2006.14822" in md
    page = (results / "report.html").read_text()
    images = re.findall(r'<img [^>]*src="([^"]+)"', page)
    assert len(images) == 4 and all(src.startswith("data:image/png;base64,") for src in images)
    assert "figures/" not in page.split("<body>")[1].replace("figures/*", "")


def test_published_numbers_are_only_the_verified_ones() -> None:
    assert set(PUBLISHED) == set(BenchConfig().losses)
    assert PUBLISHED["focal_tversky"] == (0.977, 0.990, 0.997)
    assert PUBLISHED["bce"] == (None, None, None)


def test_formatting() -> None:
    assert fmt(None) == "n/a" and fmt(math.nan) == "n/a" and fmt(math.inf) == "inf"
    assert fmt_pm(0.91234, 0.0123) == "0.912 ± 0.012"
    assert fmt_pm(0.5, math.nan) == "0.500"
