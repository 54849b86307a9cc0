"""Progress display: log lines in quiet mode, progress bars on a terminal, the results table."""

from __future__ import annotations

import io

from rich.console import Console

from seglosses.bench.progress import Reporter, RichReporter, make_reporter
from seglosses.bench.runner import EpochRecord

from .conftest import make_result


def _drive(reporter: Reporter) -> None:
    with reporter:
        reporter.sweep_start(3, 1)
        reporter.run_start("dice", 0, 4)
        for _ in range(4):
            reporter.step()
        reporter.epoch("dice", 0, EpochRecord(1, 0.5, 0.75, 1e-3, 0.1), 2)
        reporter.run_end("dice", 0, make_result("dice", 0, [0.5, 0.7]))
        reporter.run_start("bce", 0, 4)
        reporter.run_end("bce", 0, None, "RunFailed: the training loss became non-finite")
        reporter.sweep_end()


def test_quiet_reporter_prints_log_lines() -> None:
    buf = io.StringIO()
    reporter = make_reporter(True, Console(file=buf, width=200))
    assert type(reporter) is Reporter
    _drive(reporter)
    lines = buf.getvalue().splitlines()
    assert lines[0] == "resuming: 1 of 3 runs already finished, 2 to go"
    assert lines[1].startswith("[2/3] dice seed 0: Dice 0.600, sensitivity 0.610")
    assert "HD95 1.50 (best epoch 2/2, 1.5 s)" in lines[1]
    assert lines[2] == "[3/3] bce seed 0: FAILED: RunFailed: the training loss became non-finite"


def test_rich_reporter_on_a_terminal() -> None:
    buf = io.StringIO()
    reporter = make_reporter(False, Console(file=buf, width=120, force_terminal=True))
    assert isinstance(reporter, RichReporter)
    _drive(reporter)
    text = buf.getvalue()
    assert "[2/3] dice seed 0: Dice 0.600" in text and "FAILED" in text
    assert "━" in text  # a progress bar was drawn
    # Not a terminal: plain log lines even without --quiet.
    assert type(make_reporter(False, Console(file=io.StringIO()))) is Reporter
