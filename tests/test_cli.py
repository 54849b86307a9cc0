"""The command line: bench end to end, report, plot-loss, exit statuses, kill -9 and resume."""

from __future__ import annotations

import csv
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from seglosses.cli import app, main

runner = CliRunner()


@pytest.fixture(autouse=True)
def _data_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the data cache out of the home folder."""
    monkeypatch.setenv("SEGLOSSES_CACHE", str(tmp_path_factory.getbasetemp() / "data-cache"))

# A tiny sweep: procedural shapes, 2 losses, 1 epoch, a 2-level U-Net of width 4.
TINY = ["--format", "shapes", "--epochs", "1", "--image-size", "24", "--batch-size", "8",
        "--device", "cpu", "--set", "subjects=20", "--set", "width=4", "--set", "depth=2",
        "--set", "examples=2", "--quiet"]


def _bench(out: Path, *extra: str, losses: str = "bce,dice"):
    return runner.invoke(app, ["bench", "--losses", losses, "--out", str(out), *TINY, *extra])


def _one_line_error(result) -> str:  # noqa: ANN001
    err = result.stderr
    assert err.startswith("seglosses: error: "), err
    assert err.rstrip("\n").count("\n") == 0, err
    return err


def test_bench_end_to_end_and_report_rebuild(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = _bench(out)
    assert result.exit_code == 0, result.output + result.stderr
    assert "runs: 2 finished, 0 already done, 0 failed" in result.stdout
    assert re.search(r"\[1/2\] bce seed 0: Dice \d\.\d{3}", result.stdout)
    for name in ("results.sqlite", "summary.csv", "report.md", "report.html"):
        assert (out / name).is_file(), name
    figures = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert figures == ["learning_curves.png", "loss_profiles.png", "metrics.png", "overlays.png"]
    with (out / "summary.csv").open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["loss", "seed", "dice", "sensitivity", "specificity", "hd95", "epochs",
                       "train_seconds"]
    assert [r[:2] for r in rows[1:]] == [["bce", "0"], ["dice", "0"]]
    assert all(0.0 <= float(r[2]) <= 1.0 and r[6] == "1" for r in rows[1:])
    page = (out / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == 4
    assert "Procedural 2D shapes" in (out / "report.md").read_text()

    summary = (out / "summary.csv").read_text()
    for name in ("summary.csv", "report.md", "report.html"):
        (out / name).unlink()
    for fig in (out / "figures").glob("*.png"):
        fig.unlink()
    rebuilt = runner.invoke(app, ["report", str(out)])
    assert rebuilt.exit_code == 0, rebuilt.output + rebuilt.stderr
    assert (out / "summary.csv").read_text() == summary
    assert (out / "report.html").read_text().count("data:image/png;base64,") == 4
    assert len(list((out / "figures").glob("*.png"))) == 4

    # Without --resume an existing results folder is refused; --resume needs the same settings.
    again = _bench(out)
    assert again.exit_code == 2
    assert "already exists and is not empty; pass --resume" in _one_line_error(again)
    # --resume keeps the finished runs and adds new losses.
    grown = _bench(out, "--resume", losses="bce,dice,jaccard")
    assert grown.exit_code == 0, grown.output + grown.stderr
    assert "runs: 1 finished, 2 already done, 0 failed" in grown.stdout
    with (out / "summary.csv").open() as fh:
        assert [r[0] for r in list(csv.reader(fh))[1:]] == ["bce", "dice", "jaccard"]
    other = _bench(out, "--resume", "--epochs", "2")
    assert other.exit_code == 2
    assert "other settings (epochs 1 -> 2)" in _one_line_error(other)


@pytest.mark.parametrize(("args", "message"), [
    (["--losses", "dcie"], r"--losses: .*'dcie'.*closest: dice"),
    (["--format", "png"], r"--format must be one of"),
    (["--data", "/no/such/folder"], r"--data: /no/such/folder does not exist"),
    (["--preset", "fast"], r"--preset must be one of quick, paper, full"),
    (["--seeds", "0"], r"--seeds must be a positive integer"),
    (["--set", "colour=red"], r"unknown key 'colour'"),
    (["--format", "nfbs"], r"--format nfbs needs --data PATH"),
])
def test_bad_arguments_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["bench", "--out", str(tmp_path / "x"), *args])
    assert result.exit_code == 2, result.output + result.stderr
    assert re.search(message, _one_line_error(result))
    assert not (tmp_path / "x").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_cuda_requested_but_absent(tmp_path: Path) -> None:
    result = runner.invoke(app, ["bench", "--device", "cuda", "--format", "shapes",
                                 "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "no CUDA device is available" in _one_line_error(result)


def test_bad_data_exit_2(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    (data / "masks").mkdir()
    pixels = (np.arange(24 * 24).reshape(24, 24) % 255).astype(np.uint8)
    for name in ("a", "b", "c"):
        Image.fromarray(pixels).save(data / "images" / f"{name}.png")
    for name in ("a", "c"):
        Image.fromarray((pixels > 100).astype(np.uint8) * 255).save(data / "masks" / f"{name}.png")
    result = runner.invoke(app, ["bench", "--data", str(data), "--losses", "dice", "--out",
                                 str(tmp_path / "x"), "--device", "cpu"])
    assert result.exit_code == 2, result.output + result.stderr
    assert "b.png" in _one_line_error(result)  # the image without a mask is named
    assert not (tmp_path / "x").exists()


def test_parser_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--seeds", "abc"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("seglosses: error: Invalid value for '--seeds'") and err.count("\n") == 1
    assert main(["bench", "--colour"]) == 2
    assert "No such option: --colour" in capsys.readouterr().err
    assert main(["frobnicate"]) == 2
    assert "No such command 'frobnicate'" in capsys.readouterr().err
    assert main(["report"]) == 2


def test_report_errors(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["report", str(tmp_path / "none")])
    assert missing.exit_code == 2 and "is not a folder" in _one_line_error(missing)
    empty = runner.invoke(app, ["report", str(tmp_path)])
    assert empty.exit_code == 2 and "no results store" in _one_line_error(empty)


def test_plot_loss(tmp_path: Path) -> None:
    out = tmp_path / "profiles.png"
    result = runner.invoke(app, ["plot-loss", "bce", "dice", "--out", str(out)])
    assert result.exit_code == 0, result.output + result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = runner.invoke(app, ["plot-loss", "dcie", "--out", str(out)])
    assert bad.exit_code == 2 and "'dcie'" in _one_line_error(bad)
    bad = runner.invoke(app, ["plot-loss", "dice", "--foreground", "1.5"])
    assert bad.exit_code == 2 and "--foreground must lie in (0, 1)" in _one_line_error(bad)


def test_help_and_losses() -> None:
    top = runner.invoke(app, ["--help"])
    assert top.exit_code == 0 and "bench" in top.stdout and "plot-loss" in top.stdout
    bench = runner.invoke(app, ["bench", "--help"])
    assert bench.exit_code == 0 and "--resume" in bench.stdout and "--preset" in bench.stdout
    listing = runner.invoke(app, ["losses"])
    assert listing.exit_code == 0 and "dice" in listing.stdout


def _finished(db: Path) -> list[tuple]:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1.0)
        try:
            return con.execute(
                "SELECT * FROM runs WHERE status = 'finished' ORDER BY id").fetchall()
        finally:
            con.close()
    except sqlite3.Error:
        return []


def _rows(db: Path, run_ids: list[int]) -> dict[str, list[tuple]]:
    con = sqlite3.connect(str(db))
    marks = ",".join("?" * len(run_ids))
    out = {table: con.execute(f"SELECT * FROM {table} WHERE {key} IN ({marks}) ORDER BY rowid",
                              run_ids).fetchall()
           for table, key in (("runs", "id"), ("curves", "run_id"), ("cases", "run_id"),
                              ("examples", "run_id"))}
    con.close()
    return out


def test_kill_9_then_resume(tmp_path: Path) -> None:
    out = tmp_path / "run"
    db = out / "results.sqlite"
    losses = "bce,dice,tversky"
    args = ["bench", "--losses", losses, "--out", str(out), *TINY]
    args[args.index("--epochs") + 1] = "2"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "seglosses.cli", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if len(_finished(db)) >= 1:
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        stderr = proc.stderr.read().decode() if proc.stderr else ""
    assert proc.returncode == -signal.SIGKILL, stderr
    before = _finished(db)
    assert 1 <= len(before) < 3
    ids = [r[0] for r in before]
    rows_before = _rows(db, ids)
    # No half-written run: every finished run has all its curves and cases.
    for run in before:
        counts = _rows(db, [run[0]])
        assert len(counts["curves"]) == 2 and len(counts["cases"]) > 0

    result = runner.invoke(app, [*args, "--resume"])
    assert result.exit_code == 0, result.output + result.stderr
    assert f"runs: {3 - len(before)} finished, {len(before)} already done" in result.stdout
    after = _finished(db)
    assert sorted(r[1] for r in after) == sorted(losses.split(","))
    assert _rows(db, ids) == rows_before
    with (out / "summary.csv").open() as fh:
        assert len(list(csv.reader(fh))) == 4
