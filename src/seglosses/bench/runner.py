"""Training and evaluation of one (loss, seed) run.

Free of files, plotting and printing: :func:`train_run` is a generator yielding
:class:`StepRecord` (after each optimisation step), :class:`EpochRecord` (after each epoch) and,
last, one :class:`RunResult`. The caller stores and displays them.

Protocol: a :class:`~seglosses.models.UNet2d` returning logits (B, 1, H, W), the loss called as
``loss(logits, mask)``; Adam with the learning rate decayed from ``lr`` to ``lr_min`` by a
cosine over all steps; mixed precision (``torch.autocast`` fp16 + ``GradScaler``) on CUDA only;
on CPU everything is seeded and deterministic. The weights with the best validation Dice are
kept (in memory) and evaluated on the test split: per subject volume (the subject's slices
stacked) when the data is volumetric, per image otherwise.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

from .._validation import check_choice
from .presets import BenchConfig


class RunFailed(RuntimeError):
    """A run that could not finish (non-finite loss, loss error); recorded as failed."""


@dataclass
class StepRecord:
    """One optimisation step done."""

    epoch: int
    step: int
    steps_per_epoch: int


@dataclass
class EpochRecord:
    """One epoch: mean training loss, validation Dice, learning rate at its start, seconds."""

    epoch: int
    train_loss: float
    val_dice: float
    lr: float
    seconds: float


@dataclass
class CaseRecord:
    """Test metrics of one case (a subject volume, or one image).

    ``hd95`` is in the data's spacing units (mm for MRI, pixels otherwise). For an image it is
    0 when both masks are empty and ``inf`` when exactly one is. For a volume it is the mean of
    the per-slice 2D HD95 over the slices where both masks hold foreground; ``hd95_excluded``
    counts the slices (or the image) where exactly one mask is empty (HD95 infinite); the
    volume's value is ``inf`` only when every slice with foreground is such a slice.
    """

    case_id: str
    n_slices: int
    dice: float
    sensitivity: float
    specificity: float
    hd95: float
    hd95_excluded: int = 0


@dataclass
class RunResult:
    """A finished run."""

    loss: str
    seed: int
    epochs: int
    best_epoch: int
    train_seconds: float
    eval_seconds: float
    started_at: str
    finished_at: str
    curves: list[EpochRecord] = field(default_factory=list)
    cases: list[CaseRecord] = field(default_factory=list)
    examples: np.ndarray | None = None  # bool (K, H, W): predictions on the example slices

    def means(self) -> dict[str, float]:
        """Mean over test cases; HD95 over the cases where it is finite (``inf`` if none)."""
        return case_means(self.cases)


def case_means(cases: Sequence[CaseRecord]) -> dict[str, float]:
    """Means of the case metrics; HD95 over finite cases, with the count of infinite ones."""
    if not cases:
        nan = float("nan")
        return {"dice": nan, "sensitivity": nan, "specificity": nan, "hd95": nan, "hd95_inf": 0}
    finite = [c.hd95 for c in cases if math.isfinite(c.hd95)]
    return {
        "dice": float(np.mean([c.dice for c in cases])),
        "sensitivity": float(np.mean([c.sensitivity for c in cases])),
        "specificity": float(np.mean([c.specificity for c in cases])),
        "hd95": float(np.mean(finite)) if finite else float("inf"),
        "hd95_inf": len(cases) - len(finite),
    }


def resolve_device(device: str) -> torch.device:
    """``"auto"`` picks CUDA when present; ``"cuda"`` without a GPU raises ``ValueError``."""
    check_choice(device, "device", ("auto", "cpu", "cuda"))
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was requested but no CUDA device is available")
    return torch.device(device)


def case_groups(subjects: Sequence[str], volumetric: bool) -> list[tuple[str, list[int]]]:
    """Test cases as (case id, slice indices): one per subject for volumes, else one per image."""
    if volumetric:
        groups: dict[str, list[int]] = {}
        for i, subject in enumerate(subjects):
            groups.setdefault(str(subject), []).append(i)
        return list(groups.items())
    seen: dict[str, int] = {}
    for s in subjects:
        seen[str(s)] = seen.get(str(s), 0) + 1
    return [(str(s) if seen[str(s)] == 1 else f"{s}:{i}", [i]) for i, s in enumerate(subjects)]


def count_steps(n_train: int, batch_size: int) -> int:
    """Optimisation steps per epoch (the last batch may be smaller)."""
    return math.ceil(n_train / max(1, min(batch_size, n_train))) if n_train else 0


def cosine_lr(step: int, total: int, lr: float, lr_min: float) -> float:
    """Cosine decay from ``lr`` at step 0 to ``lr_min`` at the last step."""
    if total <= 1:
        return lr
    t = min(max(step, 0), total - 1) / (total - 1)
    return lr_min + (lr - lr_min) * 0.5 * (1.0 + math.cos(math.pi * t))


@torch.no_grad()
def predict(model: torch.nn.Module, images: Tensor, device: torch.device, amp: bool,
            batch_size: int = 64) -> Tensor:
    """Hard masks (N, 1, H, W) bool on the CPU (logit > 0, i.e. probability > 0.5)."""
    model.eval()
    out = []
    for start in range(0, images.shape[0], batch_size):
        x = images[start:start + batch_size].to(device, non_blocking=True)
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp):
            logits = model(x)
        out.append((logits.float() > 0).cpu())
    return torch.cat(out) if out else torch.zeros(0, 1, *images.shape[-2:], dtype=torch.bool)


def evaluate_cases(pred: Tensor, target: Tensor, groups: list[tuple[str, list[int]]], *,
                   volumetric: bool, spacing: Sequence[float] | None = None,
                   with_hd95: bool = True) -> list[CaseRecord]:
    """Metrics per case from hard masks (N, 1, H, W)."""
    from .. import metrics

    target = target > 0.5
    records = []
    for case_id, idx in groups:
        p = pred[idx]
        t = target[idx]
        if volumetric:
            # (S, 1, H, W) -> (1, 1, S, H, W): counts pooled over the subject's slices.
            pv = p.permute(1, 0, 2, 3).unsqueeze(0)
            tv = t.permute(1, 0, 2, 3).unsqueeze(0)
        else:
            pv, tv = p, t
        dice = float(metrics.dice(pv, tv).mean())
        sens = float(metrics.sensitivity(pv, tv).mean())
        spec = float(metrics.specificity(pv, tv).mean())
        hd, excluded = (float("nan"), 0)
        if with_hd95:
            hd, excluded = _hd95_case(p, t, spacing, volumetric)
        records.append(CaseRecord(case_id, len(idx), dice, sens, spec, hd, excluded))
    return records


def _hd95_case(p: Tensor, t: Tensor, spacing: Sequence[float] | None,
               volumetric: bool) -> tuple[float, int]:
    from .. import metrics

    sp = tuple(float(s) for s in spacing) if spacing is not None else None
    values = metrics.hd95(p, t, spacing=sp).reshape(-1).double()
    if not volumetric:
        v = float(values[0])
        return v, int(math.isinf(v))
    fg = (p.flatten(1).any(1) | t.flatten(1).any(1))
    finite = torch.isfinite(values) & fg
    excluded = int((~torch.isfinite(values) & fg).sum())
    if finite.any():
        return float(values[finite].mean()), excluded
    return (float("inf") if excluded else 0.0), excluded


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def train_run(bundle: object, loss_spec: str, seed: int, config: BenchConfig, *,
              device: torch.device | None = None,
              example_indices: Sequence[int] = ()) -> Iterator[StepRecord | EpochRecord | RunResult]:
    """Train one model with one loss and seed; yield progress records, then the result.

    Args:
        bundle: a :class:`seglosses.data.DataBundle`.
        loss_spec: registry name or expression for ``seglosses.get_loss``.
        seed: model seed (initialisation, batch order).
        config: the sweep configuration (schedule, model, device).
        device: where to train (default: :func:`resolve_device` of ``config.device``).
        example_indices: test slices whose predicted masks go into the result.

    Raises:
        RunFailed: the loss could not be built or evaluated, or became non-finite.
    """
    import seglosses

    from ..models import UNet2d

    device = device or resolve_device(config.device)
    amp = bool(config.amp and device.type == "cuda")
    started_at = _now()
    try:
        loss_fn = seglosses.get_loss(loss_spec).to(device)
    except (ValueError, TypeError) as err:
        raise RunFailed(f"cannot build loss {loss_spec!r}: {err}") from err

    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    generator = torch.Generator().manual_seed(seed)
    model = UNet2d(1, 1, depth=config.depth, width=config.width, norm=config.norm).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr,
                                 weight_decay=config.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)

    train, val, test = bundle.train, bundle.val, bundle.test  # type: ignore[attr-defined]
    volumetric = bool(getattr(bundle, "volumetric", False))
    spacing = getattr(bundle, "spacing", None)
    x_train = train.images.to(device)
    y_train = train.masks.to(device)
    n_train = x_train.shape[0]
    if n_train == 0:
        raise RunFailed("the training split is empty")
    batch = min(config.batch_size, n_train)
    steps_per_epoch = count_steps(n_train, config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    val_groups = case_groups(val.subjects, volumetric)

    previous_validation = seglosses.get_validation()
    seglosses.set_validation(False)
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        curves: list[EpochRecord] = []
        best_dice, best_epoch, best_state = -1.0, 0, None
        step = 0
        train_seconds = 0.0
        for epoch in range(1, config.epochs + 1):
            t_epoch = time.perf_counter()
            model.train()
            order = torch.randperm(n_train, generator=generator).to(device)
            epoch_lr = cosine_lr(step, total_steps, config.lr, config.lr_min)
            running = torch.zeros((), device=device, dtype=torch.float64)
            for b in range(steps_per_epoch):
                for group in optimizer.param_groups:
                    group["lr"] = cosine_lr(step, total_steps, config.lr, config.lr_min)
                idx = order[b * batch:(b + 1) * batch]
                x, y = x_train[idx], y_train[idx]
                with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp):
                    logits = model(x)
                try:
                    loss = loss_fn(logits.float(), y)
                except (ValueError, TypeError, RuntimeError) as err:
                    raise RunFailed(f"loss {loss_spec!r} failed: {err}") from err
                if loss.dim() != 0:
                    loss = loss.mean()
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                running += loss.detach()
                step += 1
                yield StepRecord(epoch, b + 1, steps_per_epoch)
            train_loss = float(running) / steps_per_epoch
            if not math.isfinite(train_loss):
                raise RunFailed(f"the training loss became non-finite in epoch {epoch}")
            val_pred = predict(model, val.images, device, amp)
            val_cases = evaluate_cases(val_pred, val.masks, val_groups, volumetric=volumetric,
                                       with_hd95=False)
            val_dice = float(np.mean([c.dice for c in val_cases])) if val_cases else 0.0
            if val_dice > best_dice:
                best_dice, best_epoch = val_dice, epoch
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            seconds = time.perf_counter() - t_epoch
            train_seconds += seconds
            record = EpochRecord(epoch, train_loss, val_dice, epoch_lr, seconds)
            curves.append(record)
            yield record

        t_eval = time.perf_counter()
        if best_state is not None:
            model.load_state_dict(best_state)
        test_pred = predict(model, test.images, device, amp)
        cases = evaluate_cases(test_pred, test.masks, case_groups(test.subjects, volumetric),
                               volumetric=volumetric, spacing=spacing)
        examples = None
        if len(example_indices):
            examples = test_pred[list(example_indices), 0].numpy().astype(bool)
        eval_seconds = time.perf_counter() - t_eval
    finally:
        seglosses.set_validation(previous_validation)
        if device.type == "cpu":
            torch.use_deterministic_algorithms(previous_deterministic)
    yield RunResult(
        loss=loss_spec, seed=seed, epochs=config.epochs, best_epoch=best_epoch,
        train_seconds=train_seconds, eval_seconds=eval_seconds, started_at=started_at,
        finished_at=_now(), curves=curves, cases=cases, examples=examples,
    )


def choose_examples(masks: Tensor, subjects: Sequence[str], count: int) -> list[int]:
    """Fixed test slices for the overlays: the largest-foreground slice of distinct cases.

    Deterministic: cases in order of appearance, spread evenly when there are more cases than
    ``count``; a case's slice is the one with the most foreground (ties: the first).
    """
    if count <= 0 or masks.shape[0] == 0:
        return []
    area = (masks > 0.5).flatten(1).sum(1)
    by_case: dict[str, list[int]] = {}
    for i, s in enumerate(subjects):
        by_case.setdefault(str(s), []).append(i)
    cases = list(by_case.values())
    if len(cases) >= count:
        picks = [cases[round(k * (len(cases) - 1) / max(count - 1, 1))] for k in range(count)]
        chosen = [max(c, key=lambda i: (int(area[i]), -i)) for c in picks]
    else:
        ranked = sorted(range(masks.shape[0]), key=lambda i: (-int(area[i]), i))
        chosen = ranked[:count]
    out: list[int] = []
    for i in chosen:
        if i not in out:
            out.append(i)
    return sorted(out)
