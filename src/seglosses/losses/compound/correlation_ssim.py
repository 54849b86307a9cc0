"""Correlation maximized structural similarity loss (Zhao et al. 2019)."""

from __future__ import annotations

import torch
from torch import Tensor

from ..._registry import LossInfo, register_loss
from ..._types import ClassWeights, Mode, Reduction
from ..._validation import check_number
from .._base import SegLoss
from .._filters import box_kernel1d, check_window, local_means
from .._prepare import Prepared, prepare
from .._stats import class_weight_map, reduce
from ..distribution.bce import cross_entropy_map

#: Relative size below which the difference of the two standardised terms counts as 0.
ROUNDING = 1e-12


def structural_error_stage(prep: Prepared, *, window: int, c: float) -> Tensor:
    """Detached structural error e per voxel and channel, (B, C, *S); 0 on invalid voxels.

    ``e = |(t - mu_t + c) / (sigma_t + c) - (p - mu_p + c) / (sigma_p + c)|`` with the local
    mean and (population) standard deviation over a ``window``-wide box clipped to the image
    and to the valid voxels. The statistics run in float64 on CPU and CUDA, so that flat
    windows get a spread of exactly zero rather than a rounding residue of order sqrt(eps).
    ``e`` below ``ROUNDING * (|t-term| + |p-term|)`` is set to 0.
    """
    p = prep.prob.detach()
    out_dtype = p.dtype
    dtype = torch.float64 if p.device.type in ("cpu", "cuda") else p.dtype
    p = p.to(dtype)
    t = prep.target.detach().to(dtype)
    weight = None if prep.weight is None else prep.weight.to(dtype)
    kernel = box_kernel1d(window, dtype=dtype, device=p.device)
    mu_p, mu_t, m_pp, m_tt = local_means([p, t, p * p, t * t], weight, kernel)
    sd_p = (m_pp - mu_p * mu_p).clamp_min(0.0).sqrt()
    sd_t = (m_tt - mu_t * mu_t).clamp_min(0.0).sqrt()
    a = (t - mu_t + c) / (sd_t + c)
    b = (p - mu_p + c) / (sd_p + c)
    e = (a - b).abs()
    # Differences at the rounding level of the two terms count as exactly 0 (both terms are
    # exactly 1 in flat windows, and for the larger voxel of a two-voxel window that p and t
    # rank alike), so that the selection e > beta * max e does not hinge on rounding.
    e = torch.where(e > ROUNDING * (a.abs() + b.abs()), e, torch.zeros_like(e))
    if weight is not None:
        e = e * weight
    return e.to(out_dtype)


def correlation_ssim_loss(logits: Tensor, target: Tensor, mask: Tensor | None = None, *,
                          mode: Mode = "auto", from_logits: bool = True,
                          reduction: Reduction = "mean", include_background: bool = True,
                          ignore_index: int | None = None, class_weights: ClassWeights = None,
                          beta: float = 0.1, window: int = 3, c: float = 0.01) -> Tensor:
    r"""Correlation maximized structural similarity loss: cross-entropy on poorly correlated voxels.

    .. math::
        e_i = \left|\frac{t_i - \mu_t + c}{\sigma_t + c} - \frac{p_i - \mu_p + c}{\sigma_p + c}
        \right|, \quad f_i = [e_i > \beta \max_j e_j], \quad
        L = \frac{\sum_i e_i f_i \, \mathrm{CE}_i}{\sum_i f_i}

    Compound family (structural weighting of a pixel loss; Zhao et al. 2019). ``mu`` and
    ``sigma`` are the local mean and population standard deviation over a ``window``-wide box
    clipped to the image and to the valid voxels (padding and masked voxels are left out of
    the statistics); differences of the two terms at the float64 rounding level count as 0.
    ``e`` and ``f`` are detached: the gradient is that of the cross-entropy weighted by
    ``e f``. Per sample, the maximum and the sums run over all channels and valid
    voxels; ``L = 0`` when no voxel is selected. Binary/multilabel: ``e`` and the binary CE per
    channel (``class_weights`` weigh the CE of each channel). Multiclass: ``e`` per class
    channel and the categorical CE of the voxel, so a voxel weighs ``sum_c e_c f_c`` and counts
    ``sum_c f_c`` times. ``include_background`` has no effect (pixel loss).

    Args:
        beta: fraction of the sample's largest error above which a voxel is selected, in [0, 1].
        window: odd width of the box for the local statistics, in voxels (>= 1).
        c: stabilising constant ``C4`` of the paper (> 0).

    Shape:
        Output: scalar for ``"mean"``/``"sum"``, (B,) for ``"none"``.

    Example:
        >>> import torch
        >>> logits = torch.tensor([[[[2.0, -1.0, 0.5], [0.5, -3.0, 1.0]]]])
        >>> target = torch.tensor([[[[1.0, 0.0, 1.0], [1.0, 0.0, 0.0]]]])
        >>> correlation_ssim_loss(logits, target)
        tensor(0.5910)

    References:
        S. Zhao, B. Wu, W. Chu, Y. Hu, D. Cai, "Correlation maximized structural similarity loss
        for semantic segmentation", arXiv:1910.08711, 2019.
    """
    check_number(beta, "beta", low=0.0, high=1.0)
    check_window(window)
    check_number(c, "c", low=0.0, low_open=True)
    prep = prepare(logits, target, mask, mode=mode, from_logits=from_logits,
                   include_background=include_background, ignore_index=ignore_index,
                   class_weights=class_weights)
    ce = cross_entropy_map(prep)
    cw = class_weight_map(prep)
    if prep.mode != "multiclass" and cw is not None:
        ce = ce * cw
    with torch.no_grad():
        e = structural_error_stage(prep, window=window, c=c)
        b = e.shape[0]
        e_max = e.reshape(b, -1).amax(dim=1).view(b, *([1] * (e.dim() - 1)))
        selected = e > beta * e_max
        if prep.valid is not None:
            selected = selected & prep.valid
        weight = torch.where(selected, e, torch.zeros_like(e))
        if prep.mode == "multiclass":
            weight = weight.sum(dim=1, keepdim=True)
        count = selected.reshape(b, -1).sum(dim=1).to(e.dtype)
    total = (weight * ce).reshape(b, -1).sum(dim=1)
    return reduce(total / count.clamp_min(1.0), reduction)


@register_loss(LossInfo(
    name="correlation_ssim", family="compound", source="Zhao et al. 2019", arxiv="1910.08711",
    summary="Cross-entropy weighted by the local correlation error, on the worst voxels.",
    params={"beta": "selection threshold, a fraction of the sample's largest error",
            "window": "odd width of the box for local mean and standard deviation (voxels)",
            "c": "stabilising constant of the standardised maps"},
    differentiable=False,
    notes="e and f are detached by definition, so finite differences (gradcheck) do not match "
          "the analytic gradient. Multiclass: per-class e with the categorical CE of the voxel; "
          "the maximum of e is taken per sample.",
))
class CorrelationSSIMLoss(SegLoss):
    """Module form of :func:`correlation_ssim_loss`."""

    function = staticmethod(correlation_ssim_loss)

    def __init__(self, *, beta: float = 0.1, window: int = 3, c: float = 0.01,
                 **shared: object) -> None:
        super().__init__(beta=beta, window=window, c=c, **shared)  # type: ignore[arg-type]
