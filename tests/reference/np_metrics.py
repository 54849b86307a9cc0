"""Independent NumPy/SciPy references for ``seglosses.metrics`` and ``seglosses.ops``.

Written from the definitions of SPEC sections 4 and 5, for one (sample, channel) at a time,
in float64, with no code shared with the package:

- surfaces by ``scipy.ndimage.binary_erosion`` with the face-connected structure;
- directed surface distances by brute force over voxel coordinates (no distance transform);
- percentiles by ``numpy.percentile`` (linear interpolation).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def hard(x: np.ndarray) -> np.ndarray:
    """Binarise as the package documents: bool as is, anything else ``> 0.5``."""
    x = np.asarray(x)
    return x if x.dtype == bool else x > 0.5


def counts(pred: np.ndarray, target: np.ndarray) -> tuple[int, int, int, int]:
    p, t = hard(pred).ravel(), hard(target).ravel()
    tp = int(np.sum(p & t))
    fp = int(np.sum(p & ~t))
    fn = int(np.sum(~p & t))
    tn = int(np.sum(~p & ~t))
    return tp, fp, fn, tn


def _div(num: float, den: float, empty_value: float) -> float:
    return empty_value if den == 0 else num / den


def dice(pred, target, empty_value=1.0):
    tp, fp, fn, _ = counts(pred, target)
    return _div(2 * tp, 2 * tp + fp + fn, empty_value)


def iou(pred, target, empty_value=1.0):
    tp, fp, fn, _ = counts(pred, target)
    return _div(tp, tp + fp + fn, empty_value)


def sensitivity(pred, target, empty_value=1.0):
    tp, _, fn, _ = counts(pred, target)
    return _div(tp, tp + fn, empty_value)


def specificity(pred, target, empty_value=1.0):
    _, fp, _, tn = counts(pred, target)
    return _div(tn, tn + fp, empty_value)


def precision(pred, target, empty_value=1.0):
    tp, fp, _, _ = counts(pred, target)
    return _div(tp, tp + fp, empty_value)


def accuracy(pred, target, empty_value=1.0):
    tp, fp, fn, tn = counts(pred, target)
    return _div(tp + tn, tp + fp + fn + tn, empty_value)


def surface(mask: np.ndarray) -> np.ndarray:
    """Voxels removed by an erosion with the face-connected element (outside = background)."""
    m = hard(mask)
    structure = ndimage.generate_binary_structure(m.ndim, 1)
    return m & ~ndimage.binary_erosion(m, structure=structure, border_value=0)


def directed_distances(src: np.ndarray, dst: np.ndarray, spacing=None) -> np.ndarray:
    """Distance from every surface voxel of ``src`` to the nearest surface voxel of ``dst``.

    Brute force over coordinates; ``inf`` for each source voxel when ``dst`` has no surface.
    """
    a = np.argwhere(surface(src)).astype(np.float64)
    b = np.argwhere(surface(dst)).astype(np.float64)
    if len(a) == 0:
        return np.zeros(0)
    if len(b) == 0:
        return np.full(len(a), np.inf)
    scale = np.ones(a.shape[1]) if spacing is None else np.broadcast_to(
        np.asarray(spacing, dtype=np.float64), (a.shape[1],))
    a, b = a * scale, b * scale
    d2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    return np.sqrt(d2.min(1))


def _empty_policy(pred, target, both_empty: float, one_empty: float):
    p_any, t_any = hard(pred).any(), hard(target).any()
    if not p_any and not t_any:
        return both_empty
    if p_any != t_any:
        return one_empty
    return None


def hausdorff(pred, target, percentile=100.0, spacing=None, method="max"):
    policy = _empty_policy(pred, target, 0.0, np.inf)
    if policy is not None:
        return policy
    d_pt = directed_distances(pred, target, spacing)
    d_tp = directed_distances(target, pred, spacing)
    if method == "max":
        return max(np.percentile(d_pt, percentile), np.percentile(d_tp, percentile))
    return float(np.percentile(np.concatenate([d_pt, d_tp]), percentile))


def assd(pred, target, spacing=None):
    policy = _empty_policy(pred, target, 0.0, np.inf)
    if policy is not None:
        return policy
    d_pt = directed_distances(pred, target, spacing)
    d_tp = directed_distances(target, pred, spacing)
    return (d_pt.sum() + d_tp.sum()) / (len(d_pt) + len(d_tp))


def surface_dice(pred, target, tolerance, spacing=None, empty_value=1.0):
    policy = _empty_policy(pred, target, empty_value, 0.0)
    if policy is not None:
        return policy
    d_pt = directed_distances(pred, target, spacing)
    d_tp = directed_distances(target, pred, spacing)
    return (np.sum(d_pt <= tolerance) + np.sum(d_tp <= tolerance)) / (len(d_pt) + len(d_tp))


def per_item(fn, pred: np.ndarray, target: np.ndarray, **kwargs) -> np.ndarray:
    """Apply a per-(sample, channel) reference over (B, C, *S) arrays."""
    out = np.empty(pred.shape[:2])
    for b in range(pred.shape[0]):
        for c in range(pred.shape[1]):
            out[b, c] = fn(pred[b, c], target[b, c], **kwargs)
    return out


def edt(mask: np.ndarray, spacing=None) -> np.ndarray:
    """Per item EDT with the package's policy for items without a False voxel (``inf``)."""
    m = hard(mask)
    if m.all():
        return np.full(m.shape, np.inf)
    return ndimage.distance_transform_edt(m, sampling=spacing)
