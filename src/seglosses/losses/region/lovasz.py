"""Lovász hinge and Lovász-softmax losses."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from ..._registry import LossInfo, register_loss
from ..._types import ClassWeights, Mode, Reduction
from ..._validation import check_choice
from .._base import SegLoss
from .._prepare import Prepared, prepare
from .._stats import reduce

LovaszClasses = Literal["present", "all"]


def lovasz_extension_stage(errors: Tensor, labels: Tensor, valid: Tensor | None) -> Tensor:
    """Lovász extension of the Jaccard loss, ``sum_k e_(k) g_k``, for every row of ``errors``.

    Args:
        errors: (..., N) non-negative errors per voxel (differentiable).
        labels: (..., N) hard ground truth in {0, 1}.
        valid: bool (..., N) voxels that count, or ``None``; the others are dropped.

    The errors are sorted in decreasing order and ``g`` is the discrete gradient of the
    Jaccard loss along that order (Berman et al. 2018, Algorithm 1). Dropped voxels sort last
    with label 0, so they change no ``g_k`` of a valid voxel and carry no gradient.
    """
    if valid is not None:
        errors = torch.where(valid, errors, torch.zeros_like(errors))
        key = torch.where(valid, errors.detach(), torch.full_like(errors, -1.0))
        labels = labels * valid
    else:
        key = errors.detach()
    order = torch.sort(key, dim=-1, descending=True, stable=True).indices
    errors_sorted = errors.gather(-1, order)
    labels_sorted = labels.gather(-1, order)
    positives = labels_sorted.sum(dim=-1, keepdim=True)
    intersection = positives - labels_sorted.cumsum(dim=-1)
    union = positives + (1.0 - labels_sorted).cumsum(dim=-1)
    jaccard = 1.0 - intersection / union
    grad = torch.cat([jaccard[..., :1], jaccard[..., 1:] - jaccard[..., :-1]], dim=-1)
    return (errors_sorted * grad).sum(dim=-1)


def _flat(x: Tensor) -> Tensor:
    return x.flatten(2)


def _valid(prep: Prepared) -> Tensor | None:
    if prep.valid is None:
        return None
    return _flat(prep.valid.expand(prep.raw.shape))


def _hinge(prep: Prepared) -> Tensor:
    """Lovász hinge per (B, C): binary and multilabel mode."""
    scores = prep.values if prep.from_logits else prep.log_prob - prep.log_one_minus_prob
    labels = (prep.target > 0.5).to(scores.dtype)
    errors = F.relu(1.0 - scores * (2.0 * labels - 1.0))
    return lovasz_extension_stage(_flat(errors), _flat(labels), _valid(prep))


def _softmax(prep: Prepared) -> tuple[Tensor, Tensor]:
    """Lovász-softmax per (B, C) and the presence of each class in the sample's target."""
    t = prep.target
    hard = F.one_hot(t.argmax(dim=1), prep.num_classes).movedim(-1, 1).to(t.dtype)
    valid = _valid(prep)
    labels = _flat(hard) if valid is None else _flat(hard) * valid
    errors = (labels - _flat(prep.prob)).abs()
    return lovasz_extension_stage(errors, labels, valid), labels.sum(dim=-1) > 0


def lovasz_loss(logits: Tensor, target: Tensor, mask: Tensor | None = None, *,
                mode: Mode = "auto", from_logits: bool = True, reduction: Reduction = "mean",
                include_background: bool = True, ignore_index: int | None = None,
                class_weights: ClassWeights = None,
                classes: LovaszClasses = "present") -> Tensor:
    r"""Lovász hinge (binary, multilabel) and Lovász-softmax (multiclass) losses.

    .. math::
        L = \overline{\Delta_J}(m) = \sum_{k=1}^{N} m_{(k)}\, g_k(m), \qquad
        g_k = \Delta_J(\{\pi_1..\pi_k\}) - \Delta_J(\{\pi_1..\pi_{k-1}\})

    the Lovász extension of the Jaccard loss evaluated at the error vector ``m`` sorted in
    decreasing order ``pi`` (Berman et al. 2018). Binary and multilabel mode (hinge): per
    sample and channel, ``m_i = max(0, 1 - x_i (2 t_i - 1))`` on the logits ``x`` (with
    ``from_logits=False``, ``x = log p - log(1 - p)``), then averaged over the channels with
    ``class_weights``. Multiclass mode (softmax): per sample and class, ``m_i = |t_ic - p_ic|``,
    averaged over the classes present in the sample's target (``classes="present"``, the
    default) or over all classes used (``"all"``); a sample with no class to average gives 0.
    Soft targets are made hard first (``t > 0.5``; argmax over classes in multiclass mode).
    Masked and ignored voxels are dropped. The loss is piecewise linear in ``x`` (hinge) or
    ``p`` (softmax): its gradient is exact away from ties between errors.

    Args:
        logits: (B, C, *S) logits (probabilities with ``from_logits=False``).
        target: see :func:`seglosses.losses._prepare.prepare`.
        mask: optional bool (B, 1, *S) or (B, *S); False voxels count nowhere.
        mode, from_logits, reduction, include_background, ignore_index, class_weights: the
            shared parameters (``docs/api.md``).
        classes: multiclass mode: ``"present"`` averages over the classes present in the
            sample's target, ``"all"`` over every class used.

    Shape:
        Output: scalar for ``"mean"``/``"sum"``, (B,) for ``"none"``.

    Raises:
        ValueError: unknown ``classes``; bad input (see ``prepare``).

    Example:
        >>> import torch
        >>> logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]])
        >>> target = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
        >>> lovasz_loss(logits, target)
        tensor(0.2500)

    References:
        Berman, Rannen Triki, Blaschko, "The Lovász-Softmax loss: a tractable surrogate for
        the optimization of the intersection-over-union measure in neural networks",
        CVPR 2018, arXiv:1705.08790.
    """
    check_choice(classes, "classes", ("present", "all"))
    prep = prepare(logits, target, mask, mode=mode, from_logits=from_logits,
                   include_background=include_background, ignore_index=ignore_index,
                   class_weights=class_weights)
    if prep.mode == "multiclass":
        per_class, present = _softmax(prep)
    else:
        per_class = _hinge(prep)
        present = torch.ones_like(per_class, dtype=torch.bool)
    ch = prep.channels
    weight = torch.ones_like(per_class[:, ch]) if prep.class_weights is None else \
        prep.class_weights[ch].expand_as(per_class[:, ch])
    if prep.mode == "multiclass" and classes == "present":
        weight = weight * present[:, ch]
    total = weight.sum(dim=1)
    safe = torch.where(total > 0, total, torch.ones_like(total))
    return reduce((weight * per_class[:, ch]).sum(dim=1) / safe, reduction)


@register_loss(LossInfo(
    name="lovasz", family="region", source="Berman et al. 2018", arxiv="1705.08790",
    summary="Lovász extension of the Jaccard loss: hinge (binary/multilabel), softmax "
            "(multiclass).",
    params={"classes": "multiclass: average over 'present' classes of the sample or 'all'"},
    value_range=(0.0, float("inf")),
    notes="Per sample; smp's LovaszLoss pools over the batch by default.",
))
class LovaszLoss(SegLoss):
    """Module form of :func:`lovasz_loss`."""

    function = staticmethod(lovasz_loss)

    def __init__(self, *, classes: LovaszClasses = "present", **shared: object) -> None:
        super().__init__(classes=classes, **shared)  # type: ignore[arg-type]
