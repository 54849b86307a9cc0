"""Sensitivity-specificity loss."""

from __future__ import annotations

from torch import Tensor

from ..._registry import LossInfo, register_loss
from ..._types import ClassWeights, Mode, Reduction
from ..._validation import check_number
from .._base import SegLoss
from .._prepare import prepare
from .._stats import channel_mean, reduce, weighted_sum


def sensitivity_specificity_loss(logits: Tensor, target: Tensor, mask: Tensor | None = None, *,
                                 mode: Mode = "auto", from_logits: bool = True,
                                 reduction: Reduction = "mean", include_background: bool = True,
                                 ignore_index: int | None = None,
                                 class_weights: ClassWeights = None, w: float = 0.05,
                                 smooth: float = 1e-5) -> Tensor:
    r"""Sensitivity-specificity loss: squared errors on foreground and background, balanced.

    .. math::
        L = w \frac{\sum (t - p)^2\, t}{\sum t + s}
            + (1 - w) \frac{\sum (t - p)^2 (1 - t)}{\sum (1 - t) + s}

    Region-based loss of Brosch et al. 2015, per (sample, channel), then averaged over the
    channels. The first term is a soft miss rate (1 - sensitivity), the second a soft false
    alarm rate (1 - specificity); ``w`` (Brosch's ``r``) weighs sensitivity. The survey
    (eq. 9) prints the score to maximise; this is the primary source's loss. Sums run over the
    valid voxels; ``L`` lies in [0, 1].

    Args:
        logits: (B, C, *S) logits (probabilities with ``from_logits=False``).
        target: see :func:`seglosses.losses._prepare.prepare`.
        mask: optional bool (B, 1, *S) or (B, *S); False voxels count nowhere.
        mode, from_logits, reduction, include_background, ignore_index, class_weights: the
            shared parameters (``docs/api.md``).
        w: weight of the sensitivity term, in [0, 1]; ``1 - w`` weighs specificity.
        smooth: s, added to both denominators (> 0 keeps empty or full targets finite).

    Shape:
        Output: scalar for ``"mean"``/``"sum"``, (B,) for ``"none"``.

    Raises:
        ValueError: ``w`` outside [0, 1], negative ``smooth``; bad input (see ``prepare``).

    Example:
        >>> import torch
        >>> logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]])
        >>> target = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
        >>> sensitivity_specificity_loss(logits, target)
        tensor(0.0393)

    References:
        Brosch, Yoo, Tang, Li, Traboulsee, Tam, "Deep convolutional encoder networks for
        multiple sclerosis lesion segmentation", MICCAI 2015.
    """
    check_number(w, "w", low=0.0, high=1.0)
    check_number(smooth, "smooth", low=0.0)
    prep = prepare(logits, target, mask, mode=mode, from_logits=from_logits,
                   include_background=include_background, ignore_index=ignore_index,
                   class_weights=class_weights)
    t = prep.target
    sq = (t - prep.prob) ** 2
    background = 1.0 - t
    sens = weighted_sum(sq * t, prep) / (weighted_sum(t, prep) + smooth)
    spec = weighted_sum(sq * background, prep) / (weighted_sum(background, prep) + smooth)
    return reduce(channel_mean(w * sens + (1.0 - w) * spec, prep), reduction)


@register_loss(LossInfo(
    name="sensitivity_specificity", family="region", source="Brosch et al. 2015",
    summary="w * soft miss rate + (1 - w) * soft false-alarm rate, squared errors.",
    params={"w": "weight of the sensitivity term (Brosch's r)",
            "smooth": "added to both denominators"},
    value_range=(0.0, 1.0), in_paper=True,
    notes="The survey prints a score to maximise; we follow the primary source's loss.",
))
class SensitivitySpecificityLoss(SegLoss):
    """Module form of :func:`sensitivity_specificity_loss`."""

    function = staticmethod(sensitivity_specificity_loss)

    def __init__(self, *, w: float = 0.05, smooth: float = 1e-5, **shared: object) -> None:
        super().__init__(w=w, smooth=smooth, **shared)  # type: ignore[arg-type]
