"""The survey's published results for its nine experiment losses.

Source: S. Jadon, "A survey of loss functions for semantic segmentation", IEEE CIBCB 2020,
arXiv:2006.14822 (v4), the results table of its experiment (2D U-Net skull stripping on the
NFBS data set): Dice coefficient, sensitivity and specificity per loss.

Only values read from that table are recorded; every other cell is ``None`` and is shown as
"n/a" in reports. The survey's text and its table disagree for log-cosh Dice (text: 0.975,
table: 0.989); both are recorded in :data:`PUBLISHED_NOTES`.
"""

from __future__ import annotations

SOURCE = ('S. Jadon, "A survey of loss functions for semantic segmentation", IEEE CIBCB 2020, '
          "arXiv:2006.14822, results table (NFBS skull stripping, 2D U-Net)")

# loss -> (dice, sensitivity, specificity); None where the value could not be verified.
PUBLISHED: dict[str, tuple[float | None, float | None, float | None]] = {
    "bce": (None, None, None),
    "weighted_bce": (None, None, None),
    "focal": (None, None, None),
    "dice": (None, None, None),
    "tversky": (None, None, None),
    "focal_tversky": (0.977, 0.990, 0.997),
    "sensitivity_specificity": (None, None, None),
    "exp_log": (None, None, None),
    "log_cosh_dice": (0.989, None, None),
}

PUBLISHED_NOTES: tuple[str, ...] = (
    "The survey's text names focal Tversky the best loss with a Dice of 0.98 and gives "
    "log-cosh Dice 0.975, while the transcription of its table prints 0.977 for focal Tversky "
    "and 0.989 for log-cosh Dice, which would rank log-cosh Dice first: the two disagree.",
    "Cells marked n/a could not be read from a verifiable copy of the table when this package "
    "was written; they are left empty rather than guessed.",
    "The survey reports a single number per loss (no seeds, no spread, no per-case values), "
    "trained on the real NFBS volumes; only a run of the `paper` preset on NFBS "
    "(`--format nfbs --data PATH`) is comparable, and even then the implementations differ "
    "(see each loss's documentation page).",
)


def published(loss: str) -> tuple[float | None, float | None, float | None] | None:
    """The survey's (Dice, sensitivity, specificity) for one of its nine losses, else ``None``."""
    return PUBLISHED.get(loss)
