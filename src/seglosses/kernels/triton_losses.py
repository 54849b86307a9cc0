"""Fused Triton kernels for the soft statistics and the pixel losses, with their autograd.

Every function takes logits ``x`` of shape (B, C, *S) (0 to 3 spatial dims, N = prod(S)
voxels), reads ``x``, the target ``t`` and the optional weights ``w`` once in the forward and
reduces them to a few numbers per (sample, channel); the backward reads them once more and
writes the gradient of ``x``. Nothing of full size is kept between the two passes but the
inputs themselves.

- :func:`sigmoid_stats`: ``sum_S w p t``, ``sum_S w p``, ``sum_S w t`` with ``p = sigmoid(x)``.
- :func:`softmax_stats`: the same with ``p = softmax(x, dim=1)``.
- :func:`binary_focal_sums`: ``sum_S w l`` of the per-channel binary focal / cross-entropy
  term.
- :func:`softmax_focal_sums`: ``sum_S w l`` of the multiclass focal / cross-entropy term.

The two softmax functions take the target as floats of the logits' shape or as integer class
indices (B, *S), read as a one-hot target that is never formed.

Layout: the per-channel kernels work on the (B*C, N) view of the contiguous tensors, one
program per block of ``BLOCK`` voxels of one row; the softmax kernels load a (C, BLOCK_S)
tile (channels padded to a power of two) of one sample. Each program writes its partial sums
to a small (rows, blocks) buffer that ``torch.sum`` reduces: no atomics, so results are
bitwise reproducible. Arithmetic runs in float32, or float64 for float64 logits; sums are
returned in that dtype, the gradient in the logits' dtype. The gradient is not itself
differentiable: the backward raises under ``create_graph=True``.

On a machine without a GPU, setting ``TRITON_INTERPRET=1`` before this module is imported
makes the kernels run on CPU tensors through Triton's interpreter (slowly; used by the tests).
See ``docs/kernels.md``.
"""

from __future__ import annotations

from typing import Any

import torch
import triton
import triton.language as tl
from torch import Tensor

from .._validation import check_floating, check_same_device, check_tensor, shape_str

__all__ = ["binary_focal_sums", "sigmoid_stats", "softmax_focal_sums", "softmax_stats"]

# ---------------------------------------------------------------------------------------------
# Launch constants (the only tunables; no autotuning, so launches are predictable)
# ---------------------------------------------------------------------------------------------

#: Voxels per program of the per-channel kernels (a power of two), at most and at least.
MAX_BLOCK = 2048
MIN_BLOCK = 128
#: Channel x voxel elements per program of the softmax kernels (a power of two).
TILE = 2048
#: Fewest voxels per program of the softmax kernels, whatever the channel count.
MIN_TILE_VOXELS = 16
#: Most channels the softmax kernels take (padded to a power of two inside a program);
#: with ``MIN_TILE_VOXELS`` it bounds a tile at ``TILE`` elements.
MAX_CHANNELS = 128
#: Programs of at least this many elements run 8 warps, smaller ones 4: at most 8 elements
#: per thread, which keeps the softmax focal backward under 100 registers on sm_90.
WIDE_PROGRAM = 2048


# ---------------------------------------------------------------------------------------------
# Device helpers
# ---------------------------------------------------------------------------------------------


@triton.jit
def _log1p_pos(e):
    """``log(1 + e)`` for ``e >= 0``, accurate to a few ulp also where ``1 + e`` rounds to 1.

    ``u = 1 + e`` is rounded; ``(u - 1) - e`` is that rounding error, and dividing it by ``u``
    corrects ``log(u)`` to first order (so the result is ``e`` when ``u == 1``).
    """
    u = 1.0 + e
    return tl.log(u) - ((u - 1.0) - e) / u


@triton.jit
def _sigmoid_pair(x):
    """``(sigmoid(x), sigmoid(-x))`` from ``exp(-|x|)``: both accurate, no overflow."""
    e = tl.exp(-tl.abs(x))
    d = 1.0 / (1.0 + e)
    nonneg = x >= 0
    p = tl.where(nonneg, d, e * d)
    q = tl.where(nonneg, e * d, d)
    return p, q


@triton.jit
def _row_block_offsets(n, nblocks, BLOCK: tl.constexpr):
    """This program's row, the offsets of its voxels in that row, and their mask."""
    pid = tl.program_id(0)
    row = pid // nblocks
    offs = (pid % nblocks) * BLOCK + tl.arange(0, BLOCK)
    return pid, row, offs, offs < n


@triton.jit
def _softmax_tile(x_ptr, n, C, nblocks, ACC: tl.constexpr, C_PAD: tl.constexpr,
                  BLOCK_S: tl.constexpr):
    """Load one sample's (C_PAD, BLOCK_S) tile of logits, padded channels set to -inf.

    Returns the program id, the sample, the channel indices, the voxel offsets and mask, the
    (channel, voxel) offsets and mask, and the logits in ``ACC``.
    """
    pid = tl.program_id(0)
    b = pid // nblocks
    s_offs = (pid % nblocks) * BLOCK_S + tl.arange(0, BLOCK_S)
    s_mask = s_offs < n
    c = tl.arange(0, C_PAD)
    c_mask = c < C
    mask2 = c_mask[:, None] & s_mask[None, :]
    offs2 = (b.to(tl.int64) * C + c[:, None]) * n + s_offs[None, :]
    x = tl.load(x_ptr + offs2, mask=mask2, other=0.0).to(ACC)
    x = tl.where(c_mask[:, None], x, float("-inf"))
    return pid, b, c, c_mask, s_offs, s_mask, offs2, mask2, x


@triton.jit
def _load_tile_weight(w_ptr, b, n, s_offs, s_mask, offs2, mask2, ACC: tl.constexpr,
                      W_PER_CHANNEL: tl.constexpr):
    """Weights of a softmax tile: (C_PAD, BLOCK_S) per channel, or (1, BLOCK_S) shared."""
    if W_PER_CHANNEL:
        w = tl.load(w_ptr + offs2, mask=mask2, other=0.0).to(ACC)
    else:
        w = tl.load(w_ptr + b.to(tl.int64) * n + s_offs, mask=s_mask, other=0.0).to(ACC)
        w = w[None, :]
    return w


@triton.jit
def _load_tile_target(t_ptr, b, n, c, s_offs, s_mask, offs2, mask2, ACC: tl.constexpr,
                      LABELS: tl.constexpr):
    """Target of a softmax tile, (C_PAD, BLOCK_S): read as floats, or with ``LABELS`` built as
    ``t_c = (label == c)`` from one sample's (BLOCK_S,) integer class indices."""
    if LABELS:
        label = tl.load(t_ptr + b.to(tl.int64) * n + s_offs, mask=s_mask, other=-1)
        t = (c[:, None] == label[None, :]).to(ACC)
    else:
        t = tl.load(t_ptr + offs2, mask=mask2, other=0.0).to(ACC)
    return t


# ---------------------------------------------------------------------------------------------
# sigmoid statistics
# ---------------------------------------------------------------------------------------------


@triton.jit
def _sigmoid_stats_fwd_kernel(x_ptr, t_ptr, w_ptr, part_ptr, n, nblocks, w_div,
                              ACC: tl.constexpr, HAS_W: tl.constexpr, BLOCK: tl.constexpr):
    pid, row, offs, mask = _row_block_offsets(n, nblocks, BLOCK)
    base = row.to(tl.int64) * n
    x = tl.load(x_ptr + base + offs, mask=mask, other=0.0).to(ACC)
    t = tl.load(t_ptr + base + offs, mask=mask, other=0.0).to(ACC)
    p, _ = _sigmoid_pair(x)
    p = tl.where(mask, p, 0.0)
    if HAS_W:
        w = tl.load(w_ptr + (row // w_div).to(tl.int64) * n + offs, mask=mask, other=0.0)
        w = w.to(ACC)
        p = p * w
        tw = t * w
    else:
        tw = t
    stride = tl.num_programs(0)
    tl.store(part_ptr + pid, tl.sum(p * t, axis=0))
    tl.store(part_ptr + stride + pid, tl.sum(p, axis=0))
    tl.store(part_ptr + 2 * stride + pid, tl.sum(tw, axis=0))


@triton.jit
def _sigmoid_stats_bwd_kernel(x_ptr, t_ptr, w_ptr, gtp_ptr, gsp_ptr, gx_ptr, n, nblocks, w_div,
                              ACC: tl.constexpr, HAS_W: tl.constexpr, HAS_GTP: tl.constexpr,
                              HAS_GSP: tl.constexpr, BLOCK: tl.constexpr):
    _, row, offs, mask = _row_block_offsets(n, nblocks, BLOCK)
    base = row.to(tl.int64) * n
    x = tl.load(x_ptr + base + offs, mask=mask, other=0.0).to(ACC)
    p, q = _sigmoid_pair(x)
    coef = tl.zeros([BLOCK], dtype=ACC)
    if HAS_GTP:
        t = tl.load(t_ptr + base + offs, mask=mask, other=0.0).to(ACC)
        coef += tl.load(gtp_ptr + row).to(ACC) * t
    if HAS_GSP:
        coef += tl.load(gsp_ptr + row).to(ACC)
    if HAS_W:
        w = tl.load(w_ptr + (row // w_div).to(tl.int64) * n + offs, mask=mask, other=0.0)
        coef = coef * w.to(ACC)
    gx = coef * p * q
    tl.store(gx_ptr + base + offs, gx.to(gx_ptr.dtype.element_ty), mask=mask)


# ---------------------------------------------------------------------------------------------
# softmax statistics
# ---------------------------------------------------------------------------------------------


@triton.jit
def _softmax_probs(x):
    """Softmax over axis 0 of a tile whose padded channels hold -inf."""
    e = tl.exp(x - tl.max(x, axis=0)[None, :])
    return e * (1.0 / tl.sum(e, axis=0))[None, :]


@triton.jit
def _softmax_stats_fwd_kernel(x_ptr, t_ptr, w_ptr, part_ptr, n, C, nblocks,
                              ACC: tl.constexpr, HAS_W: tl.constexpr,
                              W_PER_CHANNEL: tl.constexpr, LABELS: tl.constexpr,
                              C_PAD: tl.constexpr, BLOCK_S: tl.constexpr):
    pid, b, c, c_mask, s_offs, s_mask, offs2, mask2, x = _softmax_tile(
        x_ptr, n, C, nblocks, ACC, C_PAD, BLOCK_S)
    p = tl.where(mask2, _softmax_probs(x), 0.0)
    t = _load_tile_target(t_ptr, b, n, c, s_offs, s_mask, offs2, mask2, ACC, LABELS)
    if HAS_W:
        w = _load_tile_weight(w_ptr, b, n, s_offs, s_mask, offs2, mask2, ACC, W_PER_CHANNEL)
        p = p * w
        tw = t * w
    else:
        tw = t
    # partial sums of this block for the channels of sample b: rows b*C + c of (3, B*C, nblocks)
    out = (b * C + c) * nblocks + pid % nblocks
    stride = C * tl.num_programs(0)
    tl.store(part_ptr + out, tl.sum(p * t, axis=1), mask=c_mask)
    tl.store(part_ptr + stride + out, tl.sum(p, axis=1), mask=c_mask)
    tl.store(part_ptr + 2 * stride + out, tl.sum(tw, axis=1), mask=c_mask)


@triton.jit
def _softmax_stats_bwd_kernel(x_ptr, t_ptr, w_ptr, gtp_ptr, gsp_ptr, gx_ptr, n, C, nblocks,
                              ACC: tl.constexpr, HAS_W: tl.constexpr,
                              W_PER_CHANNEL: tl.constexpr, LABELS: tl.constexpr,
                              HAS_GTP: tl.constexpr, HAS_GSP: tl.constexpr,
                              C_PAD: tl.constexpr, BLOCK_S: tl.constexpr):
    _, b, c, c_mask, s_offs, s_mask, offs2, mask2, x = _softmax_tile(
        x_ptr, n, C, nblocks, ACC, C_PAD, BLOCK_S)
    p = _softmax_probs(x)
    g = tl.zeros([C_PAD, BLOCK_S], dtype=ACC)
    if HAS_GTP:
        t = _load_tile_target(t_ptr, b, n, c, s_offs, s_mask, offs2, mask2, ACC, LABELS)
        g_tp = tl.load(gtp_ptr + b * C + c, mask=c_mask, other=0.0).to(ACC)
        g += g_tp[:, None] * t
    if HAS_GSP:
        g_sp = tl.load(gsp_ptr + b * C + c, mask=c_mask, other=0.0).to(ACC)
        g += g_sp[:, None]
    if HAS_W:
        g = g * _load_tile_weight(w_ptr, b, n, s_offs, s_mask, offs2, mask2, ACC, W_PER_CHANNEL)
    # padded channels have p = 0 and contribute nothing to the dot product
    dot = tl.sum(p * g, axis=0)
    gx = p * (g - dot[None, :])
    tl.store(gx_ptr + offs2, gx.to(gx_ptr.dtype.element_ty), mask=mask2)


# ---------------------------------------------------------------------------------------------
# binary focal / cross-entropy sums
# ---------------------------------------------------------------------------------------------


@triton.jit
def _binary_focal_fwd_kernel(x_ptr, t_ptr, w_ptr, pos_ptr, neg_ptr, part_ptr, n, nblocks, w_div,
                             gamma, gamma_neg, ACC: tl.constexpr, HAS_W: tl.constexpr,
                             FOCAL_POS: tl.constexpr, FOCAL_NEG: tl.constexpr,
                             BLOCK: tl.constexpr):
    pid, row, offs, mask = _row_block_offsets(n, nblocks, BLOCK)
    base = row.to(tl.int64) * n
    x = tl.load(x_ptr + base + offs, mask=mask, other=0.0).to(ACC)
    t = tl.load(t_ptr + base + offs, mask=mask, other=0.0).to(ACC)
    pos = tl.load(pos_ptr + row).to(ACC)
    neg = tl.load(neg_ptr + row).to(ACC)
    softplus = _log1p_pos(tl.exp(-tl.abs(x)))
    log_p = tl.minimum(x, 0.0) - softplus
    log_q = tl.minimum(-x, 0.0) - softplus
    # the two terms' factors: pos t q^gamma and neg (1 - t) p^gamma_neg
    pos_f = pos * t
    if FOCAL_POS:
        pos_f = pos_f * tl.exp(gamma * log_q)
    neg_f = neg * (1.0 - t)
    if FOCAL_NEG:
        neg_f = neg_f * tl.exp(gamma_neg * log_p)
    loss = -(pos_f * log_p + neg_f * log_q)
    loss = tl.where(mask, loss, 0.0)
    if HAS_W:
        w = tl.load(w_ptr + (row // w_div).to(tl.int64) * n + offs, mask=mask, other=0.0)
        loss = loss * w.to(ACC)
    tl.store(part_ptr + pid, tl.sum(loss, axis=0))


@triton.jit
def _binary_focal_bwd_kernel(x_ptr, t_ptr, w_ptr, pos_ptr, neg_ptr, go_ptr, gx_ptr, n, nblocks,
                             w_div, gamma, gamma_neg, ACC: tl.constexpr, HAS_W: tl.constexpr,
                             FOCAL_POS: tl.constexpr, FOCAL_NEG: tl.constexpr,
                             BLOCK: tl.constexpr):
    _, row, offs, mask = _row_block_offsets(n, nblocks, BLOCK)
    base = row.to(tl.int64) * n
    x = tl.load(x_ptr + base + offs, mask=mask, other=0.0).to(ACC)
    t = tl.load(t_ptr + base + offs, mask=mask, other=0.0).to(ACC)
    pos = tl.load(pos_ptr + row).to(ACC)
    neg = tl.load(neg_ptr + row).to(ACC)
    p, q = _sigmoid_pair(x)
    if FOCAL_POS or FOCAL_NEG:
        softplus = _log1p_pos(tl.exp(-tl.abs(x)))
        log_p = tl.minimum(x, 0.0) - softplus
        log_q = tl.minimum(-x, 0.0) - softplus
    # dl/dx = -(d_pos + d_neg), d_pos = pos t q^gamma (q - gamma p log p) and
    # d_neg = neg (1 - t) p^gamma_neg (gamma_neg q log q - p); a term whose exponent is 0 is
    # pos t q or -neg (1 - t) p, so with both exponents 0 no log is evaluated
    if FOCAL_POS:
        d_pos = pos * t * tl.exp(gamma * log_q) * (q - gamma * p * log_p)
    else:
        d_pos = pos * t * q
    if FOCAL_NEG:
        d_neg = neg * (1.0 - t) * tl.exp(gamma_neg * log_p) * (gamma_neg * q * log_q - p)
    else:
        d_neg = -(neg * (1.0 - t) * p)
    dl = -(d_pos + d_neg)
    dl = dl * tl.load(go_ptr + row).to(ACC)
    if HAS_W:
        w = tl.load(w_ptr + (row // w_div).to(tl.int64) * n + offs, mask=mask, other=0.0)
        dl = dl * w.to(ACC)
    tl.store(gx_ptr + base + offs, dl.to(gx_ptr.dtype.element_ty), mask=mask)


# ---------------------------------------------------------------------------------------------
# multiclass focal / cross-entropy sums
# ---------------------------------------------------------------------------------------------


@triton.jit
def _softmax_focal_terms(x, c, c_mask, gamma, FOCAL: tl.constexpr):
    """Per-voxel pieces of the multiclass focal loss of a tile (padded channels hold -inf).

    With ``m`` the channel maximum, ``e_c = exp(x_c - m)`` and ``rest`` the sum of ``e`` over
    every channel but the (first) arg-max, ``s = 1 + rest`` and ``log p_c = x_c - m -
    log1p(rest)`` lose nothing where one class dominates. ``1 - p_c = o_c / s`` with ``o_c =
    rest`` for the arg-max and ``o_c = s - e_c >= 1`` (no cancellation) for the others, so
    ``1 - p_c`` and ``log(1 - p_c) = log(o_c) - log1p(rest)`` keep their relative accuracy
    also where ``p_c`` rounds to 1.

    Returns ``p``, ``1 - p``, ``log p``, the focal factor ``f = (1 - p)^gamma`` (1 without
    ``FOCAL``) and ``r = log p / (1 - p)`` (only with ``FOCAL``; -1 in the limit ``p -> 1``,
    any finite value where ``f = 0``), all (C_PAD, BLOCK_S) and finite (padded channels
    have ``p = 0`` and ``log p = 0``).
    """
    m = tl.max(x, axis=0)
    z = x - m[None, :]
    e = tl.exp(z)
    is_max = c[:, None] == tl.argmax(x, axis=0)[None, :]
    rest = tl.sum(tl.where(is_max, 0.0, e), axis=0)
    log_s = _log1p_pos(rest)
    s = 1.0 + rest
    inv_s = 1.0 / s
    # padded channels get log p = 0 (not -inf), so that no product below forms 0 * inf
    log_p = tl.where(c_mask[:, None], z - log_s[None, :], 0.0)
    p = e * inv_s[None, :]
    other = tl.where(is_max, rest[None, :], s[None, :] - e)
    one_minus_p = other * inv_s[None, :]
    if FOCAL:
        # (1 - p)^gamma is exactly 0 where 1 - p underflows (gamma > 0 on this path)
        positive = other > 0.0
        safe_other = tl.where(positive, other, 1.0)
        focal = tl.where(positive, tl.exp(gamma * (tl.log(safe_other) - log_s[None, :])), 0.0)
        r = log_p * s[None, :] / safe_other
    else:
        focal = tl.full(x.shape, 1.0, x.dtype)
        r = focal
    return p, one_minus_p, log_p, focal, r


@triton.jit
def _softmax_focal_fwd_kernel(x_ptr, t_ptr, w_ptr, cw_ptr, part_ptr, n, C, nblocks, gamma,
                              ACC: tl.constexpr, HAS_W: tl.constexpr, HAS_CW: tl.constexpr,
                              FOCAL: tl.constexpr, LABELS: tl.constexpr, C_PAD: tl.constexpr,
                              BLOCK_S: tl.constexpr):
    pid, b, c, c_mask, s_offs, s_mask, offs2, mask2, x = _softmax_tile(
        x_ptr, n, C, nblocks, ACC, C_PAD, BLOCK_S)
    t = _load_tile_target(t_ptr, b, n, c, s_offs, s_mask, offs2, mask2, ACC, LABELS)
    if HAS_CW:
        t = t * tl.load(cw_ptr + c, mask=c_mask, other=0.0).to(ACC)[:, None]
    _, _, log_p, focal, _ = _softmax_focal_terms(x, c, c_mask, gamma, FOCAL)
    loss = -tl.sum(t * focal * log_p, axis=0)
    loss = tl.where(s_mask, loss, 0.0)
    if HAS_W:
        loss = loss * tl.load(w_ptr + b.to(tl.int64) * n + s_offs, mask=s_mask, other=0.0).to(ACC)
    tl.store(part_ptr + pid, tl.sum(loss, axis=0))


@triton.jit
def _softmax_focal_bwd_kernel(x_ptr, t_ptr, w_ptr, cw_ptr, go_ptr, gx_ptr, n, C, nblocks, gamma,
                              ACC: tl.constexpr, HAS_W: tl.constexpr, HAS_CW: tl.constexpr,
                              FOCAL: tl.constexpr, LABELS: tl.constexpr, C_PAD: tl.constexpr,
                              BLOCK_S: tl.constexpr):
    _, b, c, c_mask, s_offs, s_mask, offs2, mask2, x = _softmax_tile(
        x_ptr, n, C, nblocks, ACC, C_PAD, BLOCK_S)
    t = _load_tile_target(t_ptr, b, n, c, s_offs, s_mask, offs2, mask2, ACC, LABELS)
    if HAS_CW:
        t = t * tl.load(cw_ptr + c, mask=c_mask, other=0.0).to(ACC)[:, None]
    p, one_minus_p, _, focal, r = _softmax_focal_terms(x, c, c_mask, gamma, FOCAL)
    # dl/dx_j = p_j K - k_j with k_c = cw_c t_c f_c (1 - gamma p_c r_c) and K = sum_c k_c,
    # evaluated as p_j (K - k_j) - (1 - p_j) k_j: no cancellation where p_j rounds to 1
    if FOCAL:
        k = t * focal * (1.0 - gamma * p * r)
    else:
        k = t
    k = tl.where(mask2, k, 0.0)
    gx = p * (tl.sum(k, axis=0)[None, :] - k) - one_minus_p * k
    scale = tl.load(go_ptr + b).to(ACC)
    if HAS_W:
        w = tl.load(w_ptr + b.to(tl.int64) * n + s_offs, mask=s_mask, other=0.0).to(ACC)
        gx = gx * (w * scale)[None, :]
    else:
        gx = gx * scale
    tl.store(gx_ptr + offs2, gx.to(gx_ptr.dtype.element_ty), mask=mask2)


# ---------------------------------------------------------------------------------------------
# Host side: checks, launch geometry
# ---------------------------------------------------------------------------------------------


def _acc(dtype: torch.dtype) -> tuple[torch.dtype, Any]:
    """The computation dtype (torch and Triton) for logits of ``dtype``."""
    if dtype == torch.float64:
        return torch.float64, tl.float64
    return torch.float32, tl.float32


def _interpreted() -> bool:
    """Whether the kernels were built for Triton's CPU interpreter (``TRITON_INTERPRET=1``)."""
    return type(_sigmoid_stats_fwd_kernel).__name__ == "InterpretedFunction"


def _check_logits(x: Any, *, min_channels: int = 1) -> tuple[int, int, int]:
    """Check ``x`` is a floating (B, C, *S) tensor on a device the kernels run on; return
    (B, C, N)."""
    check_tensor(x, "x")
    check_floating(x, "x")
    if x.device.type != "cuda" and not _interpreted():
        raise ValueError(
            f"`x` must be a CUDA tensor for the compiled Triton kernels; got device {x.device} "
            "(on CPU, use the eager torch implementation)"
        )
    if not 2 <= x.dim() <= 5:
        raise ValueError(
            f"`x` must have shape (B, C, *S) with 0 to 3 spatial dims, i.e. 2 to 5 dims; got "
            f"{x.dim()} dims with shape {shape_str(x.shape)}"
        )
    if x.shape[1] < min_channels:
        raise ValueError(
            f"`x` must have at least {min_channels} channels for a softmax over dim 1; got "
            f"shape {shape_str(x.shape)}"
        )
    if min_channels > 1 and x.shape[1] > MAX_CHANNELS:
        raise ValueError(
            f"`x` must have at most {MAX_CHANNELS} channels for the fused softmax kernels; got "
            f"shape {shape_str(x.shape)}"
        )
    return int(x.shape[0]), int(x.shape[1]), _numel_spatial(x)


#: Integer dtypes accepted as class-index targets by the softmax kernels.
_LABEL_DTYPES = (torch.int32, torch.int64)


def _check_target(t: Any, x: Tensor, *, labels: bool = False) -> Tensor:
    """Check ``t`` is a floating tensor of ``x``'s shape on its device; return it contiguous.

    With ``labels``, an int32 or int64 tensor of class indices (B, *S) is accepted as well.
    """
    check_tensor(t, "t")
    if labels and t.dtype in _LABEL_DTYPES:
        expected = (x.shape[0], *x.shape[2:])
        if tuple(t.shape) != expected:
            raise ValueError(
                f"`t` of integer class indices must have shape (B, *S) = {shape_str(expected)}; "
                f"got {shape_str(t.shape)}"
            )
        check_same_device(x, "x", t, "t")
        return t.detach().contiguous()
    check_floating(t, "t")
    if t.shape != x.shape:
        raise ValueError(
            f"`t` must have the shape of `x` {shape_str(x.shape)}; got {shape_str(t.shape)}"
        )
    check_same_device(x, "x", t, "t")
    return t.detach().contiguous()


def _check_weight(w: Any, x: Tensor, *, per_channel: bool) -> tuple[Tensor | None, int]:
    """Check ``w`` is None, (B, 1, *S) or, with ``per_channel``, (B, C, *S).

    Returns the contiguous weights and the row divisor ``w_div``: row ``r`` of the (B*C, N)
    view of ``x`` uses row ``r // w_div`` of the weights (``C`` for shared weights, else 1).
    Weights broadcast over the channels with a zero stride are read once, not copied C times.
    """
    if w is None:
        return None, 1
    check_tensor(w, "w")
    check_floating(w, "w")
    b, c = x.shape[:2]
    shared = (b, 1, *x.shape[2:])
    if per_channel and w.shape == x.shape and c > 1 and w.stride(1) == 0:
        w = w[:, :1]
    if w.shape == shared:
        check_same_device(x, "x", w, "w")
        return w.detach().contiguous(), c
    if per_channel and w.shape == x.shape:
        check_same_device(x, "x", w, "w")
        return w.detach().contiguous(), 1
    expected = f"(B, 1, *S) = {shape_str(shared)}"
    if per_channel:
        expected += f" or (B, C, *S) = {shape_str(x.shape)}"
    raise ValueError(f"`w` must be None or have shape {expected}; got {shape_str(w.shape)}")


def _per_row(value: Any, name: str, b: int, c: int, dtype: torch.dtype,
             device: torch.device) -> Tensor:
    """A float, 0-d tensor, (B, C) or (1, C) tensor as a contiguous (B*C,) tensor."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Tensor)):
        raise TypeError(
            f"`{name}` must be a float or a tensor of shape (B, C) or (1, C); got "
            f"{type(value).__name__}"
        )
    if not isinstance(value, Tensor):
        return torch.full((b * c,), float(value), dtype=dtype, device=device)
    if value.dim() != 0 and tuple(value.shape) not in ((b, c), (1, c)):
        raise ValueError(
            f"`{name}` must be a float or a tensor of shape (B, C) = {shape_str((b, c))} or "
            f"(1, C) = {shape_str((1, c))}; got {shape_str(value.shape)}"
        )
    return value.detach().to(device=device, dtype=dtype).expand(b, c).reshape(b * c).contiguous()


def _check_gamma(gamma: Any, name: str = "gamma") -> float:
    """Require a finite real exponent ``>= 0``, called ``name`` in the messages."""
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float)):
        raise TypeError(f"`{name}` must be a float >= 0; got {type(gamma).__name__}")
    gamma = float(gamma)
    if not 0.0 <= gamma < float("inf"):
        raise ValueError(f"`{name}` must be a finite float >= 0; got {gamma}")
    return gamma


def _numel_spatial(x: Tensor) -> int:
    """N = prod(S) of a (B, C, *S) tensor."""
    n = 1
    for d in x.shape[2:]:
        n *= int(d)
    return n


def _warps(elements: int) -> int:
    return 8 if elements >= WIDE_PROGRAM else 4


def _row_geometry(n: int) -> tuple[int, int]:
    """(BLOCK, number of blocks per row) of the per-channel kernels for rows of ``n``."""
    block = min(MAX_BLOCK, max(MIN_BLOCK, triton.next_power_of_2(max(n, 1))))
    return block, triton.cdiv(n, block)


def _tile_geometry(n: int, c: int) -> tuple[int, int, int]:
    """(C_PAD, BLOCK_S, number of blocks per sample) of the softmax kernels."""
    c_pad = triton.next_power_of_2(c)
    block = max(MIN_TILE_VOXELS, TILE // c_pad)
    block = min(block, max(MIN_TILE_VOXELS, triton.next_power_of_2(max(n, 1))))
    return c_pad, block, triton.cdiv(n, block)


def _reduce_blocks(part: Tensor, b: int, c: int) -> tuple[Tensor, Tensor, Tensor]:
    """Sum the (3, B*C, nblocks) partial sums over the blocks: three separate (B, C) tensors
    (not views of one, so that each may be modified in place)."""
    part = part.view(3, b, c, -1)
    return part[0].sum(dim=-1), part[1].sum(dim=-1), part[2].sum(dim=-1)


def _no_double_backward(name: str) -> None:
    if torch.is_grad_enabled():
        raise RuntimeError(
            f"{name}: the fused Triton backward is not differentiable (double backward / "
            "create_graph=True is not supported); use the eager torch implementation"
        )


def _row_grads(grads: tuple[Tensor | None, ...], rows: int, dtype: torch.dtype,
               device: torch.device) -> list[Tensor]:
    """Incoming (B, C) gradients as (rows,) tensors; a dummy where None (never read)."""
    out = []
    for g in grads:
        if g is None:
            out.append(torch.empty(1, dtype=dtype, device=device))
        else:
            out.append(g.to(dtype).reshape(rows).contiguous())
    return out


# ---------------------------------------------------------------------------------------------
# autograd Functions
# ---------------------------------------------------------------------------------------------


def _stats_launch(softmax: bool, x: Tensor, t: Tensor, w: Tensor | None,
                  w_div: int) -> tuple[tuple[int], tuple[int, ...], dict[str, Any], int, Any]:
    """Grid, geometry arguments, shared meta-parameters, block count and accumulation dtype of
    the statistics kernels (sigmoid: one row of voxels per program; softmax: a channel x voxel
    tile per program)."""
    b, c = x.shape[:2]
    n = _numel_spatial(x)
    acc, acc_tl = _acc(x.dtype)
    meta: dict[str, Any] = {"ACC": acc_tl, "HAS_W": w is not None}
    if softmax:
        c_pad, block, nblocks = _tile_geometry(n, c)
        meta.update(W_PER_CHANNEL=w_div == 1, LABELS=not t.is_floating_point(), C_PAD=c_pad,
                    BLOCK_S=block, num_warps=_warps(c_pad * block))
        return (b * nblocks,), (n, c, nblocks), meta, nblocks, acc
    block, nblocks = _row_geometry(n)
    meta.update(BLOCK=block, num_warps=_warps(block))
    return (b * c * nblocks,), (n, nblocks, w_div), meta, nblocks, acc


class _Stats(torch.autograd.Function):
    """``sigmoid_stats`` and ``softmax_stats``: one kernel launch forward, one backward."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, t: Tensor, w: Tensor | None, w_div: int,
                softmax: bool) -> tuple[Tensor, Tensor, Tensor]:
        b, c = x.shape[:2]
        grid, geometry, meta, nblocks, acc = _stats_launch(softmax, x, t, w, w_div)
        part = torch.empty(3, b * c, nblocks, dtype=acc, device=x.device)
        if part.numel():
            kernel = _softmax_stats_fwd_kernel if softmax else _sigmoid_stats_fwd_kernel
            kernel[grid](x, t, w if w is not None else x, part, *geometry, **meta)
        tp, sum_p, sum_t = _reduce_blocks(part, b, c)
        ctx.save_for_backward(x, t, w)
        ctx.w_div, ctx.softmax = w_div, softmax
        ctx.set_materialize_grads(False)
        ctx.mark_non_differentiable(sum_t)
        return tp, sum_p, sum_t

    @staticmethod
    def backward(ctx: Any, g_tp: Tensor | None, g_sp: Tensor | None,
                 g_st: Tensor | None) -> tuple[Tensor | None, None, None, None, None]:
        _no_double_backward("softmax_stats" if ctx.softmax else "sigmoid_stats")
        if (g_tp is None and g_sp is None) or not ctx.needs_input_grad[0]:
            return None, None, None, None, None
        x, t, w = ctx.saved_tensors
        b, c = x.shape[:2]
        grid, geometry, meta, _, acc = _stats_launch(ctx.softmax, x, t, w, ctx.w_div)
        gtp, gsp = _row_grads((g_tp, g_sp), b * c, acc, x.device)
        gx = torch.empty_like(x)
        if gx.numel():
            kernel = _softmax_stats_bwd_kernel if ctx.softmax else _sigmoid_stats_bwd_kernel
            kernel[grid](x, t, w if w is not None else x, gtp, gsp, gx, *geometry,
                         HAS_GTP=g_tp is not None, HAS_GSP=g_sp is not None, **meta)
        return gx, None, None, None, None


class _BinaryFocalSums(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, t: Tensor, w: Tensor | None, w_div: int, pos: Tensor,
                neg: Tensor, gamma: float, gamma_neg: float) -> Tensor:
        b, c = x.shape[:2]
        n = _numel_spatial(x)
        acc, acc_tl = _acc(x.dtype)
        block, nblocks = _row_geometry(n)
        part = torch.empty(b * c, nblocks, dtype=acc, device=x.device)
        if part.numel():
            _binary_focal_fwd_kernel[(b * c * nblocks,)](
                x, t, w if w is not None else x, pos, neg, part, n, nblocks, w_div, gamma,
                gamma_neg, ACC=acc_tl, HAS_W=w is not None, FOCAL_POS=gamma != 0.0,
                FOCAL_NEG=gamma_neg != 0.0, BLOCK=block, num_warps=_warps(block))
        ctx.save_for_backward(x, t, w, pos, neg)
        ctx.w_div = w_div
        ctx.gamma = gamma
        ctx.gamma_neg = gamma_neg
        ctx.set_materialize_grads(False)
        return part.view(b, c, nblocks).sum(dim=-1)

    @staticmethod
    def backward(ctx: Any, go: Tensor | None) -> tuple[Tensor | None, None, None, None, None,
                                                       None, None, None]:
        _no_double_backward("binary_focal_sums")
        if go is None or not ctx.needs_input_grad[0]:
            return None, None, None, None, None, None, None, None
        x, t, w, pos, neg = ctx.saved_tensors
        b, c = x.shape[:2]
        n = _numel_spatial(x)
        acc, acc_tl = _acc(x.dtype)
        (go_rows,) = _row_grads((go,), b * c, acc, x.device)
        gx = torch.empty_like(x)
        block, nblocks = _row_geometry(n)
        if gx.numel():
            _binary_focal_bwd_kernel[(b * c * nblocks,)](
                x, t, w if w is not None else x, pos, neg, go_rows, gx, n, nblocks, ctx.w_div,
                ctx.gamma, ctx.gamma_neg, ACC=acc_tl, HAS_W=w is not None,
                FOCAL_POS=ctx.gamma != 0.0, FOCAL_NEG=ctx.gamma_neg != 0.0, BLOCK=block,
                num_warps=_warps(block))
        return gx, None, None, None, None, None, None, None


class _SoftmaxFocalSums(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, t: Tensor, w: Tensor | None, cw: Tensor | None,
                gamma: float) -> Tensor:
        b, c = x.shape[:2]
        n = _numel_spatial(x)
        acc, acc_tl = _acc(x.dtype)
        c_pad, block, nblocks = _tile_geometry(n, c)
        part = torch.empty(b, nblocks, dtype=acc, device=x.device)
        if part.numel():
            _softmax_focal_fwd_kernel[(b * nblocks,)](
                x, t, w if w is not None else x, cw if cw is not None else x, part, n, c,
                nblocks, gamma, ACC=acc_tl, HAS_W=w is not None, HAS_CW=cw is not None,
                FOCAL=gamma != 0.0, LABELS=not t.is_floating_point(), C_PAD=c_pad,
                BLOCK_S=block, num_warps=_warps(c_pad * block))
        ctx.save_for_backward(x, t, w, cw)
        ctx.gamma = gamma
        ctx.set_materialize_grads(False)
        return part.sum(dim=-1)

    @staticmethod
    def backward(ctx: Any, go: Tensor | None) -> tuple[Tensor | None, None, None, None, None]:
        _no_double_backward("softmax_focal_sums")
        if go is None or not ctx.needs_input_grad[0]:
            return None, None, None, None, None
        x, t, w, cw = ctx.saved_tensors
        b, c = x.shape[:2]
        n = _numel_spatial(x)
        acc, acc_tl = _acc(x.dtype)
        (go_rows,) = _row_grads((go,), b, acc, x.device)
        gx = torch.empty_like(x)
        c_pad, block, nblocks = _tile_geometry(n, c)
        if gx.numel():
            _softmax_focal_bwd_kernel[(b * nblocks,)](
                x, t, w if w is not None else x, cw if cw is not None else x, go_rows, gx, n, c,
                nblocks, ctx.gamma, ACC=acc_tl, HAS_W=w is not None, HAS_CW=cw is not None,
                FOCAL=ctx.gamma != 0.0, LABELS=not t.is_floating_point(), C_PAD=c_pad,
                BLOCK_S=block, num_warps=_warps(c_pad * block))
        return gx, None, None, None, None


# ---------------------------------------------------------------------------------------------
# Public functions
# ---------------------------------------------------------------------------------------------


def sigmoid_stats(x: Tensor, t: Tensor, w: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    r"""Weighted soft statistics of ``p = sigmoid(x)`` per (sample, channel), fused.

    .. math::

        tp_{bc} = \sum_S w\,p\,t, \qquad sp_{bc} = \sum_S w\,p, \qquad st_{bc} = \sum_S w\,t

    The backward gives ``dx = w (g_tp t + g_sp) p (1 - p)``; ``st`` does not depend on ``x``
    and is returned as non-differentiable.

    Args:
        x: Logits (B, C, *S), 0 to 3 spatial dims; float16, bfloat16, float32 or float64.
        t: Target of ``x``'s shape, any float dtype, values in [0, 1]; a constant.
        w: None (all ones), or float weights (B, 1, *S) shared by the channels or (B, C, *S);
            a constant.

    Returns:
        ``(tp, sum_p, sum_t)``, each (B, C), float32 (float64 for float64 ``x``).

    Raises:
        TypeError: a non-tensor or non-floating ``x``, ``t`` or ``w``.
        ValueError: ``x`` not (B, C, *S) or not on a CUDA device; ``t`` or ``w`` of the wrong
            shape or device.
    """
    _check_logits(x)
    t = _check_target(t, x)
    w, w_div = _check_weight(w, x, per_channel=True)
    return _Stats.apply(x.contiguous(), t, w, w_div, False)


def softmax_stats(x: Tensor, t: Tensor, w: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    r"""Weighted soft statistics of ``p = softmax(x, dim=1)`` per (sample, channel), fused.

    .. math::

        tp_{bc} = \sum_S w\,p\,t, \qquad sp_{bc} = \sum_S w\,p, \qquad st_{bc} = \sum_S w\,t

    One program reads a block of voxels for all C channels (padded to a power of two). The
    backward gives ``g_c = w (g_tp t_c + g_sp)`` and ``dx_c = p_c (g_c - sum_k p_k g_k)``.
    Integer class indices ``t`` are read as the one-hot target ``t_c = (t == c)`` without
    forming it; ``sum_t`` is then the (weighted) voxel count of each class.

    Args:
        x: Logits (B, C, *S) with 2 <= C <= ``MAX_CHANNELS``; float16, bfloat16, float32 or
            float64.
        t: Target of ``x``'s shape, any float dtype, values in [0, 1]; or int32 / int64 class
            indices (B, *S) with values in [0, C) (not checked: voxels to leave out need a
            valid index and weight 0 in ``w``); a constant.
        w: None, or float weights (B, 1, *S) (or (B, C, *S)); a constant.

    Returns:
        ``(tp, sum_p, sum_t)``, each (B, C), float32 (float64 for float64 ``x``).

    Raises:
        TypeError: a non-tensor or non-floating ``x`` or ``w``; ``t`` not a tensor, or neither
            floating nor int32 / int64.
        ValueError: ``x`` not (B, C, *S) with 2 to ``MAX_CHANNELS`` channels or not on a CUDA
            device; ``t`` or ``w`` of the wrong shape or device.
    """
    _check_logits(x, min_channels=2)
    t = _check_target(t, x, labels=True)
    w, w_div = _check_weight(w, x, per_channel=True)
    return _Stats.apply(x.contiguous(), t, w, w_div, True)


def binary_focal_sums(x: Tensor, t: Tensor, w: Tensor | None, pos: float | Tensor,
                      neg: float | Tensor, gamma: float, *,
                      gamma_neg: float | None = None) -> Tensor:
    r"""Weighted sums of the binary focal / cross-entropy term per (sample, channel), fused.

    .. math::

        l = -\left[pos\; t\, q^{\gamma} \log p
            + neg\,(1 - t)\, p^{\gamma_{neg}} \log q\right],
        \qquad p = \sigma(x),\; q = 1 - p

    with ``log p``, ``log q`` taken in log space and ``q^gamma = exp(gamma log q)``; returns
    ``sum_S w l``. ``gamma_neg`` defaults to ``gamma``. A term whose exponent is 0 skips its
    ``exp``, and with both 0 a cross-entropy fast path runs. This covers bce
    (``pos = neg = 1``), weighted bce (``pos = beta``), balanced bce (``pos = beta, neg = 1 -
    beta``), binary focal (``pos = alpha, neg = 1 - alpha``) and the asymmetric focal term of
    the unified focal loss (``gamma = 0``, ``gamma_neg > 0``). Finite and accurate for logits
    of any magnitude and for targets exactly 0 or 1.

    Args:
        x: Logits (B, C, *S), 0 to 3 spatial dims; float16, bfloat16, float32 or float64.
        t: Target of ``x``'s shape, any float dtype, values in [0, 1]; a constant.
        w: None, or float weights (B, 1, *S) or (B, C, *S); a constant.
        pos: Weight of the positive term: a float, or a tensor (B, C) or (1, C).
        neg: Weight of the negative term: a float, or a tensor (B, C) or (1, C).
        gamma: Focusing exponent of the positive term (``q^gamma``), a float >= 0.
        gamma_neg: Focusing exponent of the negative term (``p^gamma_neg``), a float >= 0;
            None (default) for ``gamma``.

    Returns:
        (B, C) sums, float32 (float64 for float64 ``x``).

    Raises:
        TypeError: a non-tensor or non-floating ``x``, ``t`` or ``w``; ``pos``, ``neg``,
            ``gamma`` or ``gamma_neg`` not a number (or tensor).
        ValueError: wrong shapes or devices (``x`` must be on a CUDA device); ``gamma`` or
            ``gamma_neg`` negative or not finite.
    """
    b, c, _ = _check_logits(x)
    t = _check_target(t, x)
    w, w_div = _check_weight(w, x, per_channel=True)
    gamma = _check_gamma(gamma)
    gamma_neg = gamma if gamma_neg is None else _check_gamma(gamma_neg, "gamma_neg")
    acc, _ = _acc(x.dtype)
    pos_rows = _per_row(pos, "pos", b, c, acc, x.device)
    neg_rows = _per_row(neg, "neg", b, c, acc, x.device)
    return _BinaryFocalSums.apply(x.contiguous(), t, w, w_div, pos_rows, neg_rows, gamma,
                                  gamma_neg)


def softmax_focal_sums(x: Tensor, t: Tensor, w: Tensor | None, class_weights: Tensor | None,
                       gamma: float) -> Tensor:
    r"""Weighted sums of the multiclass focal / cross-entropy term per sample, fused.

    .. math::

        l = -\sum_c cw_c\, t_c\, (1 - p_c)^\gamma \log p_c, \qquad
        \log p = \operatorname{log\_softmax}(x, 1)

    returns ``sum_S w l``. ``(1 - p_c)^gamma = exp(gamma log(1 - p_c))`` with ``log(1 - p_c)``
    formed without cancellation, so value and gradient stay finite for every ``gamma >= 0``,
    also where ``p_c`` rounds to 1; ``gamma = 0`` runs a cross-entropy fast path. Integer
    class indices ``t`` are read as the one-hot target ``t_c = (t == c)`` without forming it.

    Args:
        x: Logits (B, C, *S) with 2 <= C <= ``MAX_CHANNELS``; float16, bfloat16, float32 or
            float64.
        t: Target of ``x``'s shape (one-hot or soft), any float dtype; or int32 / int64 class
            indices (B, *S) with values in [0, C) (not checked: voxels to leave out need a
            valid index and weight 0 in ``w``); a constant.
        w: None, or float weights (B, 1, *S); a constant.
        class_weights: None, or a (C,) tensor of per-class weights.
        gamma: Focusing exponent, a float >= 0.

    Returns:
        (B,) sums, float32 (float64 for float64 ``x``).

    Raises:
        TypeError: a non-tensor or non-floating ``x`` or ``w``; ``t`` not a tensor, or neither
            floating nor int32 / int64; ``gamma`` not a number.
        ValueError: wrong shapes or devices (``x`` must be on a CUDA device); ``gamma``
            negative or not finite.
    """
    b, c, _ = _check_logits(x, min_channels=2)
    t = _check_target(t, x, labels=True)
    w, _ = _check_weight(w, x, per_channel=False)
    gamma = _check_gamma(gamma)
    acc, _ = _acc(x.dtype)
    cw = None
    if class_weights is not None:
        check_tensor(class_weights, "class_weights")
        if tuple(class_weights.shape) != (c,):
            raise ValueError(
                f"`class_weights` must be None or have shape (C,) = {shape_str((c,))}; got "
                f"{shape_str(class_weights.shape)}"
            )
        cw = class_weights.detach().to(device=x.device, dtype=acc).contiguous()
    return _SoftmaxFocalSums.apply(x.contiguous(), t, w, cw, gamma)
