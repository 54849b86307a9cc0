"""Independent NumPy references for the cross-entropy family, Dice and their compounds.

Written from the formulas of SPEC section 3 and the primary papers, in float64, with explicit
per-sample loops over the valid voxels, and sharing no code with ``seglosses``. Every function
takes logits (or probabilities with ``from_logits=False``), a target, an optional mask and the
shared options, and returns the reduced value as a NumPy float64 array ((B,) for
``reduction="none"``).

Conventions re-stated here (SPEC section 2):
- binary/multilabel: sigmoid per channel; multiclass: softmax over channels, integer (B, *S)
  labels or a (B, C, *S) probability map;
- a voxel counts when ``mask`` is True there and its target is not ``ignore_index``
  (binary/multilabel: per (channel, voxel) entry);
- pixel losses: mean over valid entries (binary/multilabel: over channels and voxels,
  multiclass: over voxels of the class-summed term); ``class_weights`` multiply the entries of
  channel c (multiclass: the voxel's own class weight), not normalised;
- region terms: per (sample, channel) over the valid voxels, averaged over the channels used
  with class weights normalised over them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

EPS = 1e-7


def _np(x) -> np.ndarray | None:
    if x is None:
        return None
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


@dataclass
class Case:
    """Activated inputs: arrays of shape (B, C, *S) (``valid`` too)."""

    mode: str
    p: np.ndarray          # probabilities (unclamped)
    logp: np.ndarray       # log p
    log1mp: np.ndarray     # log(1 - p)
    t: np.ndarray          # float target, zero where invalid
    valid: np.ndarray      # bool
    cw: np.ndarray         # class weights (C,), ones when none were given
    channels: list[int]    # channels used by region terms


def activate(logits, target, mask=None, *, mode: str, from_logits: bool = True,
             ignore_index: int | None = None, class_weights=None,
             include_background: bool = True) -> Case:
    """Turn raw inputs into probabilities, logs, float target and a validity map."""
    x = _np(logits).astype(np.float64)
    y = _np(target)
    b, c = x.shape[:2]
    if mode == "multiclass":
        if from_logits:
            z = x - x.max(axis=1, keepdims=True)
            lse = np.log(np.exp(z).sum(axis=1, keepdims=True))
            logp = z - lse
            p = np.exp(logp)
        else:
            p = x
            logp = np.log(np.clip(x, EPS, 1 - EPS))
        with np.errstate(divide="ignore"):  # -inf only where p == 1, then unused
            log1mp = np.log1p(-np.exp(logp))
    else:
        if from_logits:
            p = 1.0 / (1.0 + np.exp(-x))
            logp = -np.logaddexp(0.0, -x)
            log1mp = -np.logaddexp(0.0, x)
        else:
            p = x
            q = np.clip(x, EPS, 1 - EPS)
            logp, log1mp = np.log(q), np.log1p(-q)
    valid = np.ones(x.shape, dtype=bool)
    if mode == "multiclass" and y.shape != x.shape:
        labels = y.reshape((b,) + x.shape[2:]).astype(np.int64)
        keep = np.ones(labels.shape, dtype=bool) if ignore_index is None else labels != ignore_index
        t = np.zeros(x.shape)
        for k in range(c):
            t[:, k] = (labels == k) & keep
        valid &= keep[:, None]
    else:
        t = y.astype(np.float64)
        if ignore_index is not None:
            valid &= y != ignore_index
    if mask is not None:
        m = _np(mask).astype(bool)
        if m.ndim == x.ndim - 1:
            m = m[:, None]
        valid &= m
    t = np.where(valid, t, 0.0)
    cw = np.ones(c) if class_weights is None else np.asarray(class_weights, dtype=np.float64)
    channels = list(range(1, c)) if (mode == "multiclass" and not include_background) \
        else list(range(c))
    return Case(mode, p, logp, log1mp, t, valid, cw, channels)


def reduce(per_sample, reduction: str) -> np.ndarray:
    v = np.asarray(per_sample, dtype=np.float64)
    if reduction == "mean":
        return np.asarray(v.mean())
    if reduction == "sum":
        return np.asarray(v.sum())
    return v


# --------------------------------------------------------------------------- pixel terms


def _entry_mean(case: Case, term: np.ndarray) -> np.ndarray:
    """Per-sample mean of a per-entry term (B, C, *S), class-weighted, over valid entries."""
    out = []
    for b in range(term.shape[0]):
        vals, n = 0.0, 0
        for c in range(term.shape[1]):
            sel = case.valid[b, c]
            vals += case.cw[c] * term[b, c][sel].sum()
            n += int(sel.sum())
        out.append(vals / n if n else 0.0)
    return np.array(out)


def _voxel_mean(case: Case, term: np.ndarray) -> np.ndarray:
    """Per-sample mean of a class-summed multiclass term (B, *S) over valid voxels."""
    out = []
    for b in range(term.shape[0]):
        sel = case.valid[b, 0]
        out.append(term[b][sel].mean() if sel.any() else 0.0)
    return np.array(out)


def _ce_entries(case: Case) -> np.ndarray:
    """Binary/multilabel entries -[t log p + (1-t) log(1-p)], or multiclass (B, *S) terms."""
    t = case.t
    if case.mode == "multiclass":
        w = case.cw.reshape((1, -1) + (1,) * (t.ndim - 2))
        return -(w * t * case.logp).sum(axis=1)
    return -(t * case.logp + (1 - t) * case.log1mp)


def bce(logits, target, mask=None, *, mode, reduction="mean", **kw) -> np.ndarray:
    """Cross-entropy (SPEC: bce)."""
    case = activate(logits, target, mask, mode=mode, **kw)
    ce = _ce_entries(case)
    per = _voxel_mean(case, ce) if mode == "multiclass" else _entry_mean(case, ce)
    return reduce(per, reduction)


def _weighted_entries(case: Case, pos, neg) -> np.ndarray:
    return -(pos * case.t * case.logp + neg * (1 - case.t) * case.log1mp)


def weighted_bce(logits, target, mask=None, *, mode, reduction="mean", beta=None,
                 **kw) -> np.ndarray:
    """-[beta t log p + (1-t) log(1-p)]; beta=None: N_neg/N_pos per channel over the batch."""
    case = activate(logits, target, mask, mode=mode, **kw)
    c = case.t.shape[1]
    if beta is None:
        betas = np.empty(c)
        for k in range(c):
            sel = case.valid[:, k]
            n_pos = case.t[:, k][sel].sum()
            n_neg = sel.sum() - n_pos
            betas[k] = 1e3 if n_pos == 0 else min(max(n_neg / n_pos, 1e-3), 1e3)
        pos = betas.reshape((1, -1) + (1,) * (case.t.ndim - 2))
    else:
        pos = beta
    return reduce(_entry_mean(case, _weighted_entries(case, pos, 1.0)), reduction)


def balanced_bce(logits, target, mask=None, *, mode, reduction="mean", **kw) -> np.ndarray:
    """-[beta t log p + (1-beta)(1-t) log(1-p)], beta = 1 - sum t / N per sample and channel."""
    case = activate(logits, target, mask, mode=mode, **kw)
    bsz, c = case.t.shape[:2]
    beta = np.ones((bsz, c) + (1,) * (case.t.ndim - 2))
    for b in range(bsz):
        for k in range(c):
            sel = case.valid[b, k]
            if sel.any():
                beta[b, k] = 1.0 - case.t[b, k][sel].sum() / sel.sum()
    return reduce(_entry_mean(case, _weighted_entries(case, beta, 1.0 - beta)), reduction)


def _focal_terms(case: Case, alpha, gamma) -> np.ndarray:
    t, p = case.t, case.p
    if case.mode == "multiclass":
        c = t.shape[1]
        w = (np.ones(c) * case.cw).reshape((1, -1) + (1,) * (t.ndim - 2))
        return -(w * t * (1 - p) ** gamma * case.logp).sum(axis=1)
    a_pos, a_neg = (1.0, 1.0) if alpha is None else (alpha, 1 - alpha)
    return -(a_pos * t * (1 - p) ** gamma * case.logp
             + a_neg * (1 - t) * p ** gamma * case.log1mp)


def focal(logits, target, mask=None, *, mode, reduction="mean", alpha=0.25, gamma=2.0,
          **kw) -> np.ndarray:
    """Focal loss (Lin et al. 2017); multiclass: -(1 - p_y)^gamma log p_y, alpha not used."""
    case = activate(logits, target, mask, mode=mode, **kw)
    f = _focal_terms(case, alpha, gamma)
    per = _voxel_mean(case, f) if mode == "multiclass" else _entry_mean(case, f)
    return reduce(per, reduction)


def _topk_per_sample(case: Case, k: float) -> np.ndarray:
    ce = _ce_entries(case)
    out = []
    for b in range(ce.shape[0]):
        if case.mode == "multiclass":
            vals = ce[b][case.valid[b, 0]]
        else:
            w = case.cw.reshape((-1,) + (1,) * (ce.ndim - 2))
            vals = (w * ce[b])[case.valid[b]]
        n = vals.size
        if n == 0:
            out.append(0.0)
            continue
        count = max(1, math.ceil(round(k * n, 9)))
        out.append(np.sort(vals)[::-1][:count].mean())
    return np.array(out)


def topk_ce(logits, target, mask=None, *, mode, reduction="mean", k=0.1, **kw) -> np.ndarray:
    """Mean of the largest ceil(k N) valid per-entry CE values of each sample."""
    case = activate(logits, target, mask, mode=mode, **kw)
    return reduce(_topk_per_sample(case, k), reduction)


# --------------------------------------------------------------------------- region terms


def dice_scores(case: Case, smooth: float, squared: bool = False,
                batch: bool = False) -> np.ndarray:
    """(2 TP + s)/(sum p + sum t + s) per (sample, channel) over valid voxels: (B or 1, C)."""
    bsz, c = case.t.shape[:2]
    groups = [list(range(bsz))] if batch else [[b] for b in range(bsz)]
    out = np.zeros((len(groups), c))
    for g, members in enumerate(groups):
        for k in range(c):
            tp = sp = st = 0.0
            for b in members:
                sel = case.valid[b, k]
                p, t = case.p[b, k][sel], case.t[b, k][sel]
                tp += (p * t).sum()
                sp += (p ** 2).sum() if squared else p.sum()
                st += (t ** 2).sum() if squared else t.sum()
            out[g, k] = (2 * tp + smooth) / (sp + st + smooth)
    return out


def _channel_mean(case: Case, per_channel: np.ndarray) -> np.ndarray:
    w = case.cw[case.channels]
    return (per_channel[:, case.channels] * w).sum(axis=1) / w.sum()


def dice(logits, target, mask=None, *, mode, reduction="mean", smooth=1.0, squared=False,
         batch=False, **kw) -> np.ndarray:
    """1 - soft Dice, channel-averaged."""
    case = activate(logits, target, mask, mode=mode, **kw)
    return reduce(_channel_mean(case, 1 - dice_scores(case, smooth, squared, batch)), reduction)


def combo(logits, target, mask=None, *, mode, reduction="mean", alpha=0.5, beta=0.5,
          smooth=1.0, **kw) -> np.ndarray:
    """alpha * mean(-[beta t log p + (1-beta)(1-t) log(1-p)]) - (1 - alpha) * DSC."""
    case = activate(logits, target, mask, mode=mode, **kw)
    ce = _entry_mean(case, _weighted_entries(case, beta, 1 - beta))
    dsc = _channel_mean(case, dice_scores(case, smooth))
    return reduce(alpha * ce - (1 - alpha) * dsc, reduction)


def exp_log(logits, target, mask=None, *, mode, reduction="mean", w_dice=0.8, w_cross=0.2,
            gamma=0.3, smooth=1.0, balanced=True, **kw) -> np.ndarray:
    """Wong et al. 2018: w_dice mean_c (-ln DSC_c)^g + w_cross mean_i w_y (-ln p_y)^g."""
    case = activate(logits, target, mask, mode=mode, **kw)
    dice_term = _channel_mean(case, (-np.log(dice_scores(case, smooth))) ** gamma)
    bsz, c = case.t.shape[:2]
    cross = np.zeros(bsz)
    for b in range(bsz):
        if mode == "multiclass":
            sel = case.valid[b, 0]
            n = sel.sum()
            if n == 0:
                continue
            total = 0.0
            for k in range(c):
                t_k = case.t[b, k][sel]
                n_k = t_k.sum()
                w = (np.sqrt(n / n_k) if n_k > 0 else 0.0) if balanced else 1.0
                total += (case.cw[k] * w * t_k * (-case.logp[b, k][sel]) ** gamma).sum()
            cross[b] = total / n
        else:
            total, count = 0.0, 0
            for k in range(c):
                sel = case.valid[b, k]
                n = sel.sum()
                if n == 0:
                    continue
                t_k = case.t[b, k][sel]
                n_pos, n_neg = t_k.sum(), n - t_k.sum()
                w_pos = (np.sqrt(n / n_pos) if n_pos > 0 else 0.0) if balanced else 1.0
                w_neg = (np.sqrt(n / n_neg) if n_neg > 0 else 0.0) if balanced else 1.0
                term = (w_pos * t_k * (-case.logp[b, k][sel]) ** gamma
                        + w_neg * (1 - t_k) * (-case.log1mp[b, k][sel]) ** gamma)
                total += case.cw[k] * term.sum()
                count += n
            cross[b] = total / count if count else 0.0
    return reduce(w_dice * dice_term + w_cross * cross, reduction)


def dice_ce(logits, target, mask=None, *, mode, reduction="mean", lambda_dice=1.0,
            lambda_ce=1.0, smooth=1.0, **kw) -> np.ndarray:
    d = dice(logits, target, mask, mode=mode, reduction="none", smooth=smooth, **kw)
    c = bce(logits, target, mask, mode=mode, reduction="none", **kw)
    return reduce(lambda_dice * d + lambda_ce * c, reduction)


def dice_focal(logits, target, mask=None, *, mode, reduction="mean", lambda_dice=1.0,
               lambda_focal=1.0, smooth=1.0, alpha=0.25, gamma=2.0, **kw) -> np.ndarray:
    d = dice(logits, target, mask, mode=mode, reduction="none", smooth=smooth, **kw)
    f = focal(logits, target, mask, mode=mode, reduction="none", alpha=alpha, gamma=gamma, **kw)
    return reduce(lambda_dice * d + lambda_focal * f, reduction)


def dice_topk(logits, target, mask=None, *, mode, reduction="mean", lambda_dice=1.0,
              lambda_topk=1.0, smooth=1.0, k=0.1, **kw) -> np.ndarray:
    d = dice(logits, target, mask, mode=mode, reduction="none", smooth=smooth, **kw)
    t = topk_ce(logits, target, mask, mode=mode, reduction="none", k=k, **kw)
    return reduce(lambda_dice * d + lambda_topk * t, reduction)


# --------------------------------------------------------------------------- inputs


SPATIAL = {1: (13,), 2: (5, 7), 3: (3, 4, 5)}


def random_case(mode: str, ndim: int = 2, *, batch: int = 2, channels: int = 3, seed: int = 0,
                soft: bool = False, scale: float = 2.0, spatial: tuple[int, ...] | None = None):
    """Random float64 logits and a target (numpy), odd non-square spatial sizes.

    Binary/multilabel targets are {0, 1} (or uniform soft labels with ``soft``); multiclass
    targets are int64 labels (or a Dirichlet-like probability map with ``soft``). ``spatial``
    overrides the default size of ``ndim`` dims.
    """
    rng = np.random.default_rng(seed)
    spatial = SPATIAL[ndim] if spatial is None else spatial
    c = 1 if mode == "binary" else channels
    logits = rng.normal(size=(batch, c, *spatial)) * scale
    if mode == "multiclass":
        if soft:
            raw = rng.random((batch, c, *spatial)) ** 3
            target = raw / raw.sum(axis=1, keepdims=True)
        else:
            target = rng.integers(0, c, size=(batch, *spatial))
    else:
        target = rng.random((batch, c, *spatial)) if soft else \
            (rng.random((batch, c, *spatial)) < 0.35).astype(np.float64)
    return logits, target


def random_mask(logits: np.ndarray, seed: int = 1, keep: float = 0.7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    b = logits.shape[0]
    return rng.random((b, 1, *logits.shape[2:])) < keep


# --------------------------------------------------------------------------- a shared case table

#: (id, mode, ndim, option) rows used by the reference tests of every loss of this module.
STANDARD_CASES = (
    [(f"{m}-{d}d", m, d, "plain") for m in ("binary", "multilabel", "multiclass")
     for d in (1, 2, 3)]
    + [(f"{m}-{o}", m, 2 if o != "mask3d" else 3, o)
       for m in ("binary", "multilabel", "multiclass")
       for o in ("mask", "mask3d", "ignore", "class_weights", "soft", "probs", "batch1")]
    + [(f"{m}-thin", m, 2, "thin") for m in ("binary", "multilabel", "multiclass")]
    + [("multiclass-no_background", "multiclass", 2, "no_background"),
       ("multiclass-ignore_mask_weights", "multiclass", 3, "ignore_mask_weights")]
)


def build_case(mode: str, ndim: int, option: str, seed: int = 0):
    """Inputs for one row of :data:`STANDARD_CASES`: (logits, target, mask, shared kwargs)."""
    rng = np.random.default_rng(seed + 100)
    logits, target = random_case(mode, ndim, seed=seed, soft=option == "soft",
                                 batch=1 if option == "batch1" else 2,
                                 spatial=(1, 9) if option == "thin" else None)
    mask = None
    kw: dict = {"mode": mode}
    c = logits.shape[1]
    weights = [0.5, 2.0, 1.0][:c] if c > 1 else [2.0]
    if option in ("mask", "mask3d", "ignore_mask_weights"):
        mask = random_mask(logits, seed=seed + 1)
        if option == "mask3d":
            mask = mask[:, 0]  # the (B, *S) layout
    if option in ("ignore", "ignore_mask_weights"):
        if mode == "multiclass":
            target = np.where(rng.random(target.shape) < 0.25, 255, target)
        else:
            target = np.where(rng.random(target.shape) < 0.2, 255.0, target)
        kw["ignore_index"] = 255
    if option in ("class_weights", "ignore_mask_weights"):
        kw["class_weights"] = weights
    if option == "probs":
        if mode == "multiclass":
            e = np.exp(logits - logits.max(axis=1, keepdims=True))
            logits = e / e.sum(axis=1, keepdims=True)
        else:
            logits = 1.0 / (1.0 + np.exp(-logits))
        kw["from_logits"] = False
    if option == "no_background":
        kw["include_background"] = False
        kw["class_weights"] = [5.0, 1.0, 3.0]
    return logits, target, mask, kw


def _torch(x):
    import torch

    return None if x is None else torch.from_numpy(np.ascontiguousarray(x))


def assert_matches_reference(function, reference, logits, target, mask=None, *,
                             rtol: float = 1e-6, atol: float = 1e-12, **kwargs) -> None:
    """``function`` (a torch loss) equals ``reference`` for reductions none, mean and sum."""
    for reduction in ("none", "mean", "sum"):
        got = function(_torch(logits), _torch(target), _torch(mask), reduction=reduction,
                       **kwargs)
        expected = reference(logits, target, mask, reduction=reduction, **kwargs)
        assert str(got.dtype) == "torch.float64"
        np.testing.assert_allclose(got.detach().numpy(), expected, rtol=rtol, atol=atol,
                                   err_msg=f"reduction={reduction}")
