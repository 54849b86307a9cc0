"""Figures of the benchmark report and of ``seglosses plot-loss`` (matplotlib, Agg canvas).

Built with matplotlib's object interface on an Agg canvas (no pyplot, no global backend
change), so importing or calling these never opens a window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .._validation import check_number

METRIC_LABELS = {
    "dice": "Dice", "sensitivity": "Sensitivity", "specificity": "Specificity",
    "hd95": "HD95",
}


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(str(path), format="png")
    return path


def plot_metric_bars(stats: Sequence[dict[str, Any]], path: str | Path, *,
                     hd95_unit: str = "") -> Path:
    """Bar chart of mean +- sd per loss for Dice, sensitivity, specificity and HD95.

    Args:
        stats: one dict per loss (in display order) with ``loss`` and, per metric,
            ``<metric>_mean`` and ``<metric>_sd``.
        path: PNG file to write.
        hd95_unit: unit shown on the HD95 axis.
    """
    names = [s["loss"] for s in stats]
    fig = _figure(max(7.0, 0.55 * len(names) + 4), 6.4)
    axes = fig.subplots(2, 2)
    x = np.arange(len(names))
    for ax, metric in zip(axes.ravel(), METRIC_LABELS):
        means = np.array([_finite(s.get(f"{metric}_mean")) for s in stats])
        sds = np.array([_finite(s.get(f"{metric}_sd"), 0.0) for s in stats])
        ax.bar(x, np.nan_to_num(means), yerr=sds, capsize=3, color="#4C72B0",
               error_kw={"elinewidth": 1})
        label = METRIC_LABELS[metric] + (f" ({hd95_unit})" if metric == "hd95" and hd95_unit
                                         else "")
        ax.set_title(label + (" (lower is better)" if metric == "hd95" else ""), fontsize=10)
        ax.set_xticks(x)
        ax.set_xticklabels(names, rotation=45, ha="right", fontsize=8)
        if metric != "hd95":
            finite = means[np.isfinite(means)]
            low = float(np.min(finite - 0.05)) if finite.size else 0.0
            ax.set_ylim(max(0.0, min(low, 0.9)), 1.0)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle("Test metrics per loss: mean ± sd over test cases", fontsize=11)
    fig.tight_layout()
    return _save(fig, path)


def plot_learning_curves(curves: dict[str, list[list[tuple[int, float, float]]]],
                         path: str | Path) -> Path:
    """Validation Dice and relative training loss against epoch, one line per loss.

    Args:
        curves: loss -> one list per seed of (epoch, train_loss, val_dice); lines show the
            mean over seeds. The training loss is divided by its first-epoch value, so that
            losses of different scales share one axis.
        path: PNG file to write.
    """
    fig = _figure(11, 4.2)
    ax_loss, ax_dice = fig.subplots(1, 2)
    cmap = _colors(len(curves))
    for color, (name, runs) in zip(cmap, curves.items()):
        if not runs:
            continue
        epochs = sorted({e for run in runs for e, _, _ in run})
        rel, dice = [], []
        for e in epochs:
            vals_l, vals_d = [], []
            for run in runs:
                first = run[0][1] if run else float("nan")
                for ep, tl, vd in run:
                    if ep == e:
                        vals_l.append(tl / first if first and math.isfinite(first) else math.nan)
                        vals_d.append(vd)
            rel.append(np.nanmean(vals_l) if vals_l else math.nan)
            dice.append(np.nanmean(vals_d) if vals_d else math.nan)
        ax_loss.plot(epochs, rel, marker=".", color=color, label=name)
        ax_dice.plot(epochs, dice, marker=".", color=color, label=name)
    ax_loss.set_title("Training loss / its first-epoch value", fontsize=10)
    ax_dice.set_title("Validation Dice", fontsize=10)
    for ax in (ax_loss, ax_dice):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    ax_dice.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return _save(fig, path)


def plot_overlays(inputs: Sequence[dict[str, Any]], predictions: dict[str, list[np.ndarray]],
                  path: str | Path) -> Path:
    """Example test slices with the reference outline and each listed loss's prediction.

    Args:
        inputs: the example slices (``image``, ``mask``, ``case_id``), as stored.
        predictions: column title -> predicted masks, one per example slice.
        path: PNG file to write.
    """
    n_rows = len(inputs)
    n_cols = 1 + len(predictions)
    fig = _figure(2.6 * n_cols, 2.6 * max(n_rows, 1))
    axes = np.atleast_2d(fig.subplots(max(n_rows, 1), n_cols, squeeze=False))
    for r, item in enumerate(inputs):
        image, ref = item["image"], item["mask"]
        ax = axes[r, 0]
        ax.imshow(image, cmap="gray")
        _outline(ax, ref, "#2ca02c")
        ax.set_ylabel(str(item.get("case_id", "")), fontsize=8)
        if r == 0:
            ax.set_title("image + reference", fontsize=9)
        for c, (title, masks) in enumerate(predictions.items(), start=1):
            ax = axes[r, c]
            ax.imshow(image, cmap="gray")
            pred = masks[r] if r < len(masks) else np.zeros_like(ref)
            tint = np.zeros((*pred.shape, 4))
            tint[pred.astype(bool)] = (1.0, 0.2, 0.2, 0.35)
            ax.imshow(tint)
            _outline(ax, ref, "#2ca02c")
            _outline(ax, pred, "#d62728")
            if r == 0:
                ax.set_title(title, fontsize=9)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("green: reference outline; red: prediction", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def _outline(ax: Any, mask: np.ndarray, color: str) -> None:
    mask = np.asarray(mask, dtype=float)
    if mask.min() != mask.max():
        ax.contour(mask, levels=[0.5], colors=[color], linewidths=1.0)


def _colors(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _finite(value: Any, default: float = math.nan) -> float:
    if value is None:
        return default
    value = float(value)
    return value if math.isfinite(value) else default


@dataclass
class LossProfile:
    """A loss's value and gradient along a sweep of the predicted probability."""

    name: str
    prob: np.ndarray
    value: np.ndarray
    grad: np.ndarray
    error: str = ""


def loss_profile(name: str, *, foreground: float = 0.25, size: int = 16,
                 points: int = 99) -> LossProfile:
    """Value and gradient of a loss against the probability given to the true class.

    A ``size`` x ``size`` binary image whose first ``foreground`` fraction of pixels is
    foreground; every pixel is predicted with probability ``p`` for its true class (foreground
    pixels get ``p``, background pixels ``1 - p``). For each ``p`` in (0, 1) we record the loss
    and ``d loss / d logit`` of one foreground pixel, multiplied by the number of pixels so that
    a mean-reduced pixel loss shows its per-pixel derivative.

    Raises:
        ValueError: unknown loss name (from ``seglosses.get_loss``).
    """
    import seglosses

    check_number(foreground, "foreground", low=0, high=1, low_open=True, high_open=True)
    loss_fn = seglosses.get_loss(name)
    n = size * size
    n_fg = max(1, min(n - 1, round(foreground * n)))
    flat = torch.zeros(n, dtype=torch.float64)
    flat[:n_fg] = 1.0
    target = flat.reshape(1, 1, size, size)
    prob = np.linspace(0.01, 0.99, points)
    sign = target * 2 - 1
    logit = torch.log(torch.from_numpy(prob / (1 - prob))).reshape(-1, 1, 1, 1)
    try:
        values, grads = _profile_batched(loss_fn, logit, sign, target, n)
    except Exception:  # noqa: BLE001 - fall back to one call per probability
        try:
            values, grads = _profile_looped(seglosses.get_loss(name), logit, sign, target, n)
        except Exception as err:  # a loss that cannot run on this toy input: show why
            nan = np.full(points, np.nan)
            return LossProfile(name, prob, nan, nan, error=f"{type(err).__name__}: {err}")
    return LossProfile(name, prob, values, grads)


def _profile_batched(loss_fn: torch.nn.Module, logit: torch.Tensor, sign: torch.Tensor,
                     target: torch.Tensor, n: int) -> tuple[np.ndarray, np.ndarray]:
    """All probabilities in one batch, one sample per probability.

    Every sample has the same target, so statistics a loss pools over the batch target (such
    as weighted BCE's class ratio) equal the per-sample ones, and with ``reduction="none"``
    the gradient of the sum is each sample's own gradient.
    """
    for module in loss_fn.modules():
        if hasattr(module, "reduction"):
            module.reduction = "none"
    points = logit.shape[0]
    z = (logit * sign).requires_grad_(True)
    out = loss_fn(z, target.expand(points, -1, -1, -1))
    if out.shape != (points,):
        raise ValueError(f"expected {points} per-sample values; got shape {tuple(out.shape)}")
    (g,) = torch.autograd.grad(out.sum(), z)
    return out.detach().double().numpy(), g.reshape(points, -1)[:, 0].double().numpy() * n


def _profile_looped(loss_fn: torch.nn.Module, logit: torch.Tensor, sign: torch.Tensor,
                    target: torch.Tensor, n: int) -> tuple[np.ndarray, np.ndarray]:
    points = logit.shape[0]
    values, grads = np.full(points, np.nan), np.full(points, np.nan)
    for k in range(points):
        z = (logit[k:k + 1] * sign).requires_grad_(True)
        out = loss_fn(z, target)
        (g,) = torch.autograd.grad(out, z)
        values[k] = float(out.detach())
        grads[k] = float(g.reshape(-1)[0]) * n
    return values, grads


def plot_loss_profiles(names: Sequence[str], path: str | Path, *, foreground: float = 0.25
                       ) -> tuple[Path, list[LossProfile]]:
    """Figure of :func:`loss_profile` for several losses.

    Up to ten losses share two panels (value, gradient); more get one small panel each (value
    on the left axis, gradient dashed on the right axis), so that no loss's scale hides the
    others.
    """
    profiles = [loss_profile(name, foreground=foreground) for name in names]
    drawn = [p for p in profiles if not p.error]
    if len(drawn) <= 10:
        fig = _figure(11, 4.4)
        ax_val, ax_grad = fig.subplots(1, 2)
        for color, prof in zip(_colors(len(drawn)), drawn):
            ax_val.plot(prof.prob, prof.value, color=color, label=prof.name)
            ax_grad.plot(prof.prob, prof.grad, color=color, label=prof.name)
        ax_val.set_title("loss value", fontsize=10)
        ax_grad.set_title("d loss / d logit of a foreground pixel (x number of pixels)",
                          fontsize=10)
        for ax in (ax_val, ax_grad):
            ax.set_xlabel("predicted probability of the true class")
            ax.grid(alpha=0.3)
        ax_grad.axhline(0.0, color="black", linewidth=0.6)
        ax_val.legend(fontsize=7)
    else:
        cols = 5
        rows = math.ceil(len(drawn) / cols)
        fig = _figure(3.0 * cols, 2.3 * rows + 0.6)
        axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
        for ax, prof in zip(axes, drawn):
            ax.plot(prof.prob, prof.value, color="#1f77b4")
            twin = ax.twinx()
            twin.plot(prof.prob, prof.grad, color="#d62728", linestyle="--")
            twin.axhline(0.0, color="#d62728", linewidth=0.4)
            ax.set_title(prof.name, fontsize=9)
            ax.tick_params(labelsize=7)
            twin.tick_params(labelsize=7, colors="#d62728")
            ax.grid(alpha=0.3)
        for ax in axes[len(drawn):]:
            ax.set_visible(False)
    failed = [p for p in profiles if p.error]
    caption = (f"{size_text(foreground)} foreground pixels; every pixel predicted with "
               "probability p (x axis) for its true class")
    if len(drawn) > 10:
        caption += ("; blue: loss value, red dashed: d loss / d logit of a foreground pixel "
                    "(x number of pixels)")
    if failed:
        caption += "; not drawn: " + ", ".join(p.name for p in failed)
    fig.suptitle(caption, fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.97 if len(drawn) > 10 else 1))
    return _save(fig, path), profiles


def size_text(foreground: float) -> str:
    """``0.25`` -> ``"25%"``."""
    return f"{100 * foreground:g}%"
