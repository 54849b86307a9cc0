"""Independent NumPy references for the region losses (and the unified focal loss).

Written from the formulas of SPEC section 3 and the primary papers, in float64, with explicit
loops where that makes the formula plain. Nothing here imports seglosses.

Inputs follow the library's conventions: ``logits`` (B, C, *S); ``target`` (B, C, *S) floats in
[0, 1] (binary/multilabel or a multiclass probability map) or (B, *S) integer labels
(multiclass); ``mask`` bool (B, 1, *S) or (B, *S).
"""

from __future__ import annotations

import itertools
import math

import numpy as np

EPS = 1e-7


# --------------------------------------------------------------------------- inputs


def activate(logits: np.ndarray, mode: str, from_logits: bool = True) -> np.ndarray:
    """p = sigmoid (binary/multilabel) or softmax over C (multiclass)."""
    x = np.asarray(logits, dtype=np.float64)
    if not from_logits:
        return x
    if mode == "multiclass":
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    return 1.0 / (1.0 + np.exp(-x))


def inputs(logits, target, mask=None, *, mode, ignore_index=None, include_background=True,
           from_logits=True):
    """Return p, t, v (valid weights), all (B, C, N), and the channels that enter region terms."""
    logits = np.asarray(logits, dtype=np.float64)
    b, c = logits.shape[:2]
    p = activate(logits, mode, from_logits).reshape(b, c, -1)
    target = np.asarray(target)
    n = p.shape[-1]
    v = np.ones((b, c, n))
    if mode == "multiclass" and target.ndim == logits.ndim - 1:
        labels = target.reshape(b, -1).astype(np.int64)
        t = np.zeros((b, c, n))
        for bi in range(b):
            for i in range(n):
                lab = labels[bi, i]
                if ignore_index is not None and lab == ignore_index:
                    v[bi, :, i] = 0.0
                else:
                    t[bi, lab, i] = 1.0
    else:
        t = target.astype(np.float64).reshape(b, c, -1).copy()
        if ignore_index is not None:
            v = np.where(t == ignore_index, 0.0, v)
            t = np.where(t == ignore_index, 0.0, t)
    if mask is not None:
        m = np.asarray(mask).reshape(b, 1, -1).astype(np.float64)
        v = v * m
    t = t * v
    channels = list(range(1, c)) if mode == "multiclass" and not include_background \
        else list(range(c))
    return p, t, v, channels


def stats(p, t, v):
    """Soft TP, FP, FN, TN per (B, C) over the valid voxels, by explicit loops."""
    b, c, n = p.shape
    tp, fp, fn, tn = (np.zeros((b, c)) for _ in range(4))
    for bi, ci, i in itertools.product(range(b), range(c), range(n)):
        w = v[bi, ci, i]
        pp, tt = p[bi, ci, i], t[bi, ci, i]
        tp[bi, ci] += w * pp * tt
        fp[bi, ci] += w * pp * (1 - tt)
        fn[bi, ci] += w * (1 - pp) * tt
        tn[bi, ci] += w * (1 - pp) * (1 - tt)
    return tp, fp, fn, tn


def pooled(x):
    """Sum (B, C) statistics over the batch: (1, C)."""
    return x.sum(axis=0, keepdims=True)


def channel_average(per_channel, channels, class_weights=None):
    """Average L[b, c] over the channels used, weights normalised to sum 1."""
    used = per_channel[:, channels]
    if class_weights is None:
        return used.mean(axis=1)
    w = np.asarray(class_weights, dtype=np.float64)[channels]
    return (used * w).sum(axis=1) / w.sum()


def reduce(per_sample, reduction):
    if reduction == "mean":
        return float(np.mean(per_sample))
    if reduction == "sum":
        return float(np.sum(per_sample))
    return np.asarray(per_sample, dtype=np.float64)


# --------------------------------------------------------------------------- overlap losses


def _region(index_fn, logits, target, mask=None, *, mode, reduction="mean", batch=False,
            ignore_index=None, include_background=True, class_weights=None, from_logits=True):
    p, t, v, channels = inputs(logits, target, mask, mode=mode, ignore_index=ignore_index,
                               include_background=include_background, from_logits=from_logits)
    tp, fp, fn, tn = stats(p, t, v)
    if batch:
        tp, fp, fn, tn = pooled(tp), pooled(fp), pooled(fn), pooled(tn)
    per_channel = index_fn(tp, fp, fn, tn)
    return reduce(channel_average(per_channel, channels, class_weights), reduction)


def jaccard(logits, target, mask=None, *, smooth=1.0, **kw):
    """1 - (TP + s) / (TP + FP + FN + s)."""
    return _region(lambda tp, fp, fn, tn: 1 - (tp + smooth) / (tp + fp + fn + smooth),
                   logits, target, mask, **kw)


def dice(logits, target, mask=None, *, smooth=1.0, **kw):
    """1 - (2 TP + s) / (2 TP + FP + FN + s)."""
    return _region(lambda tp, fp, fn, tn: 1 - (2 * tp + smooth) / (2 * tp + fp + fn + smooth),
                   logits, target, mask, **kw)


def tversky(logits, target, mask=None, *, alpha=0.3, beta=0.7, smooth=1.0, **kw):
    """1 - (TP + s) / (TP + alpha FP + beta FN + s)."""
    return _region(
        lambda tp, fp, fn, tn: 1 - (tp + smooth) / (tp + alpha * fp + beta * fn + smooth),
        logits, target, mask, **kw)


def focal_tversky(logits, target, mask=None, *, alpha=0.3, beta=0.7, gamma=0.75, smooth=1.0,
                  **kw):
    """(1 - TI) ** gamma per channel."""
    def fn_(tp, fp, fn, tn):
        ti = (tp + smooth) / (tp + alpha * fp + beta * fn + smooth)
        return np.maximum(1 - ti, 0.0) ** gamma
    return _region(fn_, logits, target, mask, **kw)


def log_cosh_dice(logits, target, mask=None, *, smooth=1.0, **kw):
    """log(cosh(D)), D the Dice loss, per channel."""
    def fn_(tp, fp, fn, tn):
        d = 1 - (2 * tp + smooth) / (2 * tp + fp + fn + smooth)
        return np.log(np.cosh(d))
    return _region(fn_, logits, target, mask, **kw)


def sensitivity_specificity(logits, target, mask=None, *, w=0.05, smooth=1e-5, mode,
                            reduction="mean", ignore_index=None, include_background=True,
                            class_weights=None, from_logits=True):
    """Brosch et al. 2015: w * sum (t-p)^2 t / (sum t + s) + (1-w) * sum (t-p)^2 (1-t) / (...)."""
    p, t, v, channels = inputs(logits, target, mask, mode=mode, ignore_index=ignore_index,
                               include_background=include_background, from_logits=from_logits)
    b, c, n = p.shape
    out = np.zeros((b, c))
    for bi in range(b):
        for ci in range(c):
            pp, tt, vv = p[bi, ci], t[bi, ci], v[bi, ci]
            err = (tt - pp) ** 2
            sens = np.sum(vv * err * tt) / (np.sum(vv * tt) + smooth)
            spec = np.sum(vv * err * (1 - tt)) / (np.sum(vv * (1 - tt)) + smooth)
            out[bi, ci] = w * sens + (1 - w) * spec
    return reduce(channel_average(out, channels, class_weights), reduction)


def generalized_dice(logits, target, mask=None, *, smooth=1e-5, mode, reduction="mean",
                     ignore_index=None, include_background=True, class_weights=None,
                     from_logits=True):
    """Sudre et al. 2017 with absent classes taking the largest present weight; 0 if none."""
    p, t, v, channels = inputs(logits, target, mask, mode=mode, ignore_index=ignore_index,
                               include_background=include_background, from_logits=from_logits)
    if mode == "binary":
        p = np.concatenate([1 - p, p], axis=1)
        t = np.concatenate([(1 - t) * v, t], axis=1)
        v = np.concatenate([v, v], axis=1)
        classes = [0, 1]
        cw = None
    else:
        classes = channels
        cw = None if class_weights is None else np.asarray(class_weights, float)[channels]
    out = []
    for bi in range(p.shape[0]):
        vol = np.array([np.sum(v[bi, k] * t[bi, k]) for k in classes])
        tp = np.array([np.sum(v[bi, k] * p[bi, k] * t[bi, k]) for k in classes])
        sp = np.array([np.sum(v[bi, k] * p[bi, k]) for k in classes])
        present = vol > 0
        if not present.any():
            out.append(0.0)
            continue
        wts = np.where(present, 1.0 / (vol ** 2 + smooth), 0.0)
        wts = np.where(present, wts, wts.max())
        if cw is not None:
            wts = wts * cw
        out.append(1 - 2 * np.sum(wts * tp) / np.sum(wts * (sp + vol)))
    return reduce(np.array(out), reduction)


# --------------------------------------------------------------------------- Lovász


def _jaccard_loss_of_set(selected: np.ndarray, gt: np.ndarray) -> float:
    """Delta_J of predicting ``selected`` as the mispredicted set: 1 - |gt \\ sel| / |gt u sel|."""
    inter = np.sum(gt & ~selected)
    union = np.sum(gt | selected)
    return 0.0 if union == 0 else 1.0 - inter / union


def lovasz_extension(errors: np.ndarray, gt: np.ndarray) -> float:
    """Berman et al. 2018, eq. (8)/(9): sum_k m_(k) [Delta(pi_1..pi_k) - Delta(pi_1..pi_k-1)].

    The mispredicted set after k steps is the first k voxels in decreasing error order;
    Delta is evaluated directly on sets (no cumulative-sum shortcut).
    """
    order = sorted(range(len(errors)), key=lambda i: -errors[i])
    gt = gt.astype(bool)
    selected = np.zeros(len(errors), dtype=bool)
    total, previous = 0.0, 0.0
    for i in order:
        selected[i] = True
        current = _jaccard_loss_of_set(selected, gt)
        total += errors[i] * (current - previous)
        previous = current
    return total


def lovasz(logits, target, mask=None, *, mode, reduction="mean", ignore_index=None,
           include_background=True, class_weights=None, from_logits=True, classes="present"):
    """Lovász hinge (binary/multilabel, per sample and channel), Lovász-softmax (multiclass)."""
    logits = np.asarray(logits, dtype=np.float64)
    p, t, v, channels = inputs(logits, target, mask, mode=mode, ignore_index=ignore_index,
                               include_background=include_background, from_logits=from_logits)
    b, c, n = p.shape
    if from_logits:
        scores = logits.reshape(b, c, -1)
    else:
        q = np.clip(p, EPS, 1 - EPS)
        scores = np.log(q) - np.log1p(-q)
    if mode == "multiclass":
        hard = np.zeros_like(t)
        for bi in range(b):
            for i in range(n):
                hard[bi, np.argmax(t[bi, :, i]), i] = 1.0
    else:
        hard = (t > 0.5).astype(np.float64)
    out = []
    for bi in range(b):
        losses, weights = [], []
        for ci in channels:
            keep = v[bi, ci] > 0
            gt = hard[bi, ci][keep]
            if mode == "multiclass":
                if classes == "present" and gt.sum() == 0:
                    continue
                errors = np.abs(gt - p[bi, ci][keep])
            else:
                signs = 2 * gt - 1
                errors = np.maximum(1 - scores[bi, ci][keep] * signs, 0.0)
            losses.append(lovasz_extension(errors, gt))
            weights.append(1.0 if class_weights is None else float(class_weights[ci]))
        weights = np.array(weights)
        out.append(0.0 if weights.sum() == 0 else float(np.dot(losses, weights) / weights.sum()))
    return reduce(np.array(out), reduction)


# --------------------------------------------------------------------------- clDice


def _shifted(x: np.ndarray, axis: int, offset: int, fill: float) -> np.ndarray:
    """x moved by ``offset`` along ``axis``; positions outside the image get ``fill``."""
    out = np.full_like(x, fill)
    src = [slice(None)] * x.ndim
    dst = [slice(None)] * x.ndim
    size = x.shape[axis]
    if offset > 0:
        src[axis], dst[axis] = slice(0, size - offset), slice(offset, size)
    else:
        src[axis], dst[axis] = slice(-offset, size), slice(0, size + offset)
    out[tuple(dst)] = x[tuple(src)]
    return out


def erode(x: np.ndarray) -> np.ndarray:
    """Minimum over each voxel and its face neighbours (outside the image ignored)."""
    out = x.copy()
    for axis in range(x.ndim):
        for off in (-1, 1):
            out = np.minimum(out, _shifted(x, axis, off, np.inf))
    return out


def dilate(x: np.ndarray) -> np.ndarray:
    """Maximum over the full 3^d neighbourhood (outside the image ignored)."""
    out = x.copy()
    for offsets in itertools.product((-1, 0, 1), repeat=x.ndim):
        y = x
        for axis, off in enumerate(offsets):
            if off:
                y = _shifted(y, axis, off, -np.inf)
        out = np.maximum(out, y)
    return out


def skeleton(x: np.ndarray, iterations: int) -> np.ndarray:
    """Soft skeleton, Shit et al. 2021, Algorithm 1, on one spatial map."""
    relu = lambda a: np.maximum(a, 0.0)  # noqa: E731
    skel = relu(x - dilate(erode(x)))
    for _ in range(iterations):
        x = erode(x)
        delta = relu(x - dilate(erode(x)))
        skel = skel + relu(delta - skel * delta)
    return skel


def cldice(logits, target, mask=None, *, iterations=3, smooth=1.0, mode, reduction="mean",
           ignore_index=None, include_background=True, class_weights=None, from_logits=True):
    """1 - 2 Tprec Tsens / (Tprec + Tsens) per (sample, channel), masked voxels set to 0."""
    logits = np.asarray(logits, dtype=np.float64)
    spatial = logits.shape[2:]
    p, t, v, channels = inputs(logits, target, mask, mode=mode, ignore_index=ignore_index,
                               include_background=include_background, from_logits=from_logits)
    b, c, _ = p.shape
    out = np.zeros((b, c))
    for bi in range(b):
        for ci in range(c):
            vv = v[bi, ci].reshape(spatial)
            pp = p[bi, ci].reshape(spatial) * vv
            tt = t[bi, ci].reshape(spatial) * vv
            sp, st = skeleton(pp, iterations), skeleton(tt, iterations)
            tprec = (np.sum(vv * sp * tt) + smooth) / (np.sum(vv * sp) + smooth)
            tsens = (np.sum(vv * st * pp) + smooth) / (np.sum(vv * st) + smooth)
            out[bi, ci] = 1 - 2 * tprec * tsens / (tprec + tsens)
    return reduce(channel_average(out, channels, class_weights), reduction)


# --------------------------------------------------------------------------- unified focal


def unified_focal(logits, target, mask=None, *, weight=0.5, delta=0.6, gamma=0.5, smooth=1e-7,
                  mode, reduction="mean", ignore_index=None, include_background=True,
                  class_weights=None, from_logits=True):
    """Yeung et al. 2022, asymmetric: lambda L_maF + (1 - lambda) L_maFT.

    Every sigmoid channel is a {background, foreground} pair; in multiclass mode class 0 is
    the background and the other classes are rare. L_maF is a mean over valid voxels (and
    channels for multilabel) of the per-voxel sum over classes; L_maFT a mean over classes.
    """
    p, t, v, channels = inputs(logits, target, mask, mode=mode, ignore_index=ignore_index,
                               include_background=include_background, from_logits=from_logits)
    b, c, n = p.shape
    cw = np.ones(c) if class_weights is None else np.asarray(class_weights, dtype=np.float64)
    logp = np.log(np.clip(p, 1e-300, None))
    log1mp = np.log(np.clip(1 - p, 1e-300, None))

    def mti(tp, fp, fn):
        return (tp + smooth) / (tp + delta * fn + (1 - delta) * fp + smooth)

    out = []
    for bi in range(b):
        valid = v[bi].max(axis=0) > 0 if mode == "multiclass" else None
        if mode == "multiclass":
            per_voxel = np.zeros(n)
            for i in range(n):
                s = -(1 - delta) * t[bi, 0, i] * (1 - p[bi, 0, i]) ** gamma * logp[bi, 0, i] * cw[0]
                for ci in range(1, c):
                    s += -delta * t[bi, ci, i] * logp[bi, ci, i] * cw[ci]
                per_voxel[i] = s
            focal = per_voxel[valid].sum() / max(valid.sum(), 1)
            terms = []
            for ci in range(c):
                keep = v[bi, ci]
                tp = np.sum(keep * p[bi, ci] * t[bi, ci])
                fp = np.sum(keep * p[bi, ci] * (1 - t[bi, ci]))
                fn = np.sum(keep * (1 - p[bi, ci]) * t[bi, ci])
                x = 1 - mti(tp, fp, fn)
                terms.append(x if ci == 0 else max(x, 0.0) ** (1 - gamma))
        else:
            num = den = 0.0
            terms = []
            for ci in range(c):
                keep = v[bi, ci]
                pf, tf = p[bi, ci], t[bi, ci]
                pb, tb = 1 - pf, 1 - tf
                voxel = (-(1 - delta) * tb * pf ** gamma * log1mp[bi, ci]
                         - delta * tf * logp[bi, ci]) * cw[ci]
                num += np.sum(keep * voxel)
                den += np.sum(keep)
                fg = 1 - mti(np.sum(keep * pf * tf), np.sum(keep * pf * (1 - tf)),
                             np.sum(keep * (1 - pf) * tf))
                bg = 1 - mti(np.sum(keep * pb * tb), np.sum(keep * pb * (1 - tb)),
                             np.sum(keep * (1 - pb) * tb))
                terms.append(0.5 * (bg + max(fg, 0.0) ** (1 - gamma)))
            focal = num / max(den, 1.0)
        terms = np.array(terms)[None]
        region = channel_average(terms, channels, class_weights)[0]
        out.append(weight * focal + (1 - weight) * region)
    return reduce(np.array(out), reduction)


def log_cosh(x: float) -> float:
    """Plain log(cosh(x)) for hand-computed cases."""
    return math.log(math.cosh(x))


# --------------------------------------------------------------------------- test cases

#: (mode, spatial shape, options) shared by the region losses' reference tests: 1-D to 3-D,
#: odd and 1-voxel-wide sizes, every reduction, batch pooling, class weights, ignore_index,
#: masks, probabilities as input and soft targets.
CASES = [
    ("binary", (7,), {}),
    ("binary", (5, 3), {"reduction": "none", "mask": True}),
    ("binary", (3, 1, 4), {"reduction": "sum", "from_logits": False}),
    ("multilabel", (4, 3), {"class_weights": [0.2, 1.0, 3.0], "soft": True}),
    ("multilabel", (1, 6), {"reduction": "none", "mask": True, "from_logits": False}),
    ("multilabel", (2, 3, 2), {"batch": True, "reduction": "none"}),
    ("multiclass", (5, 3), {"reduction": "none", "ignore_index": 255}),
    ("multiclass", (9,), {"include_background": False, "class_weights": [5.0, 1.0, 2.0],
                          "mask": True}),
    ("multiclass", (3, 2, 3), {"reduction": "sum", "batch": True, "from_logits": False}),
    ("multiclass", (4, 3), {"soft": True, "reduction": "none"}),
]


def case_id(case) -> str:
    mode, spatial, opts = case
    extra = "-".join(sorted(opts)) or "plain"
    return f"{mode}-{'x'.join(map(str, spatial))}-{extra}"


def build(case, *, seed: int = 0, batch: int = 2, channels: int = 3, drop=()):
    """Random numpy inputs for a case: (logits, target, mask or None, keyword arguments).

    ``logits`` holds probabilities when the case says ``from_logits=False``. Every sample has
    foreground and background in every channel (every class present in multiclass), except
    where ``ignore_index`` or the mask removes voxels.
    """
    mode, spatial, opts = case
    rng = np.random.default_rng(seed)
    c = 1 if mode == "binary" else channels
    logits = rng.normal(size=(batch, c, *spatial)) * 1.5
    n = int(np.prod(spatial))
    if mode == "multiclass":
        if opts.get("soft"):
            raw = rng.random((batch, c, *spatial)) ** 3
            target = raw / raw.sum(axis=1, keepdims=True)
        else:
            target = rng.integers(0, c, size=(batch, *spatial))
            flat = target.reshape(batch, -1)
            flat[:, :c] = np.arange(c)
            if "ignore_index" in opts:
                flat[:, -1] = opts["ignore_index"]
                flat[:, c:][rng.random((batch, n - c)) < 0.2] = opts["ignore_index"]
    else:
        target = rng.random((batch, c, *spatial))
        if not opts.get("soft"):
            target = (target > 0.5).astype(np.float64)
        flat = target.reshape(batch, c, -1)
        flat[..., 0], flat[..., 1] = 1.0, 0.0
    mask = None
    if opts.get("mask"):
        mask = rng.random((batch, 1, *spatial)) > 0.3
        mask.reshape(batch, -1)[:, :2] = True
        if mode == "multiclass":
            mask.reshape(batch, -1)[:, :c] = True
    kw = {"mode": mode}
    for key in ("reduction", "batch", "class_weights", "ignore_index", "include_background",
                "from_logits"):
        if key in opts and key not in drop:
            kw[key] = opts[key]
    if not kw.get("from_logits", True):
        logits = activate(logits, mode)
    return logits, target, mask, kw


def as_torch(logits, target, mask):
    """The numpy case as tensors: float64 logits and float targets, int64 labels, bool mask."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(logits, dtype=np.float64))
    target = np.asarray(target)
    y = torch.from_numpy(target.astype(np.int64 if target.dtype.kind in "iu" else np.float64))
    m = None if mask is None else torch.from_numpy(np.asarray(mask, dtype=bool))
    return x, y, m
