"""Helpers shared by the benchmark tests: hand-made run results."""

from __future__ import annotations

import numpy as np

from seglosses.bench.runner import CaseRecord, EpochRecord, RunResult


def make_result(loss: str, seed: int, dice: list[float], *, hd95: list[float] | None = None,
                epochs: int = 2, examples: int = 2) -> RunResult:
    """A finished run with the given per-case Dice (other metrics derived from it)."""
    hd95 = hd95 if hd95 is not None else [1.0 + i for i in range(len(dice))]
    cases = [CaseRecord(f"case{i}", 3, d, min(1.0, d + 0.01), 0.99, h, int(np.isinf(h)))
             for i, (d, h) in enumerate(zip(dice, hd95))]
    curves = [EpochRecord(e, 1.0 / e, 0.5 + 0.1 * e, 1e-3 / e, 0.25) for e in range(1, epochs + 1)]
    masks = np.zeros((examples, 6, 5), dtype=bool)
    masks[:, 1:4, 2:4] = True
    return RunResult(loss=loss, seed=seed, epochs=epochs, best_epoch=epochs,
                     train_seconds=1.5, eval_seconds=0.25, started_at="2026-01-01T00:00:00+00:00",
                     finished_at="2026-01-01T00:00:02+00:00", curves=curves, cases=cases,
                     examples=masks)
