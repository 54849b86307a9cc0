"""Independent NumPy references for ``ssim``, ``correlation_ssim`` and the two hybrid losses.

Written from the formulas (Wang et al. 2004; Zhao et al. 2019; SPEC section 3), in float64,
one voxel at a time: every local statistic is an explicit weighted sum over the voxels of the
window that lie inside the image and are valid, so no filtering code is shared with the
library. The focal, Jaccard and cross-entropy terms of the hybrids are restated here too.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np

C1 = 0.01 ** 2
C2 = 0.03 ** 2
EPS = 1e-7


# --------------------------------------------------------------------------- inputs


def _arr(x) -> np.ndarray:
    return np.asarray(x.detach().cpu().double().numpy() if hasattr(x, "detach") else x)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _log_sigmoid(x):
    return -np.logaddexp(0.0, -x)


def _log_softmax(x):
    m = x.max(axis=1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=1, keepdims=True))


def prepare_np(logits, target, mask=None, *, mode, from_logits=True, ignore_index=None):
    """Return p, log p, log(1 - p), the float target (B, C, *S) and the valid map (B, C, *S)."""
    x = _arr(logits)
    b, c = x.shape[:2]
    spatial = x.shape[2:]
    valid = np.ones(x.shape, dtype=bool)
    if mode == "multiclass":
        tgt = _arr(target)
        if tgt.shape == x.shape:
            t = tgt.astype(np.float64)
        else:
            labels = tgt.reshape(b, *spatial).astype(np.int64)
            keep = np.ones(labels.shape, bool) if ignore_index is None else labels != ignore_index
            labels = np.where(keep, labels, 0)
            t = (labels[:, None] == np.arange(c).reshape(1, c, *([1] * len(spatial))))
            t = t.astype(np.float64)
            valid &= keep[:, None]
        if from_logits:
            logp = _log_softmax(x)
            p = np.exp(logp)
            log1mp = np.log1p(-p)
        else:
            p = x
            q = np.clip(x, EPS, 1 - EPS)
            logp, log1mp = np.log(q), np.log1p(-q)
    else:
        t = _arr(target).astype(np.float64)
        if ignore_index is not None:
            keep = t != ignore_index
            valid &= keep
            t = np.where(keep, t, 0.0)
        if from_logits:
            p, logp, log1mp = _sigmoid(x), _log_sigmoid(x), _log_sigmoid(-x)
        else:
            p = x
            q = np.clip(x, EPS, 1 - EPS)
            logp, log1mp = np.log(q), np.log1p(-q)
    if mask is not None:
        m = _arr(mask).astype(bool).reshape(b, 1, *spatial)
        valid &= m
    t = np.where(valid, t, 0.0)
    return p, logp, log1mp, t, valid


def _reduce(per_sample, reduction):
    per_sample = np.asarray(per_sample, dtype=np.float64)
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "sum":
        return per_sample.sum()
    return per_sample


def _channel_average(per_channel, mode, include_background, class_weights):
    """Average L[b, c] over the channels used, weighted by normalised class weights."""
    c = per_channel.shape[1]
    skip_background = mode == "multiclass" and not include_background
    used = list(range(1, c)) if skip_background else list(range(c))
    w = np.ones(c) if class_weights is None else np.asarray(class_weights, dtype=np.float64)
    w = w[used] / w[used].sum()
    return (per_channel[:, used] * w).sum(axis=1)


@functools.lru_cache(maxsize=64)
def _windows(shape, radius):
    """For every voxel index: the in-image neighbour indices and their offsets (cached)."""
    offsets = list(itertools.product(range(-radius, radius + 1), repeat=len(shape)))
    out = []
    for idx in itertools.product(*[range(n) for n in shape]):
        neigh, offs = [], []
        for o in offsets:
            j = tuple(i + d for i, d in zip(idx, o))
            if all(0 <= jj < n for jj, n in zip(j, shape)):
                neigh.append(j)
                offs.append(o)
        out.append((idx, tuple(neigh), np.asarray(offs, dtype=np.float64)))
    return out


# --------------------------------------------------------------------------- ssim


def ssim_map_np(p, t, valid, window=11, sigma=1.5):
    """Per-voxel SSIM of one (sample, channel) array pair; NaN on invalid voxels.

    Local statistics at voxel i: Gaussian weights exp(-|o|^2 / (2 sigma^2)) of the offsets o
    within the window, restricted to neighbours inside the image and valid, normalised to 1.
    """
    out = np.full(p.shape, np.nan)
    radius = (window - 1) // 2
    for idx, neigh, offs in _windows(p.shape, radius):
        if not valid[idx]:
            continue
        g = np.exp(-(offs ** 2).sum(axis=1) / (2.0 * sigma ** 2))
        keep = np.array([valid[j] for j in neigh])
        g = g[keep]
        g = g / g.sum()
        pv = np.array([p[j] for j, k in zip(neigh, keep) if k])
        tv = np.array([t[j] for j, k in zip(neigh, keep) if k])
        mp, mt = (g * pv).sum(), (g * tv).sum()
        vp = (g * (pv - mp) ** 2).sum()
        vt = (g * (tv - mt) ** 2).sum()
        cov = (g * (pv - mp) * (tv - mt)).sum()
        num = (2 * mp * mt + C1) * (2 * cov + C2)
        out[idx] = num / ((mp ** 2 + mt ** 2 + C1) * (vp + vt + C2))
    return out


def ssim_loss_np(logits, target, mask=None, *, mode, from_logits=True, reduction="mean",
                 include_background=True, ignore_index=None, class_weights=None, window=11,
                 sigma=1.5):
    """L[b, c] = 1 - mean over valid voxels of the SSIM map; channels averaged as region terms."""
    p, _, _, t, valid = prepare_np(logits, target, mask, mode=mode, from_logits=from_logits,
                                   ignore_index=ignore_index)
    b, c = p.shape[:2]
    per_channel = np.zeros((b, c))
    for i in range(b):
        for k in range(c):
            v = valid[i, k]
            if not v.any():
                continue
            s = ssim_map_np(p[i, k], t[i, k], v, window, sigma)
            per_channel[i, k] = 1.0 - s[v].mean()
    per_sample = _channel_average(per_channel, mode, include_background, class_weights)
    return _reduce(per_sample, reduction)


# --------------------------------------------------------------------------- correlation ssim


def structural_error_np(p, t, valid, window=3, c=0.01):
    """e of one (sample, channel): standardised maps over a clipped, valid-only box; 0 off-mask."""
    e = np.zeros(p.shape)
    radius = (window - 1) // 2
    for idx, neigh, _ in _windows(p.shape, radius):
        if not valid[idx]:
            continue
        pv = np.array([p[j] for j in neigh if valid[j]])
        tv = np.array([t[j] for j in neigh if valid[j]])
        mp, mt = pv.mean(), tv.mean()
        sp = np.sqrt(((pv - mp) ** 2).mean())
        st = np.sqrt(((tv - mt) ** 2).mean())
        a = (t[idx] - mt + c) / (st + c)
        b = (p[idx] - mp + c) / (sp + c)
        # the two terms equal up to rounding (relative 1e-12) count as equal: e = 0
        e[idx] = abs(a - b) if abs(a - b) > 1e-12 * (abs(a) + abs(b)) else 0.0
    return e


def correlation_ssim_loss_np(logits, target, mask=None, *, mode, from_logits=True,
                             reduction="mean", include_background=True, ignore_index=None,
                             class_weights=None, beta=0.1, window=3, c=0.01, return_weights=False):
    """L[b] = sum e f CE / sum f over channels and valid voxels of sample b (0 if sum f = 0).

    Binary/multilabel: per-channel binary CE (times the channel's class weight). Multiclass:
    the categorical CE of the voxel, -sum_c w_c t_c log p_c, shared by the class channels.
    With ``return_weights`` also return the per-voxel weights e f / sum f of the CE terms.
    """
    p, logp, log1mp, t, valid = prepare_np(logits, target, mask, mode=mode,
                                           from_logits=from_logits, ignore_index=ignore_index)
    b, ch = p.shape[:2]
    cw = np.ones(ch) if class_weights is None else np.asarray(class_weights, dtype=np.float64)
    cw = cw.reshape(1, ch, *([1] * (p.ndim - 2)))
    if mode == "multiclass":
        ce = np.repeat(-(cw * t * logp).sum(axis=1, keepdims=True), ch, axis=1)
    else:
        ce = -cw * (t * logp + (1 - t) * log1mp)
    per_sample = np.zeros(b)
    weights = np.zeros(p.shape)
    for i in range(b):
        e = np.stack([structural_error_np(p[i, k], t[i, k], valid[i, k], window, c)
                      for k in range(ch)])
        f = (e > beta * e.max()) & valid[i]
        m = f.sum()
        if m == 0:
            continue
        per_sample[i] = (e * f * ce[i]).sum() / m
        weights[i] = e * f / m
    out = _reduce(per_sample, reduction)
    return (out, weights) if return_weights else out


# --------------------------------------------------------------------------- hybrid parts


def focal_np(logits, target, mask=None, *, mode, alpha=0.25, gamma=2.0, ignore_index=None,
             class_weights=None, from_logits=True):
    """Per-sample focal loss: mean over valid voxels (and channels unless multiclass)."""
    p, logp, log1mp, t, valid = prepare_np(logits, target, mask, mode=mode,
                                           from_logits=from_logits, ignore_index=ignore_index)
    ch = p.shape[1]
    cw = np.ones(ch) if class_weights is None else np.asarray(class_weights, dtype=np.float64)
    cw = cw.reshape(1, ch, *([1] * (p.ndim - 2)))
    if mode == "multiclass":
        # -sum_c w_c t_c (1 - p_c)^gamma log p_c: -(1 - p_y)^gamma log p_y for one-hot t;
        # alpha does not enter the multiclass term
        term = -(cw * t * (1 - p) ** gamma * logp)
        term = term.sum(axis=1, keepdims=True)
        v = valid[:, :1]
    else:
        a1, a0 = (1.0, 1.0) if alpha is None else (alpha, 1 - alpha)
        term = -cw * (a1 * t * (1 - p) ** gamma * logp + a0 * (1 - t) * p ** gamma * log1mp)
        v = valid
    v = np.broadcast_to(v, term.shape)
    b = p.shape[0]
    return np.array([term[i][v[i]].sum() / max(v[i].sum(), 1) for i in range(b)])


def bce_np(logits, target, mask=None, *, mode, ignore_index=None, class_weights=None,
           from_logits=True):
    """Per-sample cross-entropy: mean over valid voxels (and channels unless multiclass)."""
    return focal_np(logits, target, mask, mode=mode, alpha=None, gamma=0.0,
                    ignore_index=ignore_index, class_weights=class_weights,
                    from_logits=from_logits)


def jaccard_np(logits, target, mask=None, *, mode, smooth=1.0, include_background=True,
               ignore_index=None, class_weights=None, from_logits=True):
    """Per-sample 1 - (TP + s) / (TP + FP + FN + s), averaged over the channels used."""
    p, _, _, t, valid = prepare_np(logits, target, mask, mode=mode, from_logits=from_logits,
                                   ignore_index=ignore_index)
    axes = tuple(range(2, p.ndim))
    v = valid.astype(np.float64)
    tp = (p * t * v).sum(axis=axes)
    fp = (p * (1 - t) * v).sum(axis=axes)
    fn = ((1 - p) * t * v).sum(axis=axes)
    per_channel = 1.0 - (tp + smooth) / (tp + fp + fn + smooth)
    return _channel_average(per_channel, mode, include_background, class_weights)


def hybrid_loss_np(kind, logits, target, mask=None, *, mode, reduction="mean",
                   include_background=True, ignore_index=None, class_weights=None,
                   focal_alpha=0.25, focal_gamma=2.0, ssim_window=11, ssim_sigma=1.5,
                   jaccard_smooth=1.0, lambda_pixel=1.0, lambda_ssim=1.0, lambda_jaccard=1.0,
                   from_logits=True):
    """``kind="unet3p"``: focal + ssim + jaccard; ``kind="basnet"``: bce + ssim + jaccard."""
    common = dict(mode=mode, ignore_index=ignore_index, class_weights=class_weights,
                  from_logits=from_logits)
    if kind == "unet3p":
        pixel = focal_np(logits, target, mask, alpha=focal_alpha, gamma=focal_gamma, **common)
    else:
        pixel = bce_np(logits, target, mask, **common)
    ssim = ssim_loss_np(logits, target, mask, reduction="none",
                        include_background=include_background, window=ssim_window,
                        sigma=ssim_sigma, **common)
    jac = jaccard_np(logits, target, mask, smooth=jaccard_smooth,
                     include_background=include_background, **common)
    return _reduce(lambda_pixel * pixel + lambda_ssim * ssim + lambda_jaccard * jac, reduction)


# --------------------------------------------------------------------------- test inputs


def make_case(mode: str, spatial: tuple[int, ...], batch: int = 2, channels: int = 3,
              seed: int = 0, scale: float = 2.0, soft: bool = False):
    """Seeded torch inputs for the SSIM-family tests: ``(logits, target, mask)``.

    float64 (B, C, *S) logits (C = 1 for binary) scaled by ``scale``; int64 (B, *S) labels
    (multiclass) or a float64 (B, C, *S) target, hard {0, 1} unless ``soft``; a boolean
    (B, 1, *S) mask keeping about 70% of the voxels.
    """
    import torch

    g = torch.Generator().manual_seed(seed)
    c = 1 if mode == "binary" else channels
    logits = torch.randn(batch, c, *spatial, generator=g, dtype=torch.float64) * scale
    if mode == "multiclass":
        target = torch.randint(0, c, (batch, *spatial), generator=g)
    else:
        target = torch.rand(batch, c, *spatial, generator=g, dtype=torch.float64)
        if not soft:
            target = (target > 0.5).double()
    mask = torch.rand(batch, 1, *spatial, generator=g) > 0.3
    return logits, target, mask
