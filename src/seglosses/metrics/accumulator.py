"""Per-case metric rows for an evaluation: :class:`MetricAccumulator`."""

from __future__ import annotations

import math
import statistics
from typing import Any, Callable, Hashable, Iterable, Sequence

import torch
from torch import Tensor

from .._validation import check_choice, check_tensor, shape_str
from ..ops.edt import Spacing
from .overlap import accuracy, dice, iou, precision, sensitivity, specificity
from .surface import assd, hausdorff, hd95, surface_dice

__all__ = ["MetricAccumulator"]

_OVERLAP: dict[str, Callable[..., Tensor]] = {
    "dice": dice, "iou": iou, "sensitivity": sensitivity, "specificity": specificity,
    "precision": precision, "accuracy": accuracy,
}
_DISTANCE: dict[str, Callable[..., Tensor]] = {"hd95": hd95, "hausdorff": hausdorff, "assd": assd}
METRIC_NAMES: tuple[str, ...] = tuple(_OVERLAP) + tuple(_DISTANCE) + ("surface_dice",)


class MetricAccumulator:
    """Collect one row of metrics per (case, channel) and summarise them.

    A *case* is what a score is reported for: a 2-D image, or a subject whose volume is
    assembled from its slices. Rows hold the case id, the channel (its index, or its name
    from ``channel_names``) and one float per metric.

    Args:
        metrics: names among ``dice, iou, sensitivity, specificity, precision, accuracy,
            hd95, hausdorff, assd, surface_dice``.
        spacing: voxel size passed to the distance metrics (per spatial dim of a case).
        empty_value: value of the overlap metrics and of surface Dice for 0/0.
        tolerance: surface Dice tolerance (needed only when ``surface_dice`` is requested).
        channel_names: optional names of the C channels for the ``channel`` column.

    Three ways to add data:

    - :meth:`add` one case given whole, (C, *S);
    - :meth:`add_batch` a batch (B, C, *S) in which every item is its own case;
    - :meth:`add_slices` a batch of 2-D slices (B, C, H, W) with the case of each slice: the
      slices of a case are stacked along a new first spatial axis in the order they arrive
      and scored as one volume when the rows are read (:meth:`flush`).

    Example:
        >>> from seglosses.metrics import MetricAccumulator
        >>> acc = MetricAccumulator(["dice", "hd95"])
        >>> target = torch.zeros(2, 1, 8, 8, dtype=torch.bool)
        >>> target[:, :, 2:6, 2:6] = True
        >>> pred = target.clone()
        >>> pred[1, :, 2:6, 6] = True
        >>> acc.add_batch(pred, target, ["a", "b"])
        >>> [(row["case"], round(row["dice"], 4), row["hd95"]) for row in acc.rows]
        [('a', 1.0, 0.0), ('b', 0.8889, 1.0)]
        >>> round(acc.summary()["dice"]["mean"], 4)
        0.9444
    """

    def __init__(self, metrics: Sequence[str] = ("dice", "sensitivity", "specificity", "hd95"),
                 *, spacing: Spacing = None, empty_value: float = 1.0,
                 tolerance: float | None = None,
                 channel_names: Sequence[str] | None = None) -> None:
        if isinstance(metrics, str):
            metrics = [metrics]
        names = list(metrics)
        if not names:
            raise ValueError("`metrics` must name at least one metric; got an empty list")
        for name in names:
            check_choice(name, "metrics", METRIC_NAMES)
        if "surface_dice" in names and tolerance is None:
            raise ValueError("`tolerance` must be given when `metrics` include 'surface_dice'")
        self.metrics = names
        self.spacing = spacing
        self.empty_value = empty_value
        self.tolerance = tolerance
        self.channel_names = list(channel_names) if channel_names is not None else None
        self._rows: list[dict[str, Any]] = []
        self._pending: dict[Hashable, list[tuple[Tensor, Tensor]]] = {}

    # -- adding data ------------------------------------------------------------------

    def add(self, pred: Tensor, target: Tensor, case_id: Hashable) -> None:
        """Score one whole case: ``pred`` and ``target`` of shape (C, *S)."""
        check_tensor(pred, "pred")
        check_tensor(target, "target")
        self._score(pred.unsqueeze(0), target.unsqueeze(0), [case_id])

    def add_batch(self, pred: Tensor, target: Tensor, case_ids: Iterable[Hashable]) -> None:
        """Score a batch (B, C, *S) in which item b is the case ``case_ids[b]``."""
        self._score(pred, target, self._ids(pred, case_ids))

    def add_slices(self, pred: Tensor, target: Tensor, case_ids: Iterable[Hashable]) -> None:
        """Buffer 2-D slices (B, C, H, W) of the cases ``case_ids`` for scoring as volumes."""
        ids = self._ids(pred, case_ids)
        check_tensor(target, "target")
        if pred.dim() != 4 or target.shape != pred.shape:
            raise ValueError(
                f"`pred` and `target` must be slices of shape (B, C, H, W); got "
                f"{shape_str(pred.shape)} and {shape_str(target.shape)}"
            )
        for b, case in enumerate(ids):
            self._pending.setdefault(case, []).append((pred[b].detach(), target[b].detach()))

    def flush(self) -> None:
        """Score the buffered slice volumes (called by :attr:`rows` and :meth:`summary`)."""
        pending, self._pending = self._pending, {}
        for case, slices in pending.items():
            pred = torch.stack([p for p, _ in slices], dim=1)      # (C, D, H, W)
            target = torch.stack([t for _, t in slices], dim=1)
            self._score(pred.unsqueeze(0), target.unsqueeze(0), [case])

    def _ids(self, pred: Tensor, case_ids: Iterable[Hashable]) -> list[Hashable]:
        check_tensor(pred, "pred")
        ids = [case_ids] if isinstance(case_ids, str) else list(case_ids)
        if pred.dim() < 1 or len(ids) != pred.shape[0]:
            raise ValueError(
                f"`case_ids` must hold one id per item of `pred` ({pred.shape[0] if pred.dim() else 0}); "
                f"got {len(ids)}"
            )
        return ids

    def _score(self, pred: Tensor, target: Tensor, ids: list[Hashable]) -> None:
        values: dict[str, list[list[float]]] = {}
        for name in self.metrics:
            if name in _OVERLAP:
                out = _OVERLAP[name](pred, target, empty_value=self.empty_value)
            elif name == "surface_dice":
                out = surface_dice(pred, target, float(self.tolerance),  # type: ignore[arg-type]
                                   self.spacing, empty_value=self.empty_value)
            else:
                out = _DISTANCE[name](pred, target, spacing=self.spacing)
            values[name] = out.detach().double().cpu().tolist()
        channels = pred.shape[1]
        if self.channel_names is not None and len(self.channel_names) != channels:
            raise ValueError(
                f"`channel_names` holds {len(self.channel_names)} names; the data has "
                f"{channels} channels"
            )
        for b, case in enumerate(ids):
            for c in range(channels):
                row: dict[str, Any] = {
                    "case": case,
                    "channel": self.channel_names[c] if self.channel_names else c,
                }
                for name in self.metrics:
                    row[name] = values[name][b][c]
                self._rows.append(row)

    # -- reading ----------------------------------------------------------------------

    @property
    def rows(self) -> list[dict[str, Any]]:
        """All rows so far (after scoring buffered slices), in the order cases arrived."""
        self.flush()
        return list(self._rows)

    def __len__(self) -> int:
        return len(self.rows)

    def summary(self) -> dict[str, dict[str, float]]:
        """Per metric: ``mean`` and ``std`` (sample, ddof = 1) over the finite values,
        ``count`` of rows and ``nonfinite`` (rows with ``inf``/``nan``, e.g. HD95 of an
        empty prediction), which the mean and std leave out."""
        rows = self.rows
        out: dict[str, dict[str, float]] = {}
        for name in self.metrics:
            vals = [float(r[name]) for r in rows]
            finite = [v for v in vals if math.isfinite(v)]
            out[name] = {
                "mean": statistics.fmean(finite) if finite else math.nan,
                "std": statistics.stdev(finite) if len(finite) > 1 else 0.0,
                "count": float(len(vals)),
                "nonfinite": float(len(vals) - len(finite)),
            }
        return out

    def reset(self) -> None:
        """Forget every row and buffered slice."""
        self._rows = []
        self._pending = {}

    def all_gather(self, group: Any = None) -> "MetricAccumulator":
        """Merge the rows of every process of ``torch.distributed`` into each process.

        Each process scores its own cases (all slices of a case must go to one process);
        afterwards every process holds all rows, in rank order. A no-op when
        ``torch.distributed`` is not initialised. Returns ``self``.
        """
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return self
        self.flush()
        gathered: list[list[dict[str, Any]] | None] = [None] * dist.get_world_size(group)
        dist.all_gather_object(gathered, self._rows, group=group)
        self._rows = [row for part in gathered for row in (part or [])]
        return self
