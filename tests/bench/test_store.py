"""The results store: round trips, one transaction per run, failures, resume keys."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from seglosses.bench import store as store_module
from seglosses.bench.presets import BenchConfig
from seglosses.bench.store import ResultStore, pack_image, pack_mask, unpack_image, unpack_mask

from .conftest import make_result

CFG = BenchConfig(losses=("dice", "bce"), seeds=(0, 1), format="shapes", epochs=2)


def _example_inputs() -> list[tuple[int, str, np.ndarray, np.ndarray]]:
    image = np.linspace(0, 1, 30, dtype=np.float32).reshape(6, 5)
    return [(3, "case0", image, image > 0.5), (7, "case1", 1 - image, image < 0.2)]


def test_round_trip(tmp_path: Path) -> None:
    with ResultStore(tmp_path) as st:
        assert st.is_empty()
        st.start_sweep(CFG, {"description": "toy"}, _example_inputs())
        result = make_result("dice", 0, [0.5, 0.75], hd95=[2.0, math.inf])
        run_id = st.write_run(result, CFG, device="cpu", example_indices=[3, 7])
        assert st.finished(CFG.fingerprint()) == {("dice", 0)}
        (run,) = st.runs()
        assert run["id"] == run_id and run["status"] == "finished" and run["device"] == "cpu"
        assert run["dice"] == pytest.approx(0.625)
        assert run["hd95"] == 2.0 and run["hd95_inf"] == 1  # finite cases only, inf counted
        assert run["config"]["epochs"] == 2
        cases = st.cases(run_id)
        assert [c.case_id for c in cases] == ["case0", "case1"]
        assert math.isinf(cases[1].hd95) and cases[1].hd95_excluded == 1
        assert [c.epoch for c in st.curves(run_id)] == [1, 2]
        examples = st.examples(run_id)
        assert [i for i, _ in examples] == [3, 7]
        assert np.array_equal(examples[0][1], result.examples[0])
        inputs = st.example_inputs()
        assert [x["case_id"] for x in inputs] == ["case0", "case1"]
        np.testing.assert_allclose(inputs[0]["image"], _example_inputs()[0][2], atol=1e-3)
        assert st.meta()["data"] == {"description": "toy"}
        assert st.meta()["fingerprint"] == CFG.fingerprint()


def test_packing_round_trip() -> None:
    rng = np.random.default_rng(0)
    mask = rng.random((7, 13)) > 0.5
    assert np.array_equal(unpack_mask(pack_mask(mask), 7, 13), mask)
    image = rng.random((7, 13)).astype(np.float32)
    np.testing.assert_allclose(unpack_image(pack_image(image), 7, 13), image, atol=5e-4)


def test_a_run_is_all_or_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with ResultStore(tmp_path) as st:
        st.start_sweep(CFG, {}, [])
        st.write_run(make_result("dice", 0, [0.5, 0.6]), CFG)

        def broken(mask: np.ndarray) -> bytes:
            raise RuntimeError("disk full")

        # The example masks are written last: failing there must roll back the whole run.
        monkeypatch.setattr(store_module, "pack_mask", broken)
        with pytest.raises(RuntimeError, match="disk full"):
            st.write_run(make_result("bce", 0, [0.1, 0.2]), CFG)
        assert [r["loss"] for r in st.runs()] == ["dice"]
        assert len(st.table_rows("cases")) == 2 and len(st.table_rows("curves")) == 2
    # A second connection sees the same committed state.
    other = sqlite3.connect(str(tmp_path / "results.sqlite"))
    assert other.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1
    other.close()


def test_failures_are_replaced_by_a_finished_run(tmp_path: Path) -> None:
    with ResultStore(tmp_path) as st:
        st.start_sweep(CFG, {}, [])
        st.write_failure("bce", 1, CFG, "RunFailed: non-finite loss")
        st.write_failure("bce", 1, CFG, "RunFailed: again")
        failed = st.runs("failed")
        assert len(failed) == 1 and failed[0]["error"] == "RunFailed: again"
        assert st.finished(CFG.fingerprint()) == set()
        st.write_run(make_result("bce", 1, [0.4, 0.4]), CFG)
        assert st.runs("failed") == []
        assert st.finished(CFG.fingerprint()) == {("bce", 1)}
        with pytest.raises(sqlite3.IntegrityError):  # one finished run per (loss, seed, config)
            st.write_run(make_result("bce", 1, [0.4, 0.4]), CFG)
        other = BenchConfig(losses=("bce",), epochs=3)
        assert st.finished(other.fingerprint()) == set()


def test_sessions_and_missing_store(tmp_path: Path) -> None:
    with ResultStore(tmp_path) as st:
        st.start_sweep(CFG, {}, [])
        st.add_session({"started_at": "a", "runs_done": 0})
        st.add_session({"started_at": "a", "runs_done": 2, "finished_at": "b"})
        st.add_session({"started_at": "c"})
        assert st.meta()["sessions"] == [{"started_at": "a", "runs_done": 2, "finished_at": "b"},
                                         {"started_at": "c"}]
    with pytest.raises(FileNotFoundError, match="no results store"):
        ResultStore(tmp_path / "nothing", create=False)
    (tmp_path / "foreign.sqlite").write_bytes(b"")
    with pytest.raises(ValueError, match="not a seglosses results store"):
        ResultStore(tmp_path / "foreign.sqlite", create=False)
