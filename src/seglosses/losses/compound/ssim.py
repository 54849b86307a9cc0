"""SSIM loss: 1 - mean structural similarity between the probabilities and the target."""

from __future__ import annotations

from torch import Tensor

from ..._registry import LossInfo, register_loss
from ..._types import ClassWeights, Mode, Reduction
from ..._validation import check_number
from .._base import SegLoss
from .._filters import check_window, gaussian_kernel1d, local_means
from .._prepare import Prepared, prepare
from .._stats import channel_mean, reduce, valid_count, weighted_sum

#: Stabilising constants of Wang et al. (2004) for a data range of 1: (0.01)^2 and (0.03)^2.
C1 = 0.01 ** 2
C2 = 0.03 ** 2


def ssim_map_stage(prep: Prepared, *, window: int, sigma: float) -> Tensor:
    """Local SSIM of p and t per voxel, shape (B, C, *S).

    Local means, variances and the covariance are Gaussian-weighted averages over the window
    clipped to the image and to the valid voxels (see :mod:`seglosses.losses._filters`).
    Values at invalid voxels are finite and meaningless; weigh them out with ``prep.weight``.

    The two factors are evaluated in the equivalent difference form
    ``(2 mu_p mu_t + C1) / (mu_p^2 + mu_t^2 + C1) = 1 - mu_d^2 / (mu_p^2 + mu_t^2 + C1)`` and
    ``(2 cov + C2) / (var_p + var_t + C2) = 1 - var_d / (var_p + var_t + C2)`` with
    ``d = p - t``: near a perfect prediction ``d`` is small, so the one-pass variance of ``d``
    has no cancellation, and neither factor can round above 1 (in fp32 the textbook form
    overshoots by ~eps / C2 ~ 1e-4 on flat regions, giving a negative loss).
    """
    p, t = prep.prob, prep.target
    d = p - t
    kernel = gaussian_kernel1d(window, sigma, dtype=p.dtype, device=p.device)
    mu_p, mu_t, mu_d, m_pp, m_tt, m_dd = local_means([p, t, d, p * p, t * t, d * d],
                                                     prep.weight, kernel)
    var_p = (m_pp - mu_p * mu_p).clamp_min(0.0)
    var_t = (m_tt - mu_t * mu_t).clamp_min(0.0)
    var_d = (m_dd - mu_d * mu_d).clamp_min(0.0)
    luminance = 1.0 - mu_d * mu_d / (mu_p * mu_p + mu_t * mu_t + C1)
    structure = 1.0 - var_d / (var_p + var_t + C2)
    return luminance * structure


def ssim_per_sample_stage(prep: Prepared, *, window: int, sigma: float) -> Tensor:
    """The SSIM loss per sample, (B,): ``1 - SSIM`` averaged over the valid voxels of each
    channel, then over the channels used."""
    ssim = ssim_map_stage(prep, window=window, sigma=sigma)
    per_channel = weighted_sum(1.0 - ssim, prep) / valid_count(prep).clamp_min(1.0)
    return channel_mean(per_channel, prep)


def ssim_loss(logits: Tensor, target: Tensor, mask: Tensor | None = None, *, mode: Mode = "auto",
              from_logits: bool = True, reduction: Reduction = "mean",
              include_background: bool = True, ignore_index: int | None = None,
              class_weights: ClassWeights = None, window: int = 11, sigma: float = 1.5) -> Tensor:
    r"""SSIM loss: one minus the mean local structural similarity of p and t.

    .. math::
        \mathrm{SSIM}_i = \frac{(2\mu_p\mu_t + C_1)(2\sigma_{pt} + C_2)}
        {(\mu_p^2 + \mu_t^2 + C_1)(\sigma_p^2 + \sigma_t^2 + C_2)}, \qquad
        L = 1 - \frac{1}{N}\sum_i \mathrm{SSIM}_i

    with :math:`C_1 = 0.01^2`, :math:`C_2 = 0.03^2` and local statistics weighted by a
    ``window``-wide sampled Gaussian of standard deviation ``sigma`` (separable, 1 to 3
    spatial dims). Compound family (a structural term; Wang et al. 2004). At the border the
    window is clipped to the image and renormalised (no padding value enters); masked and
    ignored voxels are left out of every window in the same way and out of the mean, so any
    image size works, down to one voxel wide. Each channel gives ``L[b, c]``; channels are
    averaged as region terms (``include_background``, ``class_weights``).

    Args:
        window: odd width of the Gaussian window, in voxels (>= 1).
        sigma: standard deviation of the Gaussian window, in voxels (> 0).

    Shape:
        Output: scalar for ``"mean"``/``"sum"``, (B,) for ``"none"``.

    Example:
        >>> import torch
        >>> logits = torch.tensor([[[[2.0, -1.0, 0.5], [0.5, -3.0, 1.0]]]])
        >>> target = torch.tensor([[[[1.0, 0.0, 1.0], [1.0, 0.0, 0.0]]]])
        >>> ssim_loss(logits, target)
        tensor(0.4347)

    References:
        Z. Wang, A. C. Bovik, H. R. Sheikh, E. P. Simoncelli, "Image quality assessment: from
        error visibility to structural similarity", IEEE TIP 13(4), 2004.
    """
    check_window(window)
    check_number(sigma, "sigma", low=0.0, low_open=True)
    prep = prepare(logits, target, mask, mode=mode, from_logits=from_logits,
                   include_background=include_background, ignore_index=ignore_index,
                   class_weights=class_weights)
    return reduce(ssim_per_sample_stage(prep, window=window, sigma=sigma), reduction)


@register_loss(LossInfo(
    name="ssim", family="compound", source="Wang et al. 2004",
    summary="1 - mean local SSIM between probabilities and target (Gaussian window).",
    params={"window": "odd width of the Gaussian window (voxels)",
            "sigma": "standard deviation of the Gaussian window (voxels)"},
    value_range=(0.0, 2.0),
    notes="Window clipped to the image and to the valid voxels and renormalised (no padding "
          "enters); kornia pads by reflection, MONAI and tf.image.ssim keep only the interior.",
))
class SSIMLoss(SegLoss):
    """Module form of :func:`ssim_loss`."""

    function = staticmethod(ssim_loss)

    def __init__(self, *, window: int = 11, sigma: float = 1.5, **shared: object) -> None:
        super().__init__(window=window, sigma=sigma, **shared)  # type: ignore[arg-type]
