"""Overlap metrics of hard masks: Dice, IoU, sensitivity, specificity, precision, accuracy.

Each takes ``pred, target`` of shape (B, C, *S) (bool; integer or float thresholded at 0.5)
and returns a (B, C) float32 tensor on their device. A ratio whose denominator is zero
(e.g. Dice of an empty prediction against an empty target) takes ``empty_value``.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from .._validation import check_int, check_labels, check_tensor, check_spatial_rank
from ._confusion import check_empty_value, check_pair, confusion, ratio

__all__ = ["accuracy", "dice", "iou", "one_hot", "precision", "sensitivity", "specificity"]

_Formula = Callable[[Tensor, Tensor, Tensor, Tensor], "tuple[Tensor, Tensor]"]


def _overlap(pred: Tensor, target: Tensor, empty_value: float, formula: _Formula) -> Tensor:
    check_empty_value(empty_value)
    p, t = check_pair(pred, target)
    num, den = formula(*confusion(p, t))
    return ratio(num, den, empty_value)


def dice(pred: Tensor, target: Tensor, *, empty_value: float = 1.0) -> Tensor:
    r"""Dice coefficient of hard masks, per sample and channel.

    .. math::

        \mathrm{DSC} = \frac{2\,TP}{2\,TP + FP + FN}

    Args:
        pred: predicted mask (B, C, *S): bool, or integer / float thresholded at 0.5.
        target: reference mask of the same shape.
        empty_value: value where both masks are empty (0/0).

    Returns:
        (B, C) float32 tensor on the inputs' device.

    Example:
        >>> from seglosses.metrics import dice
        >>> pred = torch.tensor([[[1, 1, 0, 0]]])
        >>> target = torch.tensor([[[1, 0, 0, 0]]])
        >>> dice(pred, target)
        tensor([[0.6667]])
    """
    return _overlap(pred, target, empty_value, lambda tp, fp, fn, tn: (2 * tp, 2 * tp + fp + fn))


def iou(pred: Tensor, target: Tensor, *, empty_value: float = 1.0) -> Tensor:
    r"""Intersection over union (Jaccard index) of hard masks.

    .. math::

        \mathrm{IoU} = \frac{TP}{TP + FP + FN}

    Args:
        pred: predicted mask (B, C, *S).
        target: reference mask of the same shape.
        empty_value: value where both masks are empty (0/0).

    Returns:
        (B, C) float32 tensor.

    Example:
        >>> from seglosses.metrics import iou
        >>> iou(torch.tensor([[[1, 1, 0, 0]]]), torch.tensor([[[1, 0, 0, 0]]]))
        tensor([[0.5000]])
    """
    return _overlap(pred, target, empty_value, lambda tp, fp, fn, tn: (tp, tp + fp + fn))


def sensitivity(pred: Tensor, target: Tensor, *, empty_value: float = 1.0) -> Tensor:
    r"""Sensitivity (recall, true positive rate) of hard masks.

    .. math::

        \mathrm{TPR} = \frac{TP}{TP + FN}

    Args:
        pred: predicted mask (B, C, *S).
        target: reference mask of the same shape.
        empty_value: value where the target is empty (0/0).

    Returns:
        (B, C) float32 tensor.

    Example:
        >>> from seglosses.metrics import sensitivity
        >>> sensitivity(torch.tensor([[[1, 0, 1, 0]]]), torch.tensor([[[1, 1, 0, 0]]]))
        tensor([[0.5000]])
    """
    return _overlap(pred, target, empty_value, lambda tp, fp, fn, tn: (tp, tp + fn))


def specificity(pred: Tensor, target: Tensor, *, empty_value: float = 1.0) -> Tensor:
    r"""Specificity (true negative rate) of hard masks.

    .. math::

        \mathrm{TNR} = \frac{TN}{TN + FP}

    Args:
        pred: predicted mask (B, C, *S).
        target: reference mask of the same shape.
        empty_value: value where the target is full (0/0).

    Returns:
        (B, C) float32 tensor.

    Example:
        >>> from seglosses.metrics import specificity
        >>> specificity(torch.tensor([[[1, 0, 1, 0]]]), torch.tensor([[[1, 1, 0, 0]]]))
        tensor([[0.5000]])
    """
    return _overlap(pred, target, empty_value, lambda tp, fp, fn, tn: (tn, tn + fp))


def precision(pred: Tensor, target: Tensor, *, empty_value: float = 1.0) -> Tensor:
    r"""Precision (positive predictive value) of hard masks.

    .. math::

        \mathrm{PPV} = \frac{TP}{TP + FP}

    Args:
        pred: predicted mask (B, C, *S).
        target: reference mask of the same shape.
        empty_value: value where the prediction is empty (0/0).

    Returns:
        (B, C) float32 tensor.

    Example:
        >>> from seglosses.metrics import precision
        >>> precision(torch.tensor([[[1, 0, 1, 1]]]), torch.tensor([[[1, 1, 0, 0]]]))
        tensor([[0.3333]])
    """
    return _overlap(pred, target, empty_value, lambda tp, fp, fn, tn: (tp, tp + fp))


def accuracy(pred: Tensor, target: Tensor, *, empty_value: float = 1.0) -> Tensor:
    r"""Voxel accuracy of hard masks.

    .. math::

        \mathrm{ACC} = \frac{TP + TN}{TP + FP + FN + TN}

    The denominator is the number of voxels, never zero for a valid input; ``empty_value``
    is accepted for a uniform signature.

    Args:
        pred: predicted mask (B, C, *S).
        target: reference mask of the same shape.
        empty_value: value for a zero denominator (cannot occur).

    Returns:
        (B, C) float32 tensor.

    Example:
        >>> from seglosses.metrics import accuracy
        >>> accuracy(torch.tensor([[[1, 0, 1, 1]]]), torch.tensor([[[1, 1, 0, 1]]]))
        tensor([[0.5000]])
    """
    return _overlap(pred, target, empty_value,
                    lambda tp, fp, fn, tn: (tp + tn, tp + fp + fn + tn))


def one_hot(labels: Tensor, num_classes: int) -> Tensor:
    """Turn a (B, *S) integer label map into a (B, C, *S) bool one-hot mask.

    Args:
        labels: integer tensor (B, *S) with 1 to 3 spatial dims, values in [0, C).
        num_classes: C, at least 1.

    Returns:
        bool tensor (B, C, *S) on the labels' device: channel c is ``labels == c``.

    Raises:
        TypeError: ``labels`` is not an integer tensor; ``num_classes`` not an int.
        ValueError: wrong rank, ``num_classes < 1``, or a label outside [0, C) (value check,
            see :func:`seglosses.set_validation`).

    Example:
        >>> from seglosses.metrics import one_hot
        >>> one_hot(torch.tensor([[0, 2, 1]]), 3).int()
        tensor([[[1, 0, 0],
                 [0, 0, 1],
                 [0, 1, 0]]], dtype=torch.int32)
    """
    check_tensor(labels, "labels")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(
            f"`labels` must be an integer tensor of class indices; got dtype {labels.dtype}"
        )
    check_int(num_classes, "num_classes", low=1)
    check_spatial_rank(labels, "labels", leading=1)
    check_labels(labels, "labels", num_classes, None)
    classes = torch.arange(num_classes, device=labels.device, dtype=labels.dtype)
    return labels.unsqueeze(1) == classes.view(1, num_classes, *([1] * (labels.dim() - 1)))
