"""Independent NumPy + SciPy references for the four distance-map losses.

Written from the formulas of SPEC sections 2 and 3 (and the primary papers), in float64, one
sample and one class channel at a time, with ``scipy.ndimage`` for the distance transforms and
the erosion that finds a predicted boundary. Nothing here imports the library.

Conventions mirrored from SPEC section 2 and the loss docs:

- masked voxels (``mask`` False) and ignored voxels (``ignore_index``) count nowhere: they are
  left out of the means and take no part in the distance maps, i.e. a valid voxel's distance is
  to the nearest *valid* voxel of the other side;
- a (sample, channel) whose valid voxels are all foreground or all background has an all-zero
  distance map;
- pixel losses average over the valid voxels and the channels (multiclass cross-entropy terms
  are summed over classes first); ``class_weights`` multiply channel c (not normalised).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

EPS = 1e-7


# --------------------------------------------------------------------------- inputs


def _log_sigmoid(x: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -x)


def _log_softmax(x: np.ndarray) -> np.ndarray:
    m = x.max(axis=1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=1, keepdims=True))


class Inputs:
    """Activated inputs: p, log p, log(1 - p), float target t, valid map, channels used."""

    def __init__(self, logits, target, mask=None, *, mode, from_logits=True,
                 include_background=True, ignore_index=None, class_weights=None):
        x = np.asarray(logits, dtype=np.float64)
        b, c = x.shape[:2]
        spatial = x.shape[2:]
        self.mode = mode
        valid = np.ones((b, 1, *spatial), dtype=bool)
        if mode == "multiclass":
            tgt = np.asarray(target)
            if tgt.shape == x.shape:
                t = tgt.astype(np.float64)
            else:
                labels = tgt.reshape(b, *spatial).astype(np.int64)
                if ignore_index is not None:
                    valid = valid & (labels != ignore_index)[:, None]
                    labels = np.where(labels == ignore_index, 0, labels)
                t = (labels[:, None] == np.arange(c).reshape(1, c, *([1] * len(spatial))))
                t = t.astype(np.float64)
            if from_logits:
                self.log_p = _log_softmax(x)
                self.p = np.exp(self.log_p)
            else:
                self.p = x
                self.log_p = np.log(np.clip(x, EPS, 1 - EPS))
            self.log_1mp = None
        else:
            t = np.asarray(target, dtype=np.float64)
            if ignore_index is not None:
                keep = t != ignore_index
                valid = valid & keep
                t = np.where(keep, t, 0.0)
            if from_logits:
                self.p = 1.0 / (1.0 + np.exp(-x))
                self.log_p = _log_sigmoid(x)
                self.log_1mp = _log_sigmoid(-x)
            else:
                self.p = x
                self.log_p = np.log(np.clip(x, EPS, 1 - EPS))
                self.log_1mp = np.log1p(-np.clip(x, EPS, 1 - EPS))
        if mask is not None:
            m = np.asarray(mask, dtype=bool).reshape(b, 1, *spatial)
            valid = valid & m
        self.valid = np.broadcast_to(valid, x.shape).copy()
        self.t = np.where(self.valid, t, 0.0)
        self.channels = list(range(1, c)) if (mode == "multiclass" and not include_background) \
            else list(range(c))
        self.cw = np.ones(c) if class_weights is None else np.asarray(class_weights, np.float64)
        self.shape = x.shape

    def predicted(self) -> np.ndarray:
        """Hard prediction per channel: p > 0.5, or the one-hot arg-max class in multiclass."""
        if self.mode == "multiclass":
            c = self.shape[1]
            top = np.argmax(self.p, axis=1)[:, None]
            return top == np.arange(c).reshape(1, c, *([1] * (len(self.shape) - 2)))
        return self.p > 0.5

    def cross_entropy(self) -> np.ndarray:
        """Per-voxel CE: (B, C, *S) binary/multilabel (unweighted), (B, 1, *S) multiclass
        (class-weighted sum over classes)."""
        if self.mode == "multiclass":
            cw = self.cw.reshape(1, -1, *([1] * (len(self.shape) - 2)))
            return -(cw * self.t * self.log_p).sum(axis=1, keepdims=True)
        return -(self.t * self.log_p + (1 - self.t) * self.log_1mp)


# --------------------------------------------------------------------------- distance maps


def _sampling(spacing, ndim):
    if spacing is None:
        return None
    if np.isscalar(spacing):
        return [float(spacing)] * ndim
    return [float(s) for s in spacing]


def dist_to_boundary(fg: np.ndarray, valid: np.ndarray, spacing=None) -> np.ndarray:
    """dist_to_boundary of one (sample, channel) mask among its valid voxels.

    A valid foreground voxel gets its distance to the nearest valid background voxel, a valid
    background voxel its distance to the nearest valid foreground voxel; invalid voxels 0. No
    valid foreground or no valid background: all zero. For an all-valid mask this is
    ``edt(m) + edt(~m)`` of SPEC section 2.
    """
    inside = fg & valid
    outside = ~fg & valid
    out = np.zeros(fg.shape, dtype=np.float64)
    if not inside.any() or not outside.any():
        return out
    sampling = _sampling(spacing, fg.ndim)
    to_outside = ndimage.distance_transform_edt(~outside, sampling=sampling)
    to_inside = ndimage.distance_transform_edt(~inside, sampling=sampling)
    out[inside] = to_outside[inside]
    out[outside] = to_inside[outside]
    return out


def dist_to_boundary_bruteforce(fg: np.ndarray, valid: np.ndarray, spacing=None) -> np.ndarray:
    """The same map by explicit nearest-voxel search (for checking the masked semantics)."""
    inside = fg & valid
    outside = ~fg & valid
    out = np.zeros(fg.shape, dtype=np.float64)
    if not inside.any() or not outside.any():
        return out
    scale = np.ones(fg.ndim) if spacing is None else np.asarray(_sampling(spacing, fg.ndim))
    coords = np.stack(np.meshgrid(*[np.arange(n) for n in fg.shape], indexing="ij"), -1) * scale
    for here, there in ((inside, outside), (outside, inside)):
        a = coords[here]
        b = coords[there]
        d = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)).min(axis=1)
        out[here] = d
    return out


def signed_distance(fg: np.ndarray, valid: np.ndarray, spacing=None) -> np.ndarray:
    """``edt(~m) - edt(m)`` among valid voxels: negative inside, positive outside."""
    d = dist_to_boundary(fg, valid, spacing)
    return np.where(fg & valid, -d, d)


def predicted_boundary(region: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Voxels of ``region`` with a face neighbour outside it.

    Outside the image counts as outside (``border_value=0``); invalid neighbours are treated as
    inside, so they never make a voxel a boundary voxel.
    """
    inside = region & valid
    structure = ndimage.generate_binary_structure(region.ndim, 1)
    eroded = ndimage.binary_erosion(inside | ~valid, structure=structure, border_value=0)
    return inside & ~eroded


def _per_item(fn, masks: np.ndarray, valid: np.ndarray, spacing=None) -> np.ndarray:
    out = np.zeros(masks.shape, dtype=np.float64)
    for b in range(masks.shape[0]):
        for c in range(masks.shape[1]):
            out[b, c] = fn(masks[b, c], valid[b, c], spacing)
    return out


# --------------------------------------------------------------------------- reductions


def _pixel_mean(per_voxel: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Mean over valid voxels and channels per sample; 0 for a sample with no valid voxel."""
    b = per_voxel.shape[0]
    w = np.broadcast_to(valid, per_voxel.shape).astype(np.float64)
    total = (per_voxel * w).reshape(b, -1).sum(axis=1)
    count = w.reshape(b, -1).sum(axis=1)
    return total / np.maximum(count, 1.0)


def _reduce(per_sample: np.ndarray, reduction: str):
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "sum":
        return per_sample.sum()
    return per_sample


def _channel_terms(inp: Inputs, per_voxel: np.ndarray) -> np.ndarray:
    """Per-channel terms weighted by class weights, restricted to the channels used: mean."""
    cw = inp.cw.reshape(1, -1, *([1] * (per_voxel.ndim - 2)))
    weighted = (per_voxel * cw)[:, inp.channels]
    return _pixel_mean(weighted, inp.valid[:, inp.channels])


# --------------------------------------------------------------------------- losses


def distance_penalty_ce(logits, target, mask=None, *, mode, from_logits=True, reduction="mean",
                        include_background=True, ignore_index=None, class_weights=None,
                        scale=1.0, spacing=None):
    """l = (1 + phi) CE, phi = scale (1 - d / max d), d = dist_to_boundary(t > 0.5).

    Multiclass: phi of a voxel is that of its own class, sum_c t_c phi_c.
    """
    inp = Inputs(logits, target, mask, mode=mode, from_logits=from_logits,
                 include_background=include_background, ignore_index=ignore_index,
                 class_weights=class_weights)
    d = _per_item(dist_to_boundary, inp.t > 0.5, inp.valid, spacing)
    b, c = d.shape[:2]
    phi = np.zeros_like(d)
    for i in range(b):
        for k in range(c):
            dmax = d[i, k][inp.valid[i, k]].max(initial=0.0)
            if dmax > 0:
                phi[i, k] = scale * (1.0 - d[i, k] / dmax)
    ce = inp.cross_entropy()
    if mode == "multiclass":
        phi = (inp.t * phi).sum(axis=1, keepdims=True)
        per_voxel = (1.0 + phi) * ce
        per_sample = _pixel_mean(per_voxel, inp.valid[:, :1])
    else:
        per_voxel = (1.0 + phi) * ce
        cw = inp.cw.reshape(1, -1, *([1] * (ce.ndim - 2)))
        per_sample = _pixel_mean(per_voxel * cw, inp.valid)
    return _reduce(per_sample, reduction)


def hausdorff_dt(logits, target, mask=None, *, mode, from_logits=True, reduction="mean",
                 include_background=True, ignore_index=None, class_weights=None, alpha=2.0,
                 spacing=None):
    """l = (p - t)^2 (d_t^alpha + d_p^alpha), per class channel (Karimi & Salcudean 2019).

    d_p comes from the hard prediction (``Inputs.predicted``).
    """
    inp = Inputs(logits, target, mask, mode=mode, from_logits=from_logits,
                 include_background=include_background, ignore_index=ignore_index,
                 class_weights=class_weights)
    d_t = _per_item(dist_to_boundary, inp.t > 0.5, inp.valid, spacing)
    d_p = _per_item(dist_to_boundary, inp.predicted(), inp.valid, spacing)
    per_voxel = (inp.p - inp.t) ** 2 * (d_t ** alpha + d_p ** alpha)
    return _reduce(_channel_terms(inp, per_voxel), reduction)


def boundary(logits, target, mask=None, *, mode, from_logits=True, reduction="mean",
             include_background=True, ignore_index=None, class_weights=None, spacing=None):
    """l = p * signed_distance(t > 0.5), per class channel (Kervadec et al. 2019)."""
    inp = Inputs(logits, target, mask, mode=mode, from_logits=from_logits,
                 include_background=include_background, ignore_index=ignore_index,
                 class_weights=class_weights)
    sd = _per_item(signed_distance, inp.t > 0.5, inp.valid, spacing)
    return _reduce(_channel_terms(inp, inp.p * sd), reduction)


def shape_aware(logits, target, mask=None, *, mode, from_logits=True, reduction="mean",
                include_background=True, ignore_index=None, class_weights=None, spacing=None):
    """l = (1 + E) CE, E = dist_to_boundary(t > 0.5) on the predicted boundary, 0 elsewhere.

    Multiclass: the predicted regions are the arg-max classes; E of a voxel sums over the
    class channels used (each voxel lies in exactly one predicted region).
    """
    inp = Inputs(logits, target, mask, mode=mode, from_logits=from_logits,
                 include_background=include_background, ignore_index=ignore_index,
                 class_weights=class_weights)
    d = _per_item(dist_to_boundary, inp.t > 0.5, inp.valid, spacing)
    edge = np.zeros(d.shape, dtype=bool)
    region = inp.predicted()
    for i in range(d.shape[0]):
        for k in range(d.shape[1]):
            edge[i, k] = predicted_boundary(region[i, k], inp.valid[i, k])
    e = np.where(edge, d, 0.0)
    ce = inp.cross_entropy()
    if mode == "multiclass":
        e = e[:, inp.channels].sum(axis=1, keepdims=True)
        per_sample = _pixel_mean((1.0 + e) * ce, inp.valid[:, :1])
    else:
        cw = inp.cw.reshape(1, -1, *([1] * (ce.ndim - 2)))
        per_sample = _pixel_mean((1.0 + e) * ce * cw, inp.valid)
    return _reduce(per_sample, reduction)


# --------------------------------------------------------------------------- test inputs

SHAPES = {1: (13,), 2: (7, 9), 3: (4, 5, 6)}
SPACINGS = {1: (0.7,), 2: (1.5, 0.6), 3: (2.0, 0.8, 1.3)}
IGNORE = {"multiclass": 255, "binary": -1, "multilabel": -1}
VARIANTS = ["plain", "mask", "weights", "mask_weights", "ignore", "no_background", "spacing",
            "probs", "soft"]


def random_case(mode: str, ndim: int, seed: int, *, batch: int = 2, classes: int = 3,
                shape: tuple[int, ...] | None = None):
    """Blobby random targets (smoothed noise) and logits leaning towards them, as NumPy.

    Returns ``(logits, target)``: float64 (B, C, *S) logits; a float (B, C, *S) target in
    {0, 1} (binary, multilabel) or int64 (B, *S) labels (multiclass).
    """
    rng = np.random.default_rng(seed)
    spatial = shape or SHAPES[ndim]
    c = 1 if mode == "binary" else classes
    size = (1, 1) + (3,) * len(spatial)
    fields = ndimage.uniform_filter(rng.standard_normal((batch, c, *spatial)), size=size,
                                    mode="wrap")
    noise = 1.5 * rng.standard_normal((batch, c, *spatial))
    if mode == "multiclass":
        labels = fields.argmax(axis=1)
        onehot = labels[:, None] == np.arange(c).reshape(1, c, *([1] * len(spatial)))
        return noise + (2.0 * onehot - 1.0), labels.astype(np.int64)
    target = (fields > 0).astype(np.float64)
    return noise + (2.0 * target - 1.0), target


def variant_case(mode: str, ndim: int, seed: int, variant: str):
    """Inputs and keyword arguments for one reference comparison.

    Returns ``(logits, target, mask, kwargs)`` as NumPy arrays (mask may be ``None``).
    """
    logits, target = random_case(mode, ndim, seed)
    rng = np.random.default_rng(1000 + seed)
    b, c = logits.shape[:2]
    spatial = logits.shape[2:]
    mask = None
    kwargs: dict = {"mode": mode}
    if variant in ("mask", "mask_weights"):
        mask = rng.random((b, 1, *spatial)) > 0.3
    if variant in ("weights", "mask_weights"):
        kwargs["class_weights"] = list(rng.uniform(0.2, 2.0, size=c))
    if variant == "ignore":
        kwargs["ignore_index"] = IGNORE[mode]
        drop = rng.random(target.shape) < 0.25
        target = np.where(drop, IGNORE[mode], target)
    if variant == "no_background":
        kwargs["include_background"] = False
    if variant == "spacing":
        kwargs["spacing"] = SPACINGS[ndim]
    if variant == "probs":
        kwargs["from_logits"] = False
        if mode == "multiclass":
            logits = np.exp(_log_softmax(logits))
        else:
            logits = 1.0 / (1.0 + np.exp(-logits))
    if variant == "soft":
        if mode == "multiclass":
            target = np.exp(_log_softmax(2.0 * rng.standard_normal(logits.shape)))
        else:
            target = np.clip(target * 0.8 + 0.1 + 0.05 * rng.standard_normal(target.shape),
                             0.0, 1.0)
    return logits, target, mask, kwargs


def check_against_reference(loss_fn, reference_fn, mode: str, ndim: int, variant: str,
                            seeds=(0, 1, 2), rtol: float = 1e-6, **params) -> None:
    """Compare ``loss_fn`` (torch, reduction "none") with ``reference_fn`` over seeds."""
    import torch

    for seed in seeds:
        logits, target, mask, kwargs = variant_case(mode, ndim, seed, variant)
        kwargs.update(params)
        x = torch.from_numpy(logits)
        t = torch.from_numpy(target)
        m = None if mask is None else torch.from_numpy(mask)
        got = loss_fn(x, t, m, reduction="none", **kwargs)
        assert got.dtype == torch.float64
        want = reference_fn(logits, target, mask, reduction="none", **kwargs)
        np.testing.assert_allclose(got.numpy(), want, rtol=rtol, atol=1e-12,
                                   err_msg=f"seed={seed} variant={variant} {kwargs}")


def check_reduction_against_reference(fn, ref, mode, ndim, seed, reduction, rtol=1e-6):
    """``fn`` with ``reduction`` "mean"/"sum" on a masked case equals the reference."""
    import torch

    logits, target, mask, kw = variant_case(mode, ndim, seed, "mask")
    got = fn(torch.from_numpy(logits), torch.from_numpy(target), torch.from_numpy(mask),
             reduction=reduction, **kw)
    want = ref(logits, target, mask, reduction=reduction, **kw)
    np.testing.assert_allclose(got.item(), want, rtol=rtol)


# --------------------------------------------------------------------------- shared checks


def _tensor(x):
    import torch

    return x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))


def empty_and_full(target: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """An all-background and an all-foreground target of ``target``'s shape and dtype
    (multiclass: all label 0 and all label 2)."""
    empty = np.zeros(target.shape, dtype=target.dtype)
    full = np.full(target.shape, 2 if mode == "multiclass" else 1, dtype=target.dtype)
    return empty, full


def check_all_masked(loss_fn, logits, target, mode: str) -> None:
    """With every voxel masked out the loss is 0 and every logit gets a zero gradient."""
    import torch

    x = _tensor(logits).clone().requires_grad_(True)
    mask = torch.zeros(x.shape[0], 1, *x.shape[2:], dtype=torch.bool)
    value = loss_fn(x, _tensor(target), mask, mode=mode)
    value.backward()
    assert value.item() == 0.0
    assert torch.all(x.grad == 0)


def check_saturated(loss_fn, logits, target, mode: str, *, perfect_below: float | None = None,
                    wrong_above: float | None = None,
                    settings=((50.0, "float32"), (10.0, "float16"))) -> None:
    """Saturated perfect and totally wrong logits (``±magnitude`` in ``dtype``) give a finite
    value and gradient; optionally the perfect one a value below ``perfect_below`` and the
    wrong one a value above ``wrong_above``."""
    import torch

    onehot = Inputs(logits, target, mode=mode).t
    for magnitude, dtype in settings:
        for sign, bound in ((1.0, perfect_below), (-1.0, wrong_above)):
            x = torch.from_numpy(sign * magnitude * (2 * onehot - 1)).to(getattr(torch, dtype))
            x.requires_grad_(True)
            value = loss_fn(x, _tensor(target), mode=mode)
            value.backward()
            what = f"{'perfect' if sign > 0 else 'wrong'} logits ±{magnitude} in {dtype}"
            assert torch.isfinite(value), what
            assert torch.isfinite(x.grad).all(), what
            if bound is not None:
                assert (value.item() < bound) if sign > 0 else (value.item() > bound), \
                    f"{what}: {value.item()}"


def torch_cross_entropy(x, inp: Inputs):
    """Per-voxel CE of logits ``x`` (torch, for gradient checks) against ``inp.t``, with the
    valid map it is averaged over: (B, C, *S) in binary/multilabel, (B, 1, *S) multiclass."""
    import torch

    t = torch.from_numpy(inp.t)
    if inp.mode == "multiclass":
        ce = -(t * torch.log_softmax(x, 1)).sum(1, keepdim=True)
        return ce, torch.from_numpy(inp.valid[:, :1]).double()
    ce = torch.nn.functional.binary_cross_entropy_with_logits(x, t, reduction="none")
    return ce, torch.from_numpy(inp.valid).double()


def check_gradient_with_frozen_maps(loss_fn, logits, target, mask, kwargs: dict,
                                    per_voxel) -> None:
    """The gradient of ``loss_fn(..., reduction="sum")`` equals autograd through the formula
    with its distance maps held constant.

    ``per_voxel(x)`` restates the loss in torch from logits ``x``, with the maps taken from
    this module as constants, and returns ``(terms, valid)``: each sample's loss is the mean
    of ``terms`` over ``valid``.
    """
    import torch

    x = torch.from_numpy(logits).requires_grad_(True)
    loss_fn(x, _tensor(target), _tensor(mask), reduction="sum", **kwargs).backward()
    x2 = torch.from_numpy(logits).requires_grad_(True)
    terms, valid = per_voxel(x2)
    per_sample = (terms * valid).flatten(1).sum(1) / valid.flatten(1).sum(1)
    per_sample.sum().backward()
    torch.testing.assert_close(x.grad, x2.grad, rtol=1e-10, atol=1e-14)


def check_two_classes_equal_binary(loss_fn, include_background=(True,), ndim: int = 2) -> None:
    """Multiclass on logits ``(0, x)`` with labels ``t`` equals binary on logit ``x``: the
    softmax of ``(0, x)`` gives class 1 the probability sigmoid(x)."""
    import torch

    logits, target = random_case("binary", ndim, 3)
    two = np.concatenate([np.zeros_like(logits), logits], axis=1)
    labels = torch.from_numpy(target[:, 0].astype(np.int64))
    binary = loss_fn(torch.from_numpy(logits), torch.from_numpy(target), reduction="none")
    for background in include_background:
        multi = loss_fn(torch.from_numpy(two), labels, reduction="none",
                        include_background=background)
        torch.testing.assert_close(multi, binary, rtol=1e-12, atol=1e-12)


def check_on_device(loss_fn, reference_fn, mode: str, ndim: int, variant: str, device) -> None:
    """``loss_fn`` on ``device`` returns its result there, equal to the reference."""
    logits, target, mask, kwargs = variant_case(mode, ndim, 0, variant)
    value = loss_fn(_tensor(logits).to(device), _tensor(target).to(device),
                    _tensor(mask).to(device), reduction="none", **kwargs)
    assert value.device.type == device.type
    np.testing.assert_allclose(value.cpu().numpy(),
                               reference_fn(logits, target, mask, reduction="none", **kwargs),
                               rtol=1e-6)
