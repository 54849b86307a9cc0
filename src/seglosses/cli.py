"""The ``seglosses`` command line."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from ._registry import list_losses, loss_info

app = typer.Typer(
    add_completion=False, no_args_is_help=True,
    help="Segmentation losses: list them, plot them, and benchmark them on your data.",
)


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


def main() -> None:
    """Entry point of the console script."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
