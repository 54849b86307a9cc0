"""The three-level hybrid losses of UNet 3+ (focal + SSIM + IoU) and BASNet (BCE + SSIM + IoU)."""

from __future__ import annotations

from torch import Tensor

from ..._registry import LossInfo, register_loss
from ..._types import ClassWeights, Mode, Reduction
from ..._validation import check_number
from .._base import SegLoss
from .._filters import check_window
from .._prepare import Prepared, prepare
from .._stats import channel_mean, reduce, weighted_terms
from ..distribution.bce import cross_entropy_mean_stage
from ..distribution.focal import check_focal_params, focal_mean_stage
from ..region.jaccard import jaccard_index_stage
from .dice_ce import check_lambdas
from .ssim import ssim_per_sample_stage


def _jaccard_per_sample(prep: Prepared, *, smooth: float) -> Tensor:
    """The soft Jaccard loss per sample, (B,): ``1 - J`` averaged over the channels used."""
    return channel_mean(1.0 - jaccard_index_stage(prep, smooth=smooth), prep)


def unet3p_hybrid_loss(logits: Tensor, target: Tensor, mask: Tensor | None = None, *,
                       mode: Mode = "auto", from_logits: bool = True,
                       reduction: Reduction = "mean", include_background: bool = True,
                       ignore_index: int | None = None, class_weights: ClassWeights = None,
                       alpha: float | None = 0.25, gamma: float = 2.0, window: int = 11,
                       sigma: float = 1.5, smooth: float = 1.0, lambda_focal: float = 1.0,
                       lambda_ssim: float = 1.0, lambda_jaccard: float = 1.0) -> Tensor:
    r"""UNet 3+ hybrid loss: focal (pixel) + SSIM (patch) + Jaccard (map level).

    .. math::
        L = \lambda_{focal} L_{focal} + \lambda_{ssim} L_{ssim} + \lambda_{jaccard} L_{jaccard}

    Compound loss (Huang et al. 2020). The three terms are
    :func:`~seglosses.losses.distribution.focal.focal_loss` (``alpha``, ``gamma``),
    :func:`~seglosses.losses.compound.ssim.ssim_loss` (``window``, ``sigma``) and
    :func:`~seglosses.losses.region.jaccard.jaccard_loss` (``smooth``), each with the shared
    parameters given here and computed from one prepared input, so the value equals their
    weighted sum called separately. The paper's structural term is multi-scale SSIM; this is
    the single-scale SSIM of the survey.

    Args:
        alpha: focal positive-class weight in [0, 1], or ``None`` for no weighting.
        gamma: focal exponent (>= 0).
        window: odd width of the SSIM Gaussian window (voxels).
        sigma: standard deviation of the SSIM Gaussian window (voxels, > 0).
        smooth: s of the Jaccard loss, added to numerator and denominator (>= 0).
        lambda_focal: weight of the focal loss (>= 0).
        lambda_ssim: weight of the SSIM loss (>= 0).
        lambda_jaccard: weight of the Jaccard loss (>= 0).

    Shape:
        Output: scalar for ``"mean"``/``"sum"``, (B,) for ``"none"``.

    Example:
        >>> import torch
        >>> logits = torch.tensor([[[[2.0, -1.0, 0.5], [0.5, -3.0, 1.0]]]])
        >>> target = torch.tensor([[[[1.0, 0.0, 1.0], [1.0, 0.0, 0.0]]]])
        >>> unet3p_hybrid_loss(logits, target)
        tensor(0.9117)

    References:
        H. Huang et al., "UNet 3+: a full-scale connected UNet for medical image segmentation",
        ICASSP 2020, arXiv:2004.08790.
    """
    check_lambdas(lambda_focal=lambda_focal, lambda_ssim=lambda_ssim,
                  lambda_jaccard=lambda_jaccard)
    check_focal_params(alpha, gamma)
    check_window(window)
    check_number(sigma, "sigma", low=0.0, low_open=True)
    check_number(smooth, "smooth", low=0.0)
    prep = prepare(logits, target, mask, mode=mode, from_logits=from_logits,
                   include_background=include_background, ignore_index=ignore_index,
                   class_weights=class_weights)
    focal = focal_mean_stage(prep, alpha=alpha, gamma=gamma)
    ssim = ssim_per_sample_stage(prep, window=window, sigma=sigma)
    jaccard = _jaccard_per_sample(prep, smooth=smooth)
    return reduce(weighted_terms((lambda_focal, focal), (lambda_ssim, ssim),
                                 (lambda_jaccard, jaccard)), reduction)


def basnet_hybrid_loss(logits: Tensor, target: Tensor, mask: Tensor | None = None, *,
                       mode: Mode = "auto", from_logits: bool = True,
                       reduction: Reduction = "mean", include_background: bool = True,
                       ignore_index: int | None = None, class_weights: ClassWeights = None,
                       window: int = 11, sigma: float = 1.5, smooth: float = 1.0,
                       lambda_bce: float = 1.0, lambda_ssim: float = 1.0,
                       lambda_jaccard: float = 1.0) -> Tensor:
    r"""BASNet hybrid loss: cross-entropy (pixel) + SSIM (patch) + Jaccard (map level).

    .. math::
        L = \lambda_{bce} L_{bce} + \lambda_{ssim} L_{ssim} + \lambda_{jaccard} L_{jaccard}

    Compound loss (Qin et al. 2019). The three terms are
    :func:`~seglosses.losses.distribution.bce.bce_loss` (categorical cross-entropy in
    multiclass mode), :func:`~seglosses.losses.compound.ssim.ssim_loss` (``window``,
    ``sigma``) and :func:`~seglosses.losses.region.jaccard.jaccard_loss` (``smooth``), each
    with the shared parameters given here and computed from one prepared input, so the value
    equals their weighted sum called separately.

    Args:
        window: odd width of the SSIM Gaussian window (voxels).
        sigma: standard deviation of the SSIM Gaussian window (voxels, > 0).
        smooth: s of the Jaccard loss, added to numerator and denominator (>= 0).
        lambda_bce: weight of the cross-entropy (>= 0).
        lambda_ssim: weight of the SSIM loss (>= 0).
        lambda_jaccard: weight of the Jaccard loss (>= 0).

    Shape:
        Output: scalar for ``"mean"``/``"sum"``, (B,) for ``"none"``.

    Example:
        >>> import torch
        >>> logits = torch.tensor([[[[2.0, -1.0, 0.5], [0.5, -3.0, 1.0]]]])
        >>> target = torch.tensor([[[[1.0, 0.0, 1.0], [1.0, 0.0, 0.0]]]])
        >>> basnet_hybrid_loss(logits, target)
        tensor(1.2738)

    References:
        X. Qin, Z. Zhang, C. Huang, C. Gao, M. Dehghan, M. Jagersand, "BASNet: boundary-aware
        salient object detection", CVPR 2019.
    """
    check_lambdas(lambda_bce=lambda_bce, lambda_ssim=lambda_ssim,
                  lambda_jaccard=lambda_jaccard)
    check_window(window)
    check_number(sigma, "sigma", low=0.0, low_open=True)
    check_number(smooth, "smooth", low=0.0)
    prep = prepare(logits, target, mask, mode=mode, from_logits=from_logits,
                   include_background=include_background, ignore_index=ignore_index,
                   class_weights=class_weights)
    bce = cross_entropy_mean_stage(prep)
    ssim = ssim_per_sample_stage(prep, window=window, sigma=sigma)
    jaccard = _jaccard_per_sample(prep, smooth=smooth)
    return reduce(weighted_terms((lambda_bce, bce), (lambda_ssim, ssim),
                                 (lambda_jaccard, jaccard)), reduction)


_SSIM_JACCARD_PARAMS = {
    "window": "odd width of the SSIM Gaussian window (voxels)",
    "sigma": "standard deviation of the SSIM Gaussian window (voxels)",
    "smooth": "Jaccard smooth, added to numerator and denominator",
    "lambda_ssim": "weight of the SSIM loss",
    "lambda_jaccard": "weight of the Jaccard loss",
}


@register_loss(LossInfo(
    name="unet3p_hybrid", family="compound", source="Huang et al. 2020 (UNet 3+)",
    arxiv="2004.08790",
    summary="focal + SSIM + Jaccard (pixel-, patch- and map-level terms).",
    params={"alpha": "focal positive-class weight (None: unweighted)",
            "gamma": "focal exponent", "lambda_focal": "weight of the focal loss",
            **_SSIM_JACCARD_PARAMS},
    notes="The paper uses multi-scale SSIM; the survey and this package single-scale SSIM.",
))
class UNet3pHybridLoss(SegLoss):
    """Module form of :func:`unet3p_hybrid_loss`."""

    function = staticmethod(unet3p_hybrid_loss)

    def __init__(self, *, alpha: float | None = 0.25, gamma: float = 2.0, window: int = 11,
                 sigma: float = 1.5, smooth: float = 1.0, lambda_focal: float = 1.0,
                 lambda_ssim: float = 1.0, lambda_jaccard: float = 1.0,
                 **shared: object) -> None:
        super().__init__(alpha=alpha, gamma=gamma, window=window,  # type: ignore[arg-type]
                         sigma=sigma, smooth=smooth, lambda_focal=lambda_focal,
                         lambda_ssim=lambda_ssim, lambda_jaccard=lambda_jaccard, **shared)


@register_loss(LossInfo(
    name="basnet_hybrid", family="compound", source="Qin et al. 2019 (BASNet)",
    summary="BCE + SSIM + Jaccard (pixel-, patch- and map-level terms).",
    params={"lambda_bce": "weight of the cross-entropy", **_SSIM_JACCARD_PARAMS},
    notes="BASNet's IoU term has no smoothing and its SSIM zero-pads the border "
          "unnormalised; here smooth=1 and the SSIM window is clipped and renormalised.",
))
class BASNetHybridLoss(SegLoss):
    """Module form of :func:`basnet_hybrid_loss`."""

    function = staticmethod(basnet_hybrid_loss)

    def __init__(self, *, window: int = 11, sigma: float = 1.5, smooth: float = 1.0,
                 lambda_bce: float = 1.0, lambda_ssim: float = 1.0, lambda_jaccard: float = 1.0,
                 **shared: object) -> None:
        super().__init__(window=window, sigma=sigma, smooth=smooth,  # type: ignore[arg-type]
                         lambda_bce=lambda_bce, lambda_ssim=lambda_ssim,
                         lambda_jaccard=lambda_jaccard, **shared)
