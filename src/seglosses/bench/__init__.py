"""The loss benchmark behind ``seglosses bench``.

- :mod:`~seglosses.bench.presets`: presets and the resolved :class:`BenchConfig`;
- :mod:`~seglosses.bench.runner`: training and evaluation of one run (yields records);
- :mod:`~seglosses.bench.store`: the SQLite results store (the only code touching SQLite);
- :mod:`~seglosses.bench.sweep`: a whole sweep (data, runs, store, report);
- :mod:`~seglosses.bench.report` and :mod:`~seglosses.bench.plots`: report files and figures,
  built from the store only;
- :mod:`~seglosses.bench.published`: the survey's published numbers.
"""

from __future__ import annotations

from .presets import PAPER_LOSSES, PRESETS, BenchArgumentError, BenchConfig, resolve_config
from .report import Report, build_report
from .runner import RunFailed, RunResult, train_run
from .store import ResultStore
from .sweep import SweepOutcome, run_bench

__all__ = [
    "PAPER_LOSSES", "PRESETS", "BenchArgumentError", "BenchConfig", "Report", "ResultStore",
    "RunFailed", "RunResult", "SweepOutcome", "build_report", "resolve_config", "run_bench",
    "train_run",
]
