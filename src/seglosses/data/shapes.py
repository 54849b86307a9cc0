"""Procedural 2D shapes: images and binary masks with a controlled foreground fraction.

Each image holds one to ``max_shapes`` target shapes drawn from ellipses, rectangles, star
shaped blobs and thin curves (sine ribbons). Every shape is described by a signed margin
``psi`` in pixels (positive inside); the union is the maximum of the margins, and the mask is
``psi > t`` with ``t`` chosen per image so that the foreground covers exactly the requested
fraction of pixels (to the nearest pixel). Shapes are planned with about the right area, so
``t`` only trims or grows their borders by a few pixels. The image is a textured background
and foreground of random levels (foreground brighter or darker), anti-aliased edges, optional
distractor shapes (not in the mask) at an intermediate level, Gaussian blur and Gaussian noise,
then normalised per image to [0, 1]. Only NumPy and PyTorch are used, and the result depends
on the seed alone.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .._validation import check_int, check_number
from ._core import Case, DataError, quantise, robust_normalise, single_thread

SHAPE_TYPES = ("ellipse", "rectangle", "blob", "curve")

#: Number of images of the ``shapes`` format when ``subjects`` is None.
DEFAULT_IMAGES = 300


@dataclass(frozen=True)
class ShapesOptions:
    """Options of the ``shapes`` generator (also settable as ``key=value,...`` text).

    Attributes:
        fraction: mean foreground fraction per image, in (0, 0.9].
        spread: relative spread of the per-image fraction: each image draws its fraction
            uniformly from ``fraction * [1 - spread, 1 + spread]``.
        shapes: shape types to draw from (``ellipse``, ``rectangle``, ``blob``, ``curve``).
        max_shapes: each image holds 1 to ``max_shapes`` target shapes.
        noise: standard deviation of the Gaussian noise, relative to the foreground/background
            contrast (0.5 means a contrast-to-noise ratio of 2).
        blur: standard deviation of the Gaussian blur in pixels (0: none).
        texture: amplitude of the smooth background/foreground texture, relative to contrast.
        distractors: number of non-target shapes per image, drawn at an intermediate level.
    """

    fraction: float = 0.15
    spread: float = 0.5
    shapes: tuple[str, ...] = SHAPE_TYPES
    max_shapes: int = 3
    noise: float = 0.25
    blur: float = 1.0
    texture: float = 0.3
    distractors: int = 1

    def __post_init__(self) -> None:
        check_number(self.fraction, "fraction", low=0.0, high=0.9, low_open=True)
        check_number(self.spread, "spread", low=0.0, high=1.0, high_open=True)
        check_int(self.max_shapes, "max_shapes", low=1)
        check_number(self.noise, "noise", low=0.0)
        check_number(self.blur, "blur", low=0.0, high=20.0)
        check_number(self.texture, "texture", low=0.0)
        check_int(self.distractors, "distractors", low=0)
        if not self.shapes or any(s not in SHAPE_TYPES for s in self.shapes):
            raise ValueError(
                f"`shapes` must be a non-empty selection of {list(SHAPE_TYPES)}; "
                f"got {list(self.shapes)}"
            )


def parse_options(text: str | os.PathLike[str] | None) -> ShapesOptions:
    """Read ``"fraction=0.05,noise=0.5,shapes=ellipse+curve"`` into :class:`ShapesOptions`.

    ``None`` or an empty string gives the defaults. Shape types are joined with ``+``.

    Example:
        >>> parse_options("fraction=0.05,shapes=ellipse+curve").shapes
        ('ellipse', 'curve')
    """
    if text is None or not str(text).strip():
        return ShapesOptions()
    raw = os.fspath(text)
    known = {f.name: f for f in fields(ShapesOptions)}
    values: dict[str, object] = {}
    for item in raw.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or key not in known:
            raise DataError(
                f"{raw}: the shapes format takes options key=value,... with keys "
                f"{', '.join(known)}; could not read {item.strip()!r}"
            )
        try:
            if key == "shapes":
                values[key] = tuple(v.strip() for v in value.split("+") if v.strip())
            elif key in ("max_shapes", "distractors"):
                values[key] = int(value)
            else:
                values[key] = float(value)
        except ValueError:
            raise DataError(
                f"{raw}: option {key} has a value that is not a number: {value!r}"
            ) from None
    try:
        return ShapesOptions(**values)  # type: ignore[arg-type]
    except (TypeError, ValueError) as err:
        raise DataError(f"{raw}: {err}") from None


def make_shapes(n: int, size: int = 128, *, seed: int = 0, options: ShapesOptions | None = None,
                **overrides: object) -> tuple[Tensor, Tensor]:
    """Generate ``n`` images with masks; deterministic for a given seed and options.

    Args:
        n: number of images.
        size: height and width in pixels.
        seed: random seed; image ``i`` depends on (seed, i) and the options only.
        options: generator options; keyword ``overrides`` replace single fields.

    Returns:
        images (n, size, size) float32 in [0, 1] and masks (n, size, size) uint8 in {0, 1}.

    Example:
        >>> images, masks = make_shapes(4, 32, seed=1, fraction=0.25, spread=0.0)
        >>> images.shape, masks.dtype
        (torch.Size([4, 32, 32]), torch.uint8)
        >>> masks.float().mean(dim=(1, 2))
        tensor([0.2500, 0.2500, 0.2500, 0.2500])
    """
    check_int(n, "n", low=1)
    check_int(size, "size", low=8)
    opts = options or ShapesOptions()
    if overrides:
        current = {f.name: getattr(opts, f.name) for f in fields(opts)}
        opts = ShapesOptions(**{**current, **overrides})  # type: ignore[arg-type]
    images, masks = [], []
    chunk = 128
    with single_thread():
        for start in range(0, n, chunk):
            idx = np.arange(start, min(n, start + chunk))
            img, msk = _render(idx, size, int(seed), opts)
            images.append(img)
            masks.append(msk)
    return torch.cat(images), torch.cat(masks)


def build(image_size: int, seed: int, subjects: int | None, path: str | os.PathLike[str] | None
          ) -> tuple[list[Case], str]:
    """The ``shapes`` format: one case per image. Returns the cases and a description."""
    opts = parse_options(path)
    n = DEFAULT_IMAGES if subjects is None else subjects
    images, masks = make_shapes(n, image_size, seed=seed, options=opts)
    images = quantise(images)
    cases = [Case(f"shape-{i:04d}", images[i:i + 1], masks[i:i + 1]) for i in range(n)]
    desc = (
        f"Procedural 2D shapes ({n} synthetic images of {image_size}x{image_size} pixels; "
        f"shape types {', '.join(opts.shapes)}; up to {opts.max_shapes} target shapes and "
        f"{opts.distractors} distractor(s) per image; mean foreground fraction {opts.fraction:g}; "
        f"noise {opts.noise:g} of the contrast; blur sigma {opts.blur:g} px). Not medical images."
    )
    return cases, desc


# ----------------------------------------------------------------------------- rendering


def _rng(seed: int, i: int, tag: int) -> np.random.Generator:
    return np.random.default_rng([seed, int(i), tag])


def _render(idx: np.ndarray, size: int, seed: int, o: ShapesOptions) -> tuple[Tensor, Tensor]:
    n = len(idx)
    k_max = o.max_shapes
    types = np.array([SHAPE_TYPES.index(s) for s in o.shapes])
    # Per-image parameters, drawn image by image so that image i never depends on n.
    frac = np.empty(n)
    n_shapes = np.empty(n, dtype=np.int64)
    params = np.zeros((n, k_max + o.distractors, 12))
    levels = np.empty((n, 4))
    for row, i in enumerate(idx):
        g = _rng(seed, i, 1)
        frac[row] = np.clip(o.fraction * g.uniform(1 - o.spread, 1 + o.spread), 1.0 / size**2, 0.9)
        n_shapes[row] = g.integers(1, k_max + 1)
        for k in range(k_max + o.distractors):
            params[row, k] = _shape_params(g, types, size, frac[row] / n_shapes[row])
        bg = g.uniform(0.2, 0.6)
        contrast = g.uniform(0.25, 0.5) * (1 if g.random() < 0.7 else -1)
        levels[row] = (bg, contrast, g.uniform(0, 2 * math.pi), g.uniform(0, 2 * math.pi))

    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float32),
                            torch.arange(size, dtype=torch.float32), indexing="ij")
    p = torch.from_numpy(params).float()
    psi = torch.full((n, size, size), -float("inf"))
    for k in range(k_max):
        active = (torch.from_numpy(n_shapes) > k).view(n, 1, 1)
        psi = torch.where(active, torch.maximum(psi, _margin(p[:, k], xx, yy)), psi)
    # Keep exactly round(fraction * size^2) pixels per image: the top values of psi.
    count = torch.from_numpy(np.maximum(1, np.round(frac * size * size)).astype(np.int64))
    flat = psi.reshape(n, -1)
    total = flat.shape[1]
    # The count-th largest value (kept) and the next one (dropped) of each image.
    kept = torch.stack([-(-row).kthvalue(int(c)).values for row, c in zip(flat, count)]).view(n, 1)
    dropped = torch.stack(
        [-(-row).kthvalue(int(min(c + 1, total))).values for row, c in zip(flat, count)]
    ).view(n, 1)
    mask = (flat >= kept).view(n, size, size)
    if not bool((mask.reshape(n, -1).sum(1) == count).all()):  # ties: rank pixels exactly
        order = flat.argsort(dim=1, descending=True, stable=True)
        ranks = torch.empty_like(order)
        ranks.scatter_(1, order, torch.arange(total).expand(n, -1).contiguous())
        mask = (ranks < count.view(n, 1)).view(n, size, size)
    t = (0.5 * (kept + dropped)).view(n, 1, 1)

    lv = torch.from_numpy(levels).float()
    bg, contrast = lv[:, 0].view(n, 1, 1), lv[:, 1].view(n, 1, 1)
    soft = torch.sigmoid((psi - t) * 2.0)
    image = bg + contrast * soft
    for k in range(k_max, k_max + o.distractors):
        d_soft = torch.sigmoid(_margin(p[:, k], xx, yy) * 2.0) * (1 - soft)
        image = image + 0.5 * contrast * d_soft
    # Smooth texture: two oblique sinusoid pairs with random phases.
    ph1, ph2 = lv[:, 2].view(n, 1, 1), lv[:, 3].view(n, 1, 1)
    w = 2 * math.pi / size
    tex = torch.sin(w * (2.3 * xx + 1.1 * yy) + ph1) * torch.cos(w * (0.7 * xx - 2.9 * yy) + ph2)
    image = image + o.texture * contrast.abs() * 0.5 * tex
    if o.blur > 0:
        image = _gaussian_blur(image, o.blur)
    noise = np.stack([_rng(seed, i, 2).standard_normal((size, size), dtype=np.float32)
                      for i in idx])
    image = image + o.noise * contrast.abs() * torch.from_numpy(noise)
    image = torch.stack([robust_normalise(im) for im in image])
    return image, mask.to(torch.uint8)


def _shape_params(g: np.random.Generator, types: np.ndarray, size: int,
                  area_frac: float) -> np.ndarray:
    """Type, centre, angle and size parameters of one shape with about the given area."""
    kind = int(g.choice(types))
    area = max(4.0, area_frac * size * size * g.uniform(0.7, 1.3))
    cx, cy = g.uniform(0.2, 0.8, size=2) * size
    theta = g.uniform(0, math.pi)
    out = np.zeros(12)
    out[:4] = (kind, cx, cy, theta)
    if kind in (0, 1, 2):  # ellipse, rectangle, blob: semi-axes with aspect in [0.4, 1]
        aspect = g.uniform(0.4, 1.0)
        scale = math.pi if kind != 1 else 4.0
        a = math.sqrt(area / (scale * aspect))
        out[4:6] = (a, a * aspect)
        out[6:10] = g.uniform(-0.15, 0.15, size=4)  # blob harmonics 2..5
        out[10] = g.uniform(0, 2 * math.pi)
    else:  # curve: sine ribbon of half-length L, width w, amplitude A, wavenumber omega
        half = g.uniform(0.2, 0.4) * size
        width = float(np.clip(area / (2 * half * 1.2), 1.5, size / 4))
        amp = g.uniform(0.05, 0.15) * size
        omega = g.uniform(1.0, 2.5) * math.pi / half
        out[4:8] = (half, width, amp, omega)
        out[8] = g.uniform(0, 2 * math.pi)
    return out


def _margin(p: Tensor, xx: Tensor, yy: Tensor) -> Tensor:
    """Signed margin in pixels (positive inside) of one shape per image: (n, H, W)."""
    out = torch.empty(p.shape[0], *xx.shape)
    kinds = p[:, 0].long()
    for kind in kinds.unique().tolist():
        rows = (kinds == kind).nonzero()[:, 0]
        out[rows] = _margin_of_kind(int(kind), p[rows], xx, yy)
    return out


def _margin_of_kind(kind: int, p: Tensor, xx: Tensor, yy: Tensor) -> Tensor:
    n = p.shape[0]
    col = [p[:, j].view(n, 1, 1) for j in range(p.shape[1])]
    cx, cy, theta = col[1], col[2], col[3]
    dx, dy = xx - cx, yy - cy
    c, s = torch.cos(theta), torch.sin(theta)
    u, v = c * dx + s * dy, c * dy - s * dx
    if kind == 3:  # curve
        half, width, amp, omega, phase = col[4], col[5], col[6], col[7], col[8]
        arg = omega * u + phase
        across = (v - amp * torch.sin(arg)) * torch.rsqrt(1 + (amp * omega * torch.cos(arg)) ** 2)
        along = (u.abs() - half).clamp_(min=0)
        return width / 2 - torch.sqrt(across**2 + along**2)
    a, b = col[4].clamp(min=0.5), col[5].clamp(min=0.5)
    if kind == 1:  # rectangle
        return torch.minimum(a - u.abs(), b - v.abs())
    un, vn = u / a, v / b
    r = torch.sqrt(un**2 + vn**2 + 1e-12)
    if kind == 0:  # ellipse
        return (1 - r) * torch.minimum(a, b)
    phi = torch.atan2(vn, un)  # blob: radius modulated by harmonics 2..5
    wobble = torch.ones_like(r)
    for m in range(4):
        wobble += col[6 + m] * torch.cos((m + 2) * phi + col[10] * (m + 1))
    return (wobble - r) * torch.minimum(a, b)


def _gaussian_blur(image: Tensor, sigma: float) -> Tensor:
    radius = max(1, int(math.ceil(3 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    k = k / k.sum()
    img = image.unsqueeze(1)
    img = F.conv2d(F.pad(img, (radius, radius, 0, 0), mode="reflect"), k.view(1, 1, 1, -1))
    img = F.conv2d(F.pad(img, (0, 0, radius, radius), mode="reflect"), k.view(1, 1, -1, 1))
    return img[:, 0]
