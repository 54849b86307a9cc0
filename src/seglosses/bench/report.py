"""Report files built from a results store only.

``seglosses report DIR`` and the end of ``seglosses bench`` both call :func:`build_report`, which
reads ``DIR/results.sqlite`` and writes ``summary.csv``, ``report.md``, ``report.html`` (figures
embedded as base64) and ``figures/*.png``.

Aggregation rules (also stated in the report):

- A run's metric is the mean over its test cases (``summary.csv``); HD95 is averaged over the
  cases where it is finite, and the number of infinite cases is given beside it.
- Per loss, "mean" is the mean of its runs' means; "sd" is the standard deviation over test
  cases of the per-case values averaged over seeds (HD95: over the finite (seed, case) values);
  "seed sd" is the standard deviation of the per-seed means (shown with two or more seeds).
- Ranking: by mean Dice (ties: higher sensitivity first).
- Paired comparison: for every loss against the best one, a two-sided Wilcoxon signed-rank test
  on the per-case Dice (averaged over seeds) over the test cases both have.
"""

from __future__ import annotations

import base64
import csv
import html
import math
import re
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import plots
from .published import PUBLISHED, PUBLISHED_NOTES, SOURCE
from .store import ResultStore

SUMMARY_COLUMNS = ("loss", "seed", "dice", "sensitivity", "specificity", "hd95", "epochs",
                   "train_seconds")
METRICS = ("dice", "sensitivity", "specificity", "hd95")


@dataclass
class LossStats:
    """Aggregated results of one loss over its seeds and test cases."""

    loss: str
    seeds: list[int]
    n_cases: int
    values: dict[str, float] = field(default_factory=dict)  # <metric>_mean / _sd / _seed_sd
    hd95_inf: int = 0
    hd95_total: int = 0
    train_seconds: float = math.nan
    rank: int = 0
    p_value: float | None = None
    median_diff: float | None = None
    n_pairs: int = 0
    test_note: str = ""


@dataclass
class Report:
    """What :func:`build_report` computed and wrote."""

    out_dir: Path
    stats: list[LossStats]
    failed: list[dict[str, Any]]
    meta: dict[str, Any]
    files: list[Path]

    @property
    def best(self) -> str | None:
        """The loss ranked first, if any run finished."""
        return self.stats[0].loss if self.stats else None


# -- aggregation -------------------------------------------------------------------------------
def _loss_order(meta: dict[str, Any], runs: Sequence[dict[str, Any]]) -> list[str]:
    order = list(meta.get("config", {}).get("losses", []))
    for r in runs:
        if r["loss"] not in order:
            order.append(r["loss"])
    return order


def aggregate(store: ResultStore) -> tuple[list[LossStats], list[dict[str, Any]]]:
    """Per-loss statistics (ranked) and the failed runs."""
    meta = store.meta()
    finished = store.runs("finished")
    failed = [r for r in store.runs("failed")
              if not any(f["loss"] == r["loss"] and f["seed"] == r["seed"] for f in finished)]
    by_loss: dict[str, list[dict[str, Any]]] = {}
    for run in finished:
        by_loss.setdefault(run["loss"], []).append(run)
    stats: list[LossStats] = []
    per_case_dice: dict[str, dict[str, float]] = {}
    for loss in _loss_order(meta, finished):
        runs = sorted(by_loss.get(loss, []), key=lambda r: r["seed"])
        if not runs:
            continue
        case_values: dict[str, dict[str, list[float]]] = {}
        hd_finite: list[float] = []
        hd_inf = 0
        for run in runs:
            for case in store.cases(run["id"]):
                slot = case_values.setdefault(case.case_id, {m: [] for m in METRICS})
                for m in METRICS:
                    slot[m].append(getattr(case, m))
                if math.isfinite(case.hd95):
                    hd_finite.append(case.hd95)
                elif not math.isnan(case.hd95):
                    hd_inf += 1
        st = LossStats(loss=loss, seeds=[int(r["seed"]) for r in runs],
                       n_cases=len(case_values))
        for m in ("dice", "sensitivity", "specificity"):
            run_means = [_nan(r[m]) for r in runs]
            case_means = [float(np.nanmean(v[m])) for v in case_values.values() if v[m]]
            st.values[f"{m}_mean"] = _mean(run_means)
            st.values[f"{m}_sd"] = _sd(case_means)
            st.values[f"{m}_seed_sd"] = _sd(run_means)
        st.values["hd95_mean"] = _mean(hd_finite) if hd_finite else (
            math.inf if hd_inf else math.nan)
        st.values["hd95_sd"] = _sd(hd_finite)
        hd_run_means = [_nan(r["hd95"]) for r in runs if r["hd95"] is not None
                        and math.isfinite(r["hd95"])]
        st.values["hd95_seed_sd"] = _sd(hd_run_means)
        st.hd95_inf = hd_inf
        st.hd95_total = len(hd_finite) + hd_inf
        st.train_seconds = _mean([_nan(r["train_seconds"]) for r in runs])
        per_case_dice[loss] = {cid: float(np.nanmean(v["dice"]))
                               for cid, v in case_values.items()}
        stats.append(st)
    stats.sort(key=lambda s: (-_key(s.values["dice_mean"]),
                              -_key(s.values["sensitivity_mean"])))
    for rank, st in enumerate(stats, start=1):
        st.rank = rank
    if stats:
        best = stats[0]
        for st in stats[1:]:
            _paired_test(st, per_case_dice[best.loss], per_case_dice[st.loss])
        best.test_note = "best"
    return stats, failed


def _paired_test(st: LossStats, best: dict[str, float], other: dict[str, float]) -> None:
    common = [c for c in best if c in other]
    st.n_pairs = len(common)
    if len(common) < 2:
        st.test_note = "too few cases"
        return
    diff = np.array([other[c] - best[c] for c in common])
    st.median_diff = float(np.median(diff))
    if np.allclose(diff, 0.0, atol=1e-12):
        st.p_value, st.test_note = 1.0, "identical"
        return
    from scipy.stats import wilcoxon

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = wilcoxon(diff, zero_method="wilcox", alternative="two-sided")
        p = float(res.pvalue)
        st.p_value = p if math.isfinite(p) else None
    except ValueError as err:
        st.test_note = f"not computed ({err})"
        return
    nonzero = int(np.count_nonzero(np.abs(diff) > 1e-12))
    if nonzero < 6:
        st.test_note = f"only {nonzero} non-zero differences: p cannot fall below 0.05"


def _key(v: float) -> float:
    return v if math.isfinite(v) else -math.inf


def _nan(v: Any) -> float:
    return math.nan if v is None else float(v)


def _mean(values: Sequence[float]) -> float:
    vals = [v for v in values if not math.isnan(v)]
    return float(np.mean(vals)) if vals else math.nan


def _sd(values: Sequence[float]) -> float:
    vals = [v for v in values if math.isfinite(v)]
    return float(np.std(vals, ddof=1)) if len(vals) >= 2 else math.nan


# -- formatting --------------------------------------------------------------------------------
def fmt(v: float | None, digits: int = 3) -> str:
    """Number for tables: ``n/a`` for missing, ``inf`` for infinite."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if math.isinf(v):
        return "inf"
    return f"{v:.{digits}f}"


def fmt_pm(mean: float, sd: float, digits: int = 3) -> str:
    """``0.912 ± 0.031`` (just the mean when the sd is undefined)."""
    if sd is None or math.isnan(sd) or not math.isfinite(mean):
        return fmt(mean, digits)
    return f"{fmt(mean, digits)} ± {fmt(sd, digits)}"


def fmt_p(p: float | None) -> str:
    """p-value for tables."""
    if p is None:
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _csv_number(v: Any) -> str:
    if v is None:
        return ""
    v = float(v)
    if math.isnan(v):
        return ""
    if math.isinf(v):
        return "inf"
    return f"{v:.6g}"


# -- the document ------------------------------------------------------------------------------
class _Doc:
    """A tiny document model rendered to Markdown and to HTML."""

    def __init__(self) -> None:
        self.blocks: list[tuple[Any, ...]] = []

    def h(self, level: int, text: str) -> None:
        self.blocks.append(("h", level, text))

    def p(self, text: str) -> None:
        self.blocks.append(("p", text))

    def items(self, items: Sequence[str]) -> None:
        self.blocks.append(("ul", list(items)))

    def table(self, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        self.blocks.append(("table", list(header), [list(r) for r in rows]))

    def image(self, rel_path: str, alt: str) -> None:
        self.blocks.append(("img", rel_path, alt))

    def markdown(self) -> str:
        out: list[str] = []
        for block in self.blocks:
            kind = block[0]
            if kind == "h":
                out.append("#" * block[1] + " " + block[2])
            elif kind == "p":
                out.append(block[1])
            elif kind == "ul":
                out.append("\n".join(f"- {item}" for item in block[1]))
            elif kind == "table":
                header, rows = block[1], block[2]
                lines = ["| " + " | ".join(header) + " |",
                         "|" + "|".join("---" for _ in header) + "|"]
                lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |"
                          for row in rows]
                out.append("\n".join(lines))
            elif kind == "img":
                out.append(f"![{block[2]}]({block[1]})")
        return "\n\n".join(out) + "\n"

    def html(self, base: Path, title: str) -> str:
        body: list[str] = []
        for block in self.blocks:
            kind = block[0]
            if kind == "h":
                body.append(f"<h{block[1]}>{_inline(block[2])}</h{block[1]}>")
            elif kind == "p":
                body.append(f"<p>{_inline(block[1])}</p>")
            elif kind == "ul":
                body.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in block[1])
                            + "</ul>")
            elif kind == "table":
                header, rows = block[1], block[2]
                head = "".join(f"<th>{_inline(c)}</th>" for c in header)
                trs = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>"
                              for row in rows)
                body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{trs}</tbody></table>")
            elif kind == "img":
                data = base64.b64encode((base / block[1]).read_bytes()).decode("ascii")
                body.append(f'<figure><img alt="{html.escape(block[2])}" '
                            f'src="data:image/png;base64,{data}"/>'
                            f"<figcaption>{_inline(block[2])}</figcaption></figure>")
        style = (
            "body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;"
            "max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}"
            "table{border-collapse:collapse;margin:1em 0;font-size:0.92em}"
            "th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}"
            "th{background:#f3f3f3}code{background:#f3f3f3;padding:0 3px}"
            "img{max-width:100%}figure{margin:1.5em 0}figcaption{color:#555;font-size:0.9em}"
        )
        return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>{html.escape(title)}</title><style>{style}</style></head><body>\n"
                + "\n".join(body) + "\n</body></html>\n")


def _inline(text: str) -> str:
    escaped = html.escape(text)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", escaped)


# -- building ----------------------------------------------------------------------------------
def build_report(out_dir: str | Path) -> Report:
    """Write ``summary.csv``, ``report.md``, ``report.html`` and ``figures/`` from the store.

    Raises:
        FileNotFoundError: ``out_dir`` holds no ``results.sqlite``.
        ValueError: the file is not a results store.
    """
    out = Path(out_dir)
    with ResultStore(out, create=False) as store:
        meta = store.meta()
        stats, failed = aggregate(store)
        finished = store.runs("finished")
        files = [_write_summary(out / "summary.csv", meta, finished)]
        figures = _write_figures(out / "figures", store, meta, stats, finished)
    files += list(figures.values())
    doc = _document(out, meta, stats, failed, finished, figures)
    md = out / "report.md"
    md.write_text(doc.markdown(), encoding="utf-8")
    page = out / "report.html"
    page.write_text(doc.html(out, "seglosses benchmark report"), encoding="utf-8")
    files += [md, page]
    return Report(out, stats, failed, meta, files)


def _write_summary(path: Path, meta: dict[str, Any], finished: list[dict[str, Any]]) -> Path:
    order = _loss_order(meta, finished)
    rows = sorted(finished, key=lambda r: (order.index(r["loss"]), r["seed"]))
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(SUMMARY_COLUMNS)
        for r in rows:
            writer.writerow([r["loss"], r["seed"], _csv_number(r["dice"]),
                             _csv_number(r["sensitivity"]), _csv_number(r["specificity"]),
                             _csv_number(r["hd95"]), r["epochs"],
                             _csv_number(r["train_seconds"])])
    return path


def _write_figures(fig_dir: Path, store: ResultStore, meta: dict[str, Any],
                   stats: list[LossStats], finished: list[dict[str, Any]]) -> dict[str, Path]:
    figures: dict[str, Path] = {}
    fig_dir.mkdir(parents=True, exist_ok=True)
    if not stats:
        return figures
    unit = meta.get("data", {}).get("spacing_unit", "")
    rows = [{"loss": s.loss, **s.values} for s in stats]
    figures["metrics"] = plots.plot_metric_bars(rows, fig_dir / "metrics.png", hd95_unit=unit)
    curves: dict[str, list[list[tuple[int, float, float]]]] = {}
    for s in stats:
        curves[s.loss] = [
            [(c.epoch, c.train_loss, c.val_dice) for c in store.curves(r["id"])]
            for r in sorted(finished, key=lambda r: r["seed"]) if r["loss"] == s.loss
        ]
    figures["curves"] = plots.plot_learning_curves(curves, fig_dir / "learning_curves.png")
    inputs = store.example_inputs()
    if inputs:
        chosen = [stats[0]] + ([stats[-1]] if len(stats) > 1 else [])
        predictions: dict[str, list[np.ndarray]] = {}
        for label, st in zip(("best", "worst"), chosen):
            run = min((r for r in finished if r["loss"] == st.loss), key=lambda r: r["seed"])
            masks = [m for _, m in store.examples(run["id"])]
            if masks:
                predictions[f"{label}: {st.loss} (seed {run['seed']})"] = masks
        if predictions:
            figures["overlays"] = plots.plot_overlays(inputs, predictions,
                                                      fig_dir / "overlays.png")
    names = [s.loss for s in stats]
    figures["loss_profiles"], _ = plots.plot_loss_profiles(names, fig_dir / "loss_profiles.png")
    return figures


def _document(out: Path, meta: dict[str, Any], stats: list[LossStats],
              failed: list[dict[str, Any]], finished: list[dict[str, Any]],
              figures: dict[str, Path]) -> _Doc:
    from .. import __version__

    cfg = meta.get("config", {})
    data = meta.get("data", {})
    unit = data.get("spacing_unit", "")
    doc = _Doc()
    doc.h(1, "seglosses benchmark report")
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    doc.p(f"Built {now} by seglosses {__version__} from `{out / 'results.sqlite'}` "
          f"(preset `{cfg.get('preset', '?')}`, {len(finished)} finished runs).")

    doc.h(2, "Data")
    doc.p(data.get("description") or "No description was recorded.")
    case_word = "subject volumes" if data.get("volumetric") else "images"
    split = data.get("splits", {})
    doc.table(["split", "cases", "slices"], [
        [name, str(split.get(name, {}).get("cases", "?")),
         str(split.get(name, {}).get("slices", "?"))] for name in ("train", "val", "test")
    ])
    doc.p(f"Format `{data.get('format', cfg.get('format', '?'))}`"
          + (f" read from `{cfg.get('data')}`" if cfg.get("data") else "")
          + f"; slices of {cfg.get('image_size', '?')} px; test metrics per {case_word[:-1]}; "
          f"pixel spacing {_spacing_text(data.get('spacing'))} {unit}.")

    doc.h(2, "Results")
    if not stats:
        doc.p("No run has finished yet.")
    else:
        n_seeds = max(len(s.seeds) for s in stats)
        doc.p(
            f"Each row: a 2D U-Net trained with that loss, {n_seeds} seed(s), evaluated on the "
            f"{stats[0].n_cases} test {case_word} with the weights of the best validation Dice. "
            "Values: mean ± sd, the sd taken over test cases (each case averaged over seeds). "
            f"HD95 in {unit or 'pixels'}, averaged over the cases where it is finite; "
            "`inf n/N` counts the (seed, case) pairs where exactly one of prediction and "
            "reference is empty. Ranked by mean Dice."
        )
        header = ["rank", "loss", "Dice", "sensitivity", "specificity",
                  f"HD95 ({unit or 'px'})", "p vs best", "runs", "train s/run"]
        if n_seeds > 1:
            header.insert(3, "Dice seed sd")
        rows = []
        for s in stats:
            hd = fmt_pm(s.values["hd95_mean"], s.values["hd95_sd"], 2)
            if s.hd95_inf:
                hd += f" (inf {s.hd95_inf}/{s.hd95_total})"
            ptext = "best" if s.rank == 1 else fmt_p(s.p_value)
            row = [str(s.rank), f"`{s.loss}`", fmt_pm(s.values["dice_mean"], s.values["dice_sd"]),
                   fmt_pm(s.values["sensitivity_mean"], s.values["sensitivity_sd"]),
                   fmt_pm(s.values["specificity_mean"], s.values["specificity_sd"]),
                   hd, ptext, str(len(s.seeds)), fmt(s.train_seconds, 1)]
            if n_seeds > 1:
                row.insert(3, fmt(s.values["dice_seed_sd"]))
            rows.append(row)
        doc.table(header, rows)
        doc.p("Ranking by mean Dice: " + ", ".join(f"{s.rank}. `{s.loss}`" for s in stats)
              + ".")
        best = stats[0]
        notes = [f"`{s.loss}`: {s.test_note}" for s in stats[1:] if s.test_note]
        doc.p(
            f"Paired comparison: each loss against `{best.loss}` (the best), two-sided Wilcoxon "
            "signed-rank test on the per-case Dice (averaged over seeds) over the test cases "
            "both have. A small p says the two losses' Dice differ consistently across cases; "
            "it says nothing about cases outside this test set, and with few cases or many "
            "losses (no correction for multiple comparisons is applied) it is weak evidence."
            + (" Notes: " + "; ".join(notes) + "." if notes else "")
        )

    doc.h(2, "Comparison with the survey's published numbers")
    ours = {s.loss: s for s in stats}
    rows = []
    for loss, (pd, ps, pp) in PUBLISHED.items():
        s = ours.get(loss)
        rows.append([f"`{loss}`", fmt(pd), fmt(ps), fmt(pp),
                     fmt(s.values["dice_mean"]) if s else "not run",
                     fmt(s.values["sensitivity_mean"]) if s else "not run",
                     fmt(s.values["specificity_mean"]) if s else "not run"])
    doc.table(["loss", "survey Dice", "survey sensitivity", "survey specificity", "our Dice",
               "our sensitivity", "our specificity"], rows)
    doc.p(f"Source: {SOURCE}.")
    doc.items(list(PUBLISHED_NOTES) + [
        "Our numbers come from the data described above"
        + ("" if data.get("format") == "nfbs" else ", not from NFBS")
        + f", with the schedule of the `{cfg.get('preset', '?')}` preset; they are not "
        "expected to match the survey's."
    ])

    if figures:
        doc.h(2, "Figures")
        captions = {
            "metrics": "Test metrics per loss (mean ± sd over test cases).",
            "curves": "Learning curves: training loss relative to its first epoch, and "
                      "validation Dice, per epoch (mean over seeds).",
            "overlays": "The same test slices segmented by the best and the worst loss "
                        "(lowest seed).",
            "loss_profiles": "Each loss's value and gradient against the predicted "
                             "probability of the true class, on a toy image with 25% "
                             "foreground (as `seglosses plot-loss`).",
        }
        for key in ("metrics", "curves", "overlays", "loss_profiles"):
            if key in figures:
                doc.image(f"figures/{figures[key].name}", captions[key])

    if failed:
        doc.h(2, "Failed runs")
        doc.p("These runs stopped with an error; `seglosses bench --resume` retries them.")
        doc.table(["loss", "seed", "error"],
                  [[f"`{r['loss']}`", str(r["seed"]), (r["error"] or "").splitlines()[0]
                    if r["error"] else ""] for r in failed])

    doc.h(2, "Configuration")
    keys = ["preset", "losses", "seeds", "format", "data", "image_size", "subjects",
            "slices_per_subject", "data_seed", "epochs", "batch_size", "lr", "lr_min",
            "weight_decay", "width", "depth", "norm", "device", "amp", "examples"]
    doc.table(["setting", "value"],
              [[k, f"`{_cfg_text(cfg.get(k))}`"] for k in keys if k in cfg])
    doc.p("Model: 2D U-Net (`seglosses.models.UNet2d`) with "
          f"{cfg.get('depth', '?')} pooling steps and {cfg.get('width', '?')} channels in the "
          "first level, logits thresholded at 0 (probability 0.5). Optimiser: Adam, learning "
          f"rate {cfg.get('lr', '?')} decayed by a cosine to {cfg.get('lr_min', '?')} over all "
          "steps; mixed precision on CUDA only. The weights with the best validation Dice are "
          "evaluated on the test split.")

    doc.h(2, "Timing")
    sessions = meta.get("sessions", [])
    trows = []
    for i, s in enumerate(sessions, start=1):
        trows.append([str(i), s.get("started_at", "?"), s.get("finished_at", "interrupted"),
                      s.get("device", "?"), str(s.get("threads", "?")),
                      fmt(s.get("data_seconds"), 1), fmt(s.get("seconds"), 1),
                      str(s.get("runs_done", "?"))])
    if trows:
        doc.table(["session", "started (UTC)", "finished (UTC)", "device", "threads",
                   "data s", "wall s", "runs done"], trows)
    total_train = sum(_nan(r["train_seconds"]) for r in finished)
    total_eval = sum(_nan(r["eval_seconds"]) for r in finished)
    doc.p(f"Training time over all finished runs: {fmt(total_train, 1)} s; test evaluation: "
          f"{fmt(total_eval, 1)} s.")

    doc.h(2, "How to read this report")
    doc.items([
        "Dice, sensitivity and specificity lie in [0, 1], higher is better; HD95 (the 95th "
        "percentile Hausdorff distance between the predicted and reference outlines) is a "
        "distance, lower is better.",
        "Differences smaller than the sd, or with a large p, are not evidence that one loss "
        "is better on this data; rerun with more seeds (`--seeds`) or more data.",
        "The short `quick` schedule shows how fast each loss learns more than where it ends "
        "up; use the `paper` preset on a GPU for converged numbers.",
        "`summary.csv` holds one row per (loss, seed); `results.sqlite` holds every curve and "
        "per-case value for your own analysis (see docs/bench.md).",
    ])
    return doc


def _spacing_text(spacing: Any) -> str:
    if not spacing:
        return "?"
    return " x ".join(f"{float(v):g}" for v in spacing)


def _cfg_text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return "-" if value is None else str(value)
