"""Asymmetric Unified Focal loss."""

from __future__ import annotations

import torch
from torch import Tensor

from ..._registry import LossInfo, register_loss
from ..._types import ClassWeights, Mode, Reduction
from ..._validation import check_number
from .._base import SegLoss
from .._pixel import binary_focal_mean
from .._prepare import Prepared, prepare
from .._stats import channel_mean, class_weight_map, pixel_mean, reduce, soft_stats
from ..region.focal_tversky import focal_power


def asymmetric_focal_map(prep: Prepared, *, delta: float, gamma: float) -> Tensor:
    """Per-voxel asymmetric focal loss: (B, C, *S) binary/multilabel, (B, 1, *S) multiclass.

    Background (class 0, or ``1 - p`` of each sigmoid channel) is focally suppressed with
    ``(1 - p_bg)^gamma`` and weighed by ``1 - delta``; the rare classes keep plain
    cross-entropy weighed by ``delta``. Powers are taken in log space.
    """
    t = prep.target
    if prep.mode == "multiclass":
        log_p = prep.log_prob
        suppress = torch.exp(gamma * prep.log_one_minus_prob[:, :1])
        terms = torch.cat([(1.0 - delta) * suppress * log_p[:, :1], delta * log_p[:, 1:]], dim=1)
        terms = t * terms
        cw = class_weight_map(prep)
        if cw is not None:
            terms = terms * cw
        return -terms.sum(dim=1, keepdim=True)
    # background of a sigmoid channel: p_bg = 1 - p, so (1 - p_bg)^gamma = p^gamma
    suppress = torch.exp(gamma * prep.log_prob)
    return -((1.0 - delta) * (1.0 - t) * suppress * prep.log_one_minus_prob
             + delta * t * prep.log_prob)


def asymmetric_focal_mean_stage(prep: Prepared, *, delta: float, gamma: float) -> Tensor:
    """Per-sample mean of :func:`asymmetric_focal_map` over valid voxels and channels, (B,);
    binary and multilabel from logits in one fused node (:mod:`.._pixel`)."""
    if prep.mode == "multiclass":
        return pixel_mean(asymmetric_focal_map(prep, delta=delta, gamma=gamma), prep)
    return binary_focal_mean(prep, pos=delta, neg=1.0 - delta, gamma_neg=gamma,
                             fallback=lambda: asymmetric_focal_map(prep, delta=delta,
                                                                   gamma=gamma))


def asymmetric_focal_tversky_stage(prep: Prepared, *, delta: float, gamma: float,
                                   smooth: float) -> Tensor:
    """Per (B, C) asymmetric focal Tversky term (averaged over {bg, fg} for sigmoid channels).

    ``mTI = (TP + s) / (TP + delta FN + (1 - delta) FP + s)``; background contributes
    ``1 - mTI``, rare classes ``(1 - mTI)^(1 - gamma)``.
    """
    tp, fp, fn, tn = soft_stats(prep)

    def index(tp_: Tensor, fp_: Tensor, fn_: Tensor) -> Tensor:
        return (tp_ + smooth) / (tp_ + delta * fn_ + (1.0 - delta) * fp_ + smooth)

    enhanced = focal_power(1.0 - index(tp, fp, fn), 1.0 - gamma)
    if prep.mode == "multiclass":
        plain = 1.0 - index(tp[:, :1], fp[:, :1], fn[:, :1])
        return torch.cat([plain, enhanced[:, 1:]], dim=1)
    # background of a sigmoid channel: its TP is TN, its FP is FN and its FN is FP
    plain = 1.0 - index(tn, fn, fp)
    return 0.5 * (plain + enhanced)


def unified_focal_loss(logits: Tensor, target: Tensor, mask: Tensor | None = None, *,
                       mode: Mode = "auto", from_logits: bool = True,
                       reduction: Reduction = "mean", include_background: bool = True,
                       ignore_index: int | None = None, class_weights: ClassWeights = None,
                       weight: float = 0.5, delta: float = 0.6, gamma: float = 0.5,
                       smooth: float = 1e-7) -> Tensor:
    r"""Asymmetric Unified Focal loss: asymmetric focal plus asymmetric focal Tversky.

    .. math::
        L_{aF} = \operatorname{mean}_i\Big[-(1-\delta)\, t_{i,0} (1 - p_{i,0})^{\gamma}
                 \log p_{i,0} - \delta \textstyle\sum_{r \ne 0} t_{i,r} \log p_{i,r}\Big]

        mTI_c = \frac{TP_c + s}{TP_c + \delta\, FN_c + (1-\delta)\, FP_c + s}, \qquad
        L_{aFT} = \operatorname{mean}_c \begin{cases} 1 - mTI_0 & \text{background} \\
                  (1 - mTI_r)^{1-\gamma} & \text{rare classes } r \ne 0 \end{cases}

        L = \lambda\, L_{aF} + (1 - \lambda)\, L_{aFT}

    Compound loss of Yeung et al. 2022, asymmetric variant. Background is suppressed (focal
    factor on its cross-entropy, no exponent on its Tversky term) and the rare classes are
    enhanced (plain cross-entropy, Tversky term raised to ``1 - gamma``); ``delta > 0.5``
    weighs false negatives and the rare classes' cross-entropy more. Binary mode uses the two
    classes {background, foreground} (``p_bg = 1 - p``); multilabel mode treats every channel
    as such a binary problem; multiclass mode takes class 0 as background and every other
    class as rare.
    ``include_background=False`` drops the background's Tversky term in multiclass mode;
    ``class_weights`` weigh the classes in both terms. ``L_aF`` is a mean over valid voxels
    (and channels in multilabel mode).

    Args:
        logits: (B, C, *S) logits (probabilities with ``from_logits=False``).
        target: see :func:`seglosses.losses._prepare.prepare`.
        mask: optional bool (B, 1, *S) or (B, *S); False voxels count nowhere.
        mode, from_logits, reduction, include_background, ignore_index, class_weights: the
            shared parameters (``docs/api.md``).
        weight: lambda, the weight of the asymmetric focal term, in [0, 1].
        delta: weight of false negatives and of the rare classes, in [0, 1].
        gamma: focal parameter in [0, 1): background suppression and rare-class enhancement.
        smooth: s, added to numerator and denominator of the Tversky index (the authors'
            code adds 1e-7).

    Shape:
        Output: scalar for ``"mean"``/``"sum"``, (B,) for ``"none"``.

    Raises:
        ValueError: a parameter outside its range; bad input (see ``prepare``).

    Example:
        >>> import torch
        >>> logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]])
        >>> target = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
        >>> unified_focal_loss(logits, target)
        tensor(0.2179)

    References:
        Yeung, Sala, Schönlieb, Rundo, "Unified Focal loss: generalising Dice and cross
        entropy-based losses to handle class imbalanced medical image segmentation",
        Computerized Medical Imaging and Graphics 95, 2022, arXiv:2102.04525.
    """
    check_number(weight, "weight", low=0.0, high=1.0)
    check_number(delta, "delta", low=0.0, high=1.0)
    check_number(gamma, "gamma", low=0.0, high=1.0, high_open=True)
    check_number(smooth, "smooth", low=0.0)
    prep = prepare(logits, target, mask, mode=mode, from_logits=from_logits,
                   include_background=include_background, ignore_index=ignore_index,
                   class_weights=class_weights)
    focal = asymmetric_focal_mean_stage(prep, delta=delta, gamma=gamma)
    tversky = channel_mean(
        asymmetric_focal_tversky_stage(prep, delta=delta, gamma=gamma, smooth=smooth), prep)
    return reduce(weight * focal + (1.0 - weight) * tversky, reduction)


@register_loss(LossInfo(
    name="unified_focal", family="compound", source="Yeung et al. 2022", arxiv="2102.04525",
    summary="Asymmetric Unified Focal: weight * asymmetric focal + (1 - weight) * asymmetric "
            "focal Tversky.",
    params={"weight": "lambda: weight of the asymmetric focal term",
            "delta": "weight of false negatives and of the rare classes",
            "gamma": "background suppression / rare-class enhancement, in [0, 1)",
            "smooth": "added to numerator and denominator of the Tversky index"},
    value_range=(0.0, float("inf")),
    notes="weight multiplies the focal term (SPEC, MONAI); the authors' code swaps the two.",
))
class UnifiedFocalLoss(SegLoss):
    """Module form of :func:`unified_focal_loss`."""

    function = staticmethod(unified_focal_loss)

    def __init__(self, *, weight: float = 0.5, delta: float = 0.6, gamma: float = 0.5,
                 smooth: float = 1e-7, **shared: object) -> None:
        params = dict(weight=weight, delta=delta, gamma=gamma, smooth=smooth)
        super().__init__(**params, **shared)  # type: ignore[arg-type]
