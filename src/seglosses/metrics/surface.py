"""Surface-distance metrics of hard masks: Hausdorff (percentile), ASSD, surface Dice.

The surface of a mask is the set of its voxels that a binary erosion with the face-connected
structuring element removes, voxels outside the image counting as background. Directed
distances run from each surface voxel of one mask to the nearest surface voxel of the other
(Euclidean, scaled by ``spacing``); they come from one batched :func:`seglosses.ops.edt` of
the complements of both surfaces, on the inputs' device.

Empty masks: when both masks of a (sample, channel) are empty the distance metrics give 0,
when exactly one is empty they give ``inf``; surface Dice gives ``empty_value`` and 0.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from .._validation import check_choice, check_number
from ..ops.edt import Spacing, check_spacing, edt
from ._confusion import check_empty_value, check_pair, check_percentile

__all__ = ["assd", "hausdorff", "hd95", "surface", "surface_dice"]

Method = Literal["max", "pooled"]
_METHODS = ("max", "pooled")


def surface(mask: Tensor) -> Tensor:
    """Surface voxels of a bool (B, C, *S) mask.

    A voxel is on the surface when it belongs to the mask and one of its face neighbours does
    not, voxels beyond the image counting as outside: the voxels removed by a binary erosion
    with the face-connected (cross) structuring element and border value 0, as
    ``m & ~scipy.ndimage.binary_erosion(m)``.

    Example:
        >>> from seglosses.metrics import surface
        >>> m = torch.zeros(1, 1, 5, 5, dtype=torch.bool)
        >>> m[..., 1:4, 1:4] = True
        >>> surface(m)[0, 0].int()
        tensor([[0, 0, 0, 0, 0],
                [0, 1, 1, 1, 0],
                [0, 1, 0, 1, 0],
                [0, 1, 1, 1, 0],
                [0, 0, 0, 0, 0]], dtype=torch.int32)
    """
    nd = mask.dim() - 2
    padded = F.pad(mask.to(torch.uint8), (1, 1) * nd, value=0).bool()
    core = [slice(1, -1)] * nd
    interior = mask.clone()
    for k in range(nd):
        for shift in (slice(0, -2), slice(2, None)):
            index = list(core)
            index[k] = shift
            interior &= padded[(..., *index)]
    return mask & ~interior


class _Surfaces:
    """Both surfaces of a pair and the distances from each to the other."""

    def __init__(self, pred: Tensor, target: Tensor, spacing: Spacing) -> None:
        p, t = check_pair(pred, target)
        nd = p.dim() - 2
        steps = check_spacing(spacing, nd)
        self.surf_pred = surface(p)
        self.surf_target = surface(t)
        # distance of every voxel to the nearest target / prediction surface voxel
        both = edt(torch.stack((~self.surf_target, ~self.surf_pred)), steps, nd)
        self.to_target = both[0].flatten(2)
        self.to_pred = both[1].flatten(2)
        self.member_pred = self.surf_pred.flatten(2)
        self.member_target = self.surf_target.flatten(2)
        self.n_pred = self.member_pred.sum(-1)
        self.n_target = self.member_target.sum(-1)

    def directed(self) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
        """(distances, members) from the prediction's surface, then from the target's."""
        return (self.to_target, self.member_pred), (self.to_pred, self.member_target)

    def apply_empty_policy(self, value: Tensor, both_empty: float, one_empty: float) -> Tensor:
        """Overwrite the (b, c) where a surface is empty."""
        none_p = self.n_pred == 0
        none_t = self.n_target == 0
        value = torch.where(none_p & none_t, torch.full_like(value, both_empty), value)
        return torch.where(none_p ^ none_t, torch.full_like(value, one_empty), value)


def _percentile(dist: Tensor, member: Tensor, q: float) -> Tensor:
    """Percentile ``q`` of ``dist`` over the ``member`` voxels of each row (R..., N).

    Linear interpolation between order statistics, as ``numpy.percentile``'s default. Rows
    without members give NaN (callers overwrite them by the empty policy).
    """
    count = member.sum(-1)
    vals = torch.where(member, dist.to(torch.float64), torch.inf)
    if dist.device.type == "cpu":
        # only the members matter: keep the smallest count.max() values of each row
        k = int(count.max()) if count.numel() else 0
        if k == 0:
            return torch.full(count.shape, torch.nan, dtype=torch.float64, device=dist.device)
        ordered = vals.topk(k, dim=-1, largest=False, sorted=True).values
    else:
        ordered = vals.sort(dim=-1).values
    last = (count - 1).clamp(min=0)
    pos = (q / 100.0) * last.to(torch.float64)
    lo = pos.floor().long().clamp(min=0)
    hi = torch.minimum(lo + 1, last)
    frac = pos - lo.to(torch.float64)
    a = ordered.gather(-1, lo.unsqueeze(-1)).squeeze(-1)
    b = ordered.gather(-1, hi.unsqueeze(-1)).squeeze(-1)
    # numpy's lerp: from the nearer end, exact at frac = 0 and 1, no inf - inf
    diff = b - a
    low_side = a + diff * frac
    high_side = b - diff * (1.0 - frac)
    out = torch.where(frac >= 0.5, high_side, low_side)
    out = torch.where(frac == 0, a, out)
    return torch.where(count > 0, out, torch.nan)


def hausdorff(pred: Tensor, target: Tensor, percentile: float = 100, spacing: Spacing = None,
              method: Method = "max") -> Tensor:
    r"""Hausdorff distance between the surfaces of two masks, or a percentile of it.

    With :math:`d(a, B)` the distance from surface voxel :math:`a` to the nearest surface
    voxel of :math:`B` and :math:`P_q` the ``percentile`` with linear interpolation:

    .. math::

        \mathrm{HD}_q = \max\bigl(P_q\{d(a, S_t) : a \in S_p\},\;
                                  P_q\{d(b, S_p) : b \in S_t\}\bigr)

    ``method="pooled"`` takes :math:`P_q` of the union of both directed sets instead (the
    other HD95 in use). Both masks empty give 0, exactly one empty gives ``inf``.

    Args:
        pred: predicted mask (B, C, *S): bool, or integer / float thresholded at 0.5.
        target: reference mask of the same shape.
        percentile: in [0, 100]; 100 is the Hausdorff distance, 95 the HD95.
        spacing: voxel size per spatial dim (or one number), default 1.
        method: ``"max"`` (max of the directed percentiles) or ``"pooled"``.

    Returns:
        (B, C) float32 tensor on the inputs' device.

    Example:
        >>> from seglosses.metrics import hausdorff
        >>> pred = torch.zeros(1, 1, 6, 6, dtype=torch.bool)
        >>> target = torch.zeros(1, 1, 6, 6, dtype=torch.bool)
        >>> pred[..., 1:3, 1:3] = True
        >>> target[..., 1:3, 1:5] = True
        >>> hausdorff(pred, target)
        tensor([[2.]])
        >>> hausdorff(pred, target, spacing=(1.0, 0.5))
        tensor([[1.]])
    """
    check_percentile(percentile)
    check_choice(method, "method", _METHODS)
    s = _Surfaces(pred, target, spacing)
    (d_pt, m_p), (d_tp, m_t) = s.directed()
    if method == "max":
        value = torch.maximum(_percentile(d_pt, m_p, percentile), _percentile(d_tp, m_t, percentile))
    else:
        value = _percentile(torch.cat((d_pt, d_tp), -1), torch.cat((m_p, m_t), -1), percentile)
    return s.apply_empty_policy(value, 0.0, torch.inf).to(torch.float32)


def hd95(pred: Tensor, target: Tensor, spacing: Spacing = None, method: Method = "max") -> Tensor:
    """95th-percentile Hausdorff distance: :func:`hausdorff` with ``percentile=95``.

    Example:
        >>> from seglosses.metrics import hd95
        >>> pred = torch.zeros(1, 1, 6, 6, dtype=torch.bool)
        >>> target = torch.zeros(1, 1, 6, 6, dtype=torch.bool)
        >>> pred[..., 1:3, 1:3] = True
        >>> target[..., 1:3, 1:5] = True
        >>> hd95(pred, target)
        tensor([[2.]])
    """
    return hausdorff(pred, target, 95, spacing, method)


def assd(pred: Tensor, target: Tensor, spacing: Spacing = None) -> Tensor:
    r"""Average symmetric surface distance.

    .. math::

        \mathrm{ASSD} = \frac{\sum_{a \in S_p} d(a, S_t) + \sum_{b \in S_t} d(b, S_p)}
                             {|S_p| + |S_t|}

    Both masks empty give 0, exactly one empty gives ``inf``.

    Args:
        pred: predicted mask (B, C, *S).
        target: reference mask of the same shape.
        spacing: voxel size per spatial dim (or one number), default 1.

    Returns:
        (B, C) float32 tensor.

    Example:
        >>> from seglosses.metrics import assd
        >>> pred = torch.zeros(1, 1, 6, 6, dtype=torch.bool)
        >>> target = torch.zeros(1, 1, 6, 6, dtype=torch.bool)
        >>> pred[..., 1:3, 1:3] = True
        >>> target[..., 1:3, 1:5] = True
        >>> assd(pred, target)
        tensor([[0.5000]])
    """
    s = _Surfaces(pred, target, spacing)
    (d_pt, m_p), (d_tp, m_t) = s.directed()
    zero = torch.zeros((), dtype=torch.float64, device=d_pt.device)
    total = (torch.where(m_p, d_pt.double(), zero).sum(-1)
             + torch.where(m_t, d_tp.double(), zero).sum(-1))
    count = (s.n_pred + s.n_target).clamp(min=1)
    return s.apply_empty_policy(total / count, 0.0, torch.inf).to(torch.float32)


def surface_dice(pred: Tensor, target: Tensor, tolerance: float, spacing: Spacing = None, *,
                 empty_value: float = 1.0) -> Tensor:
    r"""Surface Dice (normalised surface distance) at a distance ``tolerance``.

    The fraction of surface voxels of both masks that lie within ``tolerance`` of the other
    mask's surface (Nikolov et al. 2021, counting voxels):

    .. math::

        \mathrm{NSD}_\tau = \frac{|\{a \in S_p : d(a, S_t) \le \tau\}|
                                  + |\{b \in S_t : d(b, S_p) \le \tau\}|}{|S_p| + |S_t|}

    Both masks empty give ``empty_value``, exactly one empty gives 0.

    Args:
        pred: predicted mask (B, C, *S).
        target: reference mask of the same shape.
        tolerance: distance tolerance (in the units of ``spacing``), >= 0.
        spacing: voxel size per spatial dim (or one number), default 1.
        empty_value: value where both masks are empty.

    Returns:
        (B, C) float32 tensor.

    Example:
        >>> from seglosses.metrics import surface_dice
        >>> pred = torch.zeros(1, 1, 6, 6, dtype=torch.bool)
        >>> target = torch.zeros(1, 1, 6, 6, dtype=torch.bool)
        >>> pred[..., 1:3, 1:3] = True
        >>> target[..., 1:3, 1:5] = True
        >>> surface_dice(pred, target, tolerance=1.0)
        tensor([[0.8333]])
    """
    check_number(tolerance, "tolerance", low=0)
    check_empty_value(empty_value)
    s = _Surfaces(pred, target, spacing)
    (d_pt, m_p), (d_tp, m_t) = s.directed()
    close = (m_p & (d_pt <= tolerance)).sum(-1) + (m_t & (d_tp <= tolerance)).sum(-1)
    count = (s.n_pred + s.n_target).clamp(min=1)
    value = close.double() / count
    return s.apply_empty_policy(value, float(empty_value), 0.0).to(torch.float32)
