"""The ``seglosses`` command line.

Exit status: 0 done; 2 bad arguments or data (one-line reason on stderr); 1 otherwise (a run
failed, or an unexpected error).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List, NoReturn, Optional, Sequence

import typer
from rich.console import Console
from rich.table import Table

from ._registry import list_losses, loss_info

try:  # recent typer releases vendor click
    from typer._click import exceptions as _click_errors
except ImportError:  # pragma: no cover - typer built on the click package
    from click import exceptions as _click_errors  # type: ignore[no-redef]

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help=(
        "Segmentation losses: list them, plot them, and benchmark them on your data.\n\n"
        "Start with `seglosses bench` (a few minutes on a laptop CPU): it trains a small "
        "2D U-Net once per loss and writes a report comparing them."
    ),
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _fail(code: int, message: str) -> NoReturn:
    """One line on stderr, then exit."""
    line = " ".join(str(message).split())
    typer.echo(f"seglosses: error: {line}", err=True)
    raise typer.Exit(code)


def _stdout() -> Console:
    console = Console(file=sys.stdout, highlight=False, soft_wrap=True)
    if not console.is_terminal:
        console.width = max(console.width, 140)  # tables stay readable in logs and pipes
    return console


@app.command("losses")
def losses_command() -> None:
    """Print every registered loss with its family, source and parameters."""
    table = Table(title="seglosses: registered losses")
    for col in ("name", "family", "source", "parameters (defaults)", "summary"):
        table.add_column(col, overflow="fold")
    for name in list_losses():
        info = loss_info(name)
        params = ", ".join(f"{k}={v!r}" for k, v in info.defaults().items()) or "-"
        source = info.source + (f", arXiv:{info.arxiv}" if info.arxiv else "")
        table.add_row(name, str(info.family), source, params, info.summary)
    Console().print(table)


@app.command("bench")
def bench_command(
    preset: str = typer.Option(
        "quick", "--preset", metavar="quick|paper|full",
        help="quick: the survey's 9 losses, 1 seed, short CPU schedule on small slices "
             "(minutes). paper: the survey's protocol (128 px, 50 epochs, 3 seeds; GPU). "
             "full: the paper protocol with every registered loss."),
    data: Optional[Path] = typer.Option(
        None, "--data", metavar="PATH",
        help="Your data folder (NFBS download, NIfTI pairs, or images/ + masks/). Without "
             "it, the built-in data is used."),
    format: Optional[str] = typer.Option(
        None, "--format", metavar="FORMAT",
        help="shapes | mni-skullstrip | mni-gm | nfbs | nifti | images. Guessed from the "
             "folder layout when --data is given; else the preset's built-in data."),
    losses: Optional[str] = typer.Option(
        None, "--losses", metavar="paper|all|NAME,NAME,...",
        help="Which losses to compare: the survey's nine ('paper'), every registered loss "
             "('all'), or a comma-separated list (see `seglosses losses`)."),
    seeds: Optional[int] = typer.Option(
        None, "--seeds", metavar="N", help="Train each loss with seeds 0..N-1."),
    epochs: Optional[int] = typer.Option(None, "--epochs", metavar="N",
                                         help="Training epochs per run."),
    image_size: Optional[int] = typer.Option(None, "--image-size", metavar="N",
                                             help="Slices are resampled to N x N pixels."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", metavar="N",
                                             help="Slices per optimisation step."),
    device: str = typer.Option("auto", "--device", metavar="auto|cpu|cuda",
                               help="Where to train; auto picks a GPU when there is one."),
    out: Optional[Path] = typer.Option(
        None, "--out", metavar="DIR",
        help="Results folder (default runs/<preset>-<timestamp>). Must be new or empty "
             "unless --resume."),
    resume: bool = typer.Option(
        False, "--resume",
        help="Continue the sweep in --out: finished (loss, seed) runs are kept and skipped."),
    quiet: bool = typer.Option(False, "--quiet", help="Log lines only, no progress bars."),
    settings: List[str] = typer.Option(
        [], "--set", metavar="KEY=VALUE",
        help="Advanced, repeatable: override another setting, e.g. --set width=16 "
             "--set subjects=40. Keys: subjects, slices_per_subject, data_seed, lr, lr_min, "
             "weight_decay, width, depth, norm, amp, num_threads, examples."),
) -> None:
    """Train a 2D U-Net once per loss (and seed) and compare the losses.

    Writes into --out: results.sqlite (every run, curve and per-case metric), summary.csv
    (one row per loss and seed), report.md and report.html (tables, paired tests, the
    survey's published numbers, figures) and figures/*.png. Interrupt it at any time and
    rerun with --resume: finished runs are never lost.

    Examples:

      seglosses bench

      seglosses bench --losses dice,focal_tversky --seeds 3 --epochs 20

      seglosses bench --preset paper --format nfbs --data ~/NFBS_Dataset --out runs/nfbs
    """
    from .bench.presets import BenchArgumentError, parse_settings, resolve_config
    from .bench.progress import make_reporter, results_table
    from .bench.sweep import default_out, run_bench
    from .data import DataError

    try:
        config = resolve_config(
            preset, data=data, format=format, losses=losses, seeds=seeds, epochs=epochs,
            image_size=image_size, batch_size=batch_size, device=device,
            **parse_settings(settings),
        )
        out_dir = out if out is not None else default_out(config.preset)
        outcome = run_bench(config, out_dir, resume=resume, reporter=make_reporter(quiet))
    except (BenchArgumentError, DataError) as err:
        _fail(EXIT_USAGE, str(err))
    except KeyboardInterrupt:
        typer.echo("seglosses: interrupted; finished runs are saved, rerun with --resume",
                   err=True)
        raise typer.Exit(EXIT_FAILED) from None
    except Exception as err:  # noqa: BLE001 - any other failure: one line, exit 1
        if os.environ.get("SEGLOSSES_DEBUG"):
            raise
        _fail(EXIT_FAILED, f"{type(err).__name__}: {err} (set SEGLOSSES_DEBUG=1 for a traceback)")
    console = _stdout()
    console.print(results_table(outcome.report))
    console.print(f"runs: {outcome.finished} finished, {outcome.skipped} already done, "
                  f"{outcome.failed} failed, in {outcome.seconds:.1f} s", markup=False)
    console.print(f"report: {outcome.out_dir / 'report.html'}", markup=False)
    if outcome.failed:
        raise typer.Exit(EXIT_FAILED)


@app.command("plot-loss")
def plot_loss_command(
    names: List[str] = typer.Argument(..., metavar="NAME [NAME ...]",
                                      help="Registered loss names (see `seglosses losses`)."),
    out: Path = typer.Option(Path("loss_profiles.png"), "--out", metavar="FILE",
                             help="PNG file to write."),
    foreground: float = typer.Option(0.25, "--foreground", metavar="F",
                                     help="Foreground fraction of the toy image, in (0, 1)."),
) -> None:
    """Plot loss value and gradient against the predicted probability of the true class.

    Every pixel of a 16x16 toy image (a fraction F of it foreground) is predicted with
    probability p for its true class; the figure shows the loss and d loss / d logit of a
    foreground pixel as p goes from 0.01 to 0.99.
    """
    import seglosses

    from .bench.plots import plot_loss_profiles

    if not 0.0 < foreground < 1.0:
        _fail(EXIT_USAGE, f"--foreground must lie in (0, 1); got {foreground}")
    for name in names:
        try:
            seglosses.get_loss(name)
        except (ValueError, TypeError) as err:
            _fail(EXIT_USAGE, str(err).splitlines()[0])
    if out.suffix.lower() != ".png":
        _fail(EXIT_USAGE, f"--out must name a .png file; got {out}")
    path, profiles = plot_loss_profiles(names, out, foreground=foreground)
    for prof in profiles:
        if prof.error:
            typer.echo(f"seglosses: {prof.name} not drawn: {prof.error}", err=True)
    typer.echo(f"wrote {path}")
    if any(p.error for p in profiles):
        raise typer.Exit(EXIT_FAILED)


@app.command("report")
def report_command(
    directory: Path = typer.Argument(..., metavar="DIR",
                                     help="A results folder written by `seglosses bench`."),
) -> None:
    """Rebuild summary.csv, report.md, report.html and figures/ from DIR/results.sqlite."""
    from .bench.progress import results_table
    from .bench.report import build_report

    if not directory.is_dir():
        _fail(EXIT_USAGE, f"{directory} is not a folder")
    try:
        report = build_report(directory)
    except FileNotFoundError as err:
        _fail(EXIT_USAGE, str(err))
    except ValueError as err:
        _fail(EXIT_USAGE, str(err))
    console = _stdout()
    console.print(results_table(report))
    for path in report.files:
        console.print(f"wrote {path}", markup=False)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns (and exits with) the exit status.

    Argument errors that the parser itself detects (a word where a number belongs, an unknown
    option) are also reported on one line with status 2.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        code = app(args=args, prog_name="seglosses", standalone_mode=False)
    except _click_errors.NoArgsIsHelpError as err:
        typer.echo(err.ctx.get_help() if err.ctx else "", err=False)
        code = 0
    except _click_errors.UsageError as err:
        hint = f" (see seglosses {err.ctx.info_name} --help)" if err.ctx and \
            err.ctx.info_name and err.ctx.info_name != "seglosses" else " (see seglosses --help)"
        typer.echo(f"seglosses: error: {' '.join(err.format_message().split())}{hint}",
                   err=True)
        code = EXIT_USAGE
    except typer.Exit as err:
        code = err.exit_code
    except _click_errors.ClickException as err:
        typer.echo(f"seglosses: error: {' '.join(err.format_message().split())}", err=True)
        code = err.exit_code
    except typer.Abort:
        typer.echo("seglosses: aborted", err=True)
        code = EXIT_FAILED
    code = 0 if code is None else int(code)
    if argv is None:
        sys.exit(code)
    return code


if __name__ == "__main__":  # pragma: no cover
    main()
