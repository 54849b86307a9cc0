"""How a sweep shows its progress: log lines, optionally with rich progress bars."""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from .runner import EpochRecord, RunResult


class Reporter:
    """Receives the sweep's events; this base class prints one line per finished run."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(file=sys.stdout, highlight=False, soft_wrap=True)
        self.total = 0
        self.index = 0

    def __enter__(self) -> Reporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop any live display."""

    def log(self, message: str) -> None:
        """One log line."""
        self.console.print(message, markup=False, highlight=False)

    def sweep_start(self, total: int, done: int) -> None:
        """``total`` runs planned, ``done`` of them already in the store."""
        self.total = total
        self.index = done
        if done:
            self.log(f"resuming: {done} of {total} runs already finished, {total - done} to go")
        else:
            self.log(f"sweep: {total} runs")

    def run_start(self, loss: str, seed: int, total_steps: int) -> None:
        """A run begins."""
        self.index += 1

    def step(self) -> None:
        """One optimisation step done."""

    def epoch(self, loss: str, seed: int, record: EpochRecord, epochs: int) -> None:
        """One epoch done."""

    def run_end(self, loss: str, seed: int, result: RunResult | None,
                error: str | None = None) -> None:
        """A run finished (``result``) or failed (``error``)."""
        head = f"[{self.index}/{self.total}] {loss} seed {seed}"
        if result is None:
            self.log(f"{head}: FAILED: {error}")
            return
        m = result.means()
        hd = "inf" if m["hd95"] == float("inf") else f"{m['hd95']:.2f}"
        self.log(
            f"{head}: Dice {m['dice']:.3f}, sensitivity {m['sensitivity']:.3f}, specificity "
            f"{m['specificity']:.3f}, HD95 {hd} (best epoch {result.best_epoch}/{result.epochs}, "
            f"{result.train_seconds:.1f} s)"
        )

    def sweep_end(self) -> None:
        """Every planned run was attempted."""


class RichReporter(Reporter):
    """Log lines plus two progress bars: the whole sweep and the current run."""

    def __init__(self, console: Console | None = None) -> None:
        super().__init__(console)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )
        self._sweep: TaskID | None = None
        self._run: TaskID | None = None
        self._started = False

    def _ensure(self) -> None:
        if not self._started:
            self.progress.start()
            self._started = True

    def close(self) -> None:
        if self._started:
            self.progress.stop()
            self._started = False

    def log(self, message: str) -> None:
        self.progress.console.print(message, markup=False, highlight=False)

    def sweep_start(self, total: int, done: int) -> None:
        super().sweep_start(total, done)
        self._ensure()
        self._sweep = self.progress.add_task("sweep", total=total, completed=done, info="")

    def run_start(self, loss: str, seed: int, total_steps: int) -> None:
        super().run_start(loss, seed, total_steps)
        self._ensure()
        if self._run is not None:
            self.progress.remove_task(self._run)
        self._run = self.progress.add_task(f"{loss} seed {seed}", total=total_steps,
                                           info="")

    def step(self) -> None:
        if self._run is not None:
            self.progress.advance(self._run)

    def epoch(self, loss: str, seed: int, record: EpochRecord, epochs: int) -> None:
        if self._run is not None:
            self.progress.update(self._run, info=f"epoch {record.epoch}/{epochs} val Dice "
                                                 f"{record.val_dice:.3f}")

    def run_end(self, loss: str, seed: int, result: RunResult | None,
                error: str | None = None) -> None:
        super().run_end(loss, seed, result, error)
        if self._sweep is not None:
            self.progress.advance(self._sweep)

    def sweep_end(self) -> None:
        self.close()


def make_reporter(quiet: bool, console: Console | None = None, **_: Any) -> Reporter:
    """Plain log lines when ``quiet`` (or not a terminal), progress bars otherwise."""
    console = console or Console(file=sys.stdout, highlight=False, soft_wrap=True)
    if quiet or not console.is_terminal:
        return Reporter(console)
    return RichReporter(console)


def results_table(report: Any) -> Any:
    """The per-loss results of a :class:`~seglosses.bench.report.Report` as a rich table."""
    from rich.table import Table

    from .report import fmt, fmt_p, fmt_pm

    unit = report.meta.get("data", {}).get("spacing_unit", "px")
    table = Table(title=f"seglosses bench: {report.out_dir}", title_justify="left")
    for col in ("rank", "loss", "Dice", "sensitivity", "specificity", f"HD95 ({unit})",
                "p vs best", "seeds", "train s"):
        table.add_column(col, justify="left" if col == "loss" else "right")
    for s in report.stats:
        hd = fmt_pm(s.values["hd95_mean"], s.values["hd95_sd"], 2)
        if s.hd95_inf:
            hd += f" (inf {s.hd95_inf})"
        table.add_row(
            str(s.rank), s.loss, fmt_pm(s.values["dice_mean"], s.values["dice_sd"]),
            fmt_pm(s.values["sensitivity_mean"], s.values["sensitivity_sd"]),
            fmt_pm(s.values["specificity_mean"], s.values["specificity_sd"]), hd,
            "best" if s.rank == 1 else fmt_p(s.p_value), str(len(s.seeds)),
            fmt(s.train_seconds, 1),
        )
    return table
