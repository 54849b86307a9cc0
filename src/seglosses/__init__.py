"""seglosses: segmentation losses, metrics and exact distance transforms for PyTorch.

Example:
    >>> import torch, seglosses
    >>> loss = seglosses.get_loss("focal_tversky")
    >>> logits = torch.zeros(2, 1, 8, 8, requires_grad=True)
    >>> target = torch.ones(2, 1, 8, 8)
    >>> value = loss(logits, target)
    >>> value.backward()
    >>> bool(torch.isfinite(logits.grad).all())
    True
"""

from __future__ import annotations

from . import functional, kernels, metrics, ops
from ._registry import LossInfo, get_loss, list_losses, loss_info
from ._types import Family
from ._validation import get_validation, set_validation
from .losses import CompoundLoss, SegLoss
from .losses._base import LossArithmetic

__version__ = "0.1.0"

_loss_classes = {}
for _name in list_losses():
    _cls = loss_info(_name).cls
    _loss_classes[_cls.__name__] = _cls
globals().update(_loss_classes)

__all__ = sorted(
    [
        "CompoundLoss", "Family", "LossArithmetic", "LossInfo", "SegLoss", "__version__",
        "functional", "get_loss", "kernels", "metrics", "ops", "get_validation", "list_losses",
        "loss_info",
        "set_validation",
    ]
    + list(_loss_classes)
)
