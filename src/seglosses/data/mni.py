"""Pseudo-subjects built from the MNI152 2009a symmetric template (``mni-skullstrip``, ``mni-gm``).

Real anatomy, synthetic surroundings. The brain comes from the ICBM 2009a symmetric
template files that the nilearn wheel ships (T1, grey- and white-matter probability maps,
197 x 233 x 189 voxels of 1 mm). They are located through the installed package's folder
without importing nilearn, and read with nibabel. The template T1 is already brain-extracted
(zero outside the brain), so everything outside the brain is synthesised:

1. Template, once per process and resolution: the maps are block-averaged to a working grid
   of ``floor(256 / image_size)`` mm (1 to 4), zero-padded to hold a head, and the brain
   mask is built from grey + white matter > 0.5, closed (3 mm ball), filled in 3D and in
   every axial slice (ventricles, deep CSF), then smoothed (Gaussian, sigma 1.5 mm) and
   thresholded at 0.5. Distance maps (mm) to the brain and to a head core (the brain closed
   with a 12 mm ball, bridging the skull base between the lobes, and extended downwards below
   z = -25 mm for the face and neck) are stored beside the T1, the smoothed mask and the GM
   map.
2. Layers: outside the brain, shells follow the distance maps: CSF, inner table of the
   skull, diploe (marrow), outer table, muscle/galea (from the brain), then subcutaneous fat,
   skin and air (from the head core), with blotchy deep tissue (bone, marrow, sinus, muscle)
   filling the skull base and face. Each subject draws every shell's thickness (about 9 to
   23 mm in all) and intensity (bone dark, marrow and fat bright, as on T1-weighted MRI);
   thicknesses vary smoothly over the head (+-25 %), and a fine texture breaks up the shells.
3. Pseudo-subjects: a random affine (rotation up to 12 degrees in-plane and 8/5 degrees out
   of plane, per-axis scaling 0.89 to 1.09, shifts of a few mm) plus a smooth elastic
   displacement (a sum of random plane waves, wavelengths 60 to 160 mm, 2 to 4 mm RMS),
   contrast changes (brain contrast, gamma), a smooth multiplicative bias field (about
   +-10 to 30 %) and Rician noise (1 to 5 % of white matter).
4. Slices: only the requested axial slices are sampled (trilinear, ``grid_sample``) on a
   256 mm square field of view, so a subject costs a few hundred thousand point samples.
   The slice range is the span where the subject's brain section covers at least 5 % of its
   largest section; ``slices_per_subject`` slices are spread evenly over it, or by default
   every ``256 / image_size`` mm (isotropic). Images are normalised per subject (robust
   percentiles, [0, 1]).

Target: the brain mask (``mni-skullstrip``) or the GM probability map > 0.5 under the same
deformation (``mni-gm``). Subject ``i`` depends only on (seed, i, image_size,
slices_per_subject), so a smaller ``subjects`` gives a prefix of a larger one.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ._core import Case, DataError, fail, quantise, robust_normalise

MNI_FILES = {
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}
#: Side of the square axial field of view (mm) and its centre (x, y) in MNI coordinates.
FOV_MM = 256.0
FOV_CENTRE = (0.0, -16.0)
#: Pseudo-subjects when ``subjects`` is None.
DEFAULT_SUBJECTS = 30
#: Slices whose brain section is below this fraction of the subject's largest are dropped.
MIN_SECTION_FRACTION = 0.05
#: Axial range (mm, MNI z) searched for brain slices: the template stops at z = -72.
Z_RANGE = (-66.0, 86.0)
#: Head box (mm) the working grid covers: x, y, z ranges.
_HEAD_BOX = ((-132.0, 132.0), (-152.0, 120.0), (-96.0, 124.0))
_CSF_T1 = 0.27  # template T1 intensity of CSF (median over CSF-like voxels)
_HULL_RADIUS = 12.0  # mm, closing radius of the head core
_NECK_Z = -25.0  # mm, the head core is extended downwards below this level


def template_dir() -> Path | None:
    """Folder of the nilearn wheel holding the MNI files (found without importing nilearn)."""
    try:
        spec = importlib.util.find_spec("nilearn")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        folder = Path(root) / "datasets" / "data"
        if all((folder / name).is_file() for name in MNI_FILES.values()):
            return folder
    return None


def mri_available() -> bool:
    """True when nibabel and scipy are importable and the nilearn wheel's MNI files exist.

    Never imports nilearn (it is slow to import and not needed: only its data files are).
    """
    for module in ("nibabel", "scipy"):
        if importlib.util.find_spec(module) is None:
            return False
    return template_dir() is not None


def find_files(path: str | os.PathLike[str] | None) -> dict[str, Path]:
    """The three template files, from ``path`` (a folder holding them) or the nilearn wheel."""
    for module in ("nibabel", "scipy"):
        if importlib.util.find_spec(module) is None:
            raise DataError(
                f"{module}: not installed; the MNI formats need it (pip install 'seglosses[mri]')"
            )
    if path is None:
        folder = template_dir()
        if folder is None:
            raise DataError(
                "nilearn/datasets/data: the MNI152 2009a template files of the nilearn package "
                "were not found; install them with pip install 'seglosses[mri]' or pass the "
                f"folder holding {', '.join(MNI_FILES.values())}"
            )
    else:
        folder = Path(path)
        if not folder.exists():
            raise fail(folder, "no such file or directory")
        if not folder.is_dir():
            raise fail(folder, f"not a folder; expected the folder holding {MNI_FILES['t1']}")
    files = {key: folder / name for key, name in MNI_FILES.items()}
    for file in files.values():
        if not file.is_file():
            raise fail(file, "missing MNI152 template file")
    return files


def validate(path: str | os.PathLike[str] | None) -> dict[str, Path]:
    """Check that the three template files exist and agree (headers only)."""
    import nibabel as nib

    files = find_files(path)
    ref = None
    for file in files.values():
        try:
            header = nib.load(str(file)).header
        except Exception as err:  # nibabel raises many types for a bad file
            raise fail(file, f"unreadable NIfTI file ({type(err).__name__}: {err})") from None
        shape = tuple(int(v) for v in header.get_data_shape())
        affine = header.get_best_affine()
        if len(shape) != 3:
            raise fail(file, f"expected a 3D volume; got shape {shape}")
        if not np.allclose(affine[:3, :3], np.eye(3), atol=1e-3):
            raise fail(file, "expected a 1 mm axis-aligned (RAS) grid like the MNI152 template; "
                             f"got voxel axes {np.round(affine[:3, :3], 3).tolist()}")
        if ref is None:
            ref = (shape, affine)
        elif shape != ref[0] or not np.allclose(affine, ref[1], atol=1e-3):
            raise fail(file, f"grid differs from {files['t1'].name}: shape {shape} vs {ref[0]}")
    return files


def file_stamp(files: dict[str, Path]) -> list[tuple[str, int, int]]:
    """(path, size, mtime_ns) of the template files, for the cache key."""
    return [(str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns) for f in files.values()]


def working_spacing(image_size: int) -> int:
    """Working grid spacing (mm) for an output size: floor(256 / size), within [1, 4]."""
    return int(min(4, max(1, math.floor(FOV_MM / image_size))))


def build(kind: str, image_size: int, seed: int, subjects: int | None,
          slices_per_subject: int | None, path: str | os.PathLike[str] | None
          ) -> tuple[list[Case], str, tuple[float, float]]:
    """Build the pseudo-subjects. ``kind`` is ``"skullstrip"`` or ``"gm"``."""
    files = validate(path)
    source = "shipped with nilearn" if path is None else f"read from {Path(path)}"
    n = DEFAULT_SUBJECTS if subjects is None else subjects
    tpl = _template(tuple(str(files[k]) for k in ("t1", "gm", "wm")), working_spacing(image_size))
    cases = [
        _subject(tpl, kind, i, seed, image_size, slices_per_subject) for i in range(n)
    ]
    pixel = FOV_MM / image_size
    target = (
        "the brain mask (grey + white matter of the template, filled and smoothed)"
        if kind == "skullstrip" else "grey matter (template GM probability > 0.5)"
    )
    n_slices = sum(c.images.shape[0] for c in cases)
    desc = (
        f"Pseudo-subjects made from the real MNI152 2009a symmetric template anatomy (T1 and "
        f"grey/white-matter maps {source}), wrapped in synthetic CSF, skull and "
        f"scalp layers of random thickness and intensity, and varied by random elastic "
        f"deformation, rotation, scaling, bias field, noise and contrast. These are not real "
        f"patients: every subject is the same template brain, deformed. {n} pseudo-subjects, "
        f"{n_slices} axial slices of {image_size}x{image_size} pixels at {pixel:g} mm. "
        f"Target: {target}."
    )
    return cases, desc, (pixel, pixel)


# ----------------------------------------------------------------------------- template


@dataclass(frozen=True)
class _Template:
    volume: Tensor  # (1, 5, Z, Y, X): T1 (CSF-filled), smoothed brain mask, GM, distances (mm)
    # to the brain and to the head core (0 inside)
    origin: tuple[float, float, float]  # world (x, y, z) of voxel (0, 0, 0), mm
    spacing: float
    shape: tuple[int, int, int]  # (X, Y, Z)


@functools.lru_cache(maxsize=2)
def _template(files: tuple[str, str, str], s: int) -> _Template:
    import nibabel as nib
    from scipy import ndimage as ndi

    raw = []
    for file in files:
        try:
            image = nib.load(file)
            raw.append(np.asarray(image.dataobj, dtype=np.float32))
        except Exception as err:  # nibabel raises many types for a bad file
            raise fail(file, f"unreadable NIfTI file ({type(err).__name__}: {err})") from None
        if not np.isfinite(raw[-1]).all():
            raise fail(file, "non-finite voxel values")
    origin = image.affine[:3, 3].astype(np.float64) + (s - 1) / 2.0
    t1, gm, wm = raw
    # Probability maps stored as 0..255 (the nilearn files) are brought to 0..1; the T1 is
    # scaled so that white matter reads 0.87, as in the nilearn file.
    for tissue in (gm, wm):
        if tissue.max() > 1.5:
            tissue /= 255.0
    white = t1[wm > 0.9]
    if white.size == 0 or float(np.median(white)) <= 0:
        raise fail(files[0], "no white matter found (WM map > 0.9) to calibrate the T1")
    support = t1 > 0
    t1 *= 0.87 / float(np.median(white))
    # Block-average to the working grid: T1, GM, WM and the template's own T1 support.
    maps = torch.from_numpy(np.stack([t1, gm, wm, support.astype(np.float32)]))  # (4, X, Y, Z)
    del raw, t1, gm, wm, support
    if s > 1:  # a partial block at the far edges averages the voxels it has (all background)
        maps = F.avg_pool3d(maps.unsqueeze(0), s, ceil_mode=True).squeeze(0)
    before, after = [], []
    for ax in range(3):
        lo, hi = _HEAD_BOX[ax]
        n = maps.shape[ax + 1]
        before.append(max(0, math.ceil((origin[ax] - lo) / s)))
        after.append(max(0, math.ceil((hi - (origin[ax] + (n - 1) * s)) / s)))
    maps = F.pad(maps, [before[2], after[2], before[1], after[1], before[0], after[0]])
    origin = origin - np.array(before) * s
    t1, gm, wm, t1pos = maps.numpy()

    # Brain: GM + WM > 0.5, closed, filled in 3D and per axial slice, smoothed.
    radius = max(1, int(round(3.0 / s)))
    brain = np.pad((gm + wm) > 0.5, radius + 1)
    brain = ndi.binary_closing(brain, structure=_ball(radius))
    brain = brain[(slice(radius + 1, -radius - 1),) * 3]
    brain = ndi.binary_fill_holes(brain)
    for z in np.flatnonzero(brain.any(axis=(0, 1))):
        brain[:, :, z] = ndi.binary_fill_holes(brain[:, :, z])
    soft = ndi.gaussian_filter(brain.astype(np.float32), sigma=1.5 / s)
    brain = soft > 0.5
    dist_brain = ndi.distance_transform_edt(~brain, sampling=s).astype(np.float32)
    # Head core: the brain closed with a 12 mm ball (bridging the skull base between lobes),
    # extended downwards below z = -25 mm (face and neck under the temporal lobes).
    grown = dist_brain <= _HULL_RADIUS
    head = ndi.distance_transform_edt(grown, sampling=s) > _HULL_RADIUS
    head |= brain
    z_world = origin[2] + s * np.arange(head.shape[2])
    top = int(np.searchsorted(z_world, _NECK_Z))
    for z in range(min(top, head.shape[2] - 1) - 1, -1, -1):
        head[:, :, z] |= head[:, :, z + 1]
    head = ndi.binary_fill_holes(head)
    dist_head = ndi.distance_transform_edt(~head, sampling=s).astype(np.float32)
    # Inside the brain, voxels the template T1 leaves empty (its own mask) read as CSF.
    t1f = t1 + (1.0 - t1pos) * _CSF_T1 * np.clip(soft, 0.0, 1.0)
    stack = np.stack([t1f, soft, gm, dist_brain, dist_head]).transpose(0, 3, 2, 1)  # (C, Z, Y, X)
    volume = torch.from_numpy(np.ascontiguousarray(stack)).unsqueeze(0)
    return _Template(volume, tuple(float(v) for v in origin), float(s), tuple(t1.shape))


def _ball(radius: int) -> np.ndarray:
    r = np.arange(-radius, radius + 1)
    return (r[:, None, None] ** 2 + r[None, :, None] ** 2 + r[None, None, :] ** 2) <= radius**2


# ----------------------------------------------------------------------------- subjects


@dataclass
class _Waves:
    """A smooth random field: a sum of plane waves, evaluated at points in mm."""

    omega: Tensor  # (K, 3) rad/mm
    phase: Tensor  # (K,)
    amp: Tensor  # (K, D)

    @staticmethod
    def draw(g: np.random.Generator, k: int, lam: tuple[float, float], rms: float,
             dims: int) -> _Waves:
        direction = g.normal(size=(k, 3))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        omega = direction * (2 * math.pi / g.uniform(*lam, size=(k, 1)))
        phase = g.uniform(0, 2 * math.pi, size=k)
        # Each wave has variance amp^2 / 2; k of them sum to rms^2 per output dim.
        amp = g.normal(size=(k, dims)) * rms * math.sqrt(2.0 / k)
        return _Waves(*(torch.from_numpy(np.asarray(a, dtype=np.float32))
                        for a in (omega, phase, amp)))

    def __call__(self, points: Tensor) -> Tensor:
        """The field at points (..., 3): (..., D)."""
        return torch.sin(points @ self.omega.T + self.phase) @ self.amp

    def on_grid(self, axes: _Axes) -> Tensor:
        """The field on the grid z x y x x: (Z, H, W, D), equal to ``self(axes.points())``.

        Uses sin(a + b) = sin a cos b + cos a sin b with a = w_z z + w_y y + phase and
        b = w_x x, so the full grid costs two small matrix products per output dim instead
        of a sine per point and wave.
        """
        a = (self.phase[:, None, None] + self.omega[:, 2, None, None] * axes.z[None, :, None]
             + self.omega[:, 1, None, None] * axes.y[None, None, :])  # (K, Z, H)
        b = self.omega[:, 0, None] * axes.x[None, :]  # (K, W)
        left = torch.cat([torch.sin(a), torch.cos(a)])  # (2K, Z, H)
        right = torch.cat([torch.cos(b), torch.sin(b)])  # (2K, W)
        amp = torch.cat([self.amp, self.amp])  # (2K, D)
        weighted = left[..., None] * amp[:, None, None, :]  # (2K, Z, H, D)
        k, nz, nh, d = weighted.shape
        out = weighted.reshape(k, -1).T @ right  # (Z*H*D, W)
        return out.reshape(nz, nh, d, -1).permute(0, 1, 3, 2)


@dataclass
class _Axes:
    """Coordinates (mm) of an axial slice stack: x across columns, y down rows, z per slice."""

    x: Tensor
    y: Tensor
    z: Tensor

    @staticmethod
    def planes(z: np.ndarray, size: int) -> _Axes:
        """``size`` x ``size`` pixels over the field of view; row 0 is anterior."""
        coords = (torch.arange(size, dtype=torch.float32) + 0.5) * (FOV_MM / size) - FOV_MM / 2
        return _Axes(FOV_CENTRE[0] + coords, FOV_CENTRE[1] - coords,
                     torch.from_numpy(np.asarray(z, dtype=np.float32)))

    def points(self) -> Tensor:
        gz, gy, gx = torch.meshgrid(self.z, self.y, self.x, indexing="ij")
        return torch.stack([gx, gy, gz], dim=-1)


@dataclass
class _Subject:
    matrix: Tensor  # (3, 3) subject -> template linear part
    shift: Tensor  # (3,)
    elastic: _Waves
    bias: _Waves
    thickness_mod: _Waves  # 2 dims: bone shells, soft-tissue shells
    texture: _Waves
    deep: _Waves
    thickness: np.ndarray  # (7,) mm
    levels: np.ndarray  # (8,) template-T1 units, last = air
    brain_contrast: float
    gamma: float
    noise: float


def _draw_subject(g: np.random.Generator) -> _Subject:
    yaw, pitch, roll = (np.deg2rad(g.uniform(-12, 12)), np.deg2rad(g.uniform(-8, 8)),
                        np.deg2rad(g.uniform(-5, 5)))
    cz, sz, cx, sx, cy, sy = (math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch),
                              math.cos(roll), math.sin(roll))
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    scale = g.uniform(0.93, 1.05) * (1 + g.uniform(-0.04, 0.04, size=3))
    forward = rz @ rx @ ry @ np.diag(scale)  # template -> subject
    matrix = np.linalg.inv(forward)
    shift = np.array([g.uniform(-4, 4), g.uniform(-4, 4), g.uniform(-3, 3)])
    thickness = np.array([
        g.uniform(1.0, 3.5),  # CSF
        g.uniform(1.0, 2.0),  # inner table
        g.uniform(1.5, 4.0),  # diploe
        g.uniform(1.0, 2.0),  # outer table
        g.uniform(1.0, 4.0),  # muscle / galea
        g.uniform(2.0, 5.0),  # subcutaneous fat
        g.uniform(1.0, 2.0),  # skin
    ])
    levels = np.array([
        g.uniform(0.12, 0.32), g.uniform(0.02, 0.12), g.uniform(0.3, 0.75), g.uniform(0.02, 0.12),
        g.uniform(0.3, 0.55), g.uniform(0.7, 1.0), g.uniform(0.3, 0.55), 0.0,
    ])
    return _Subject(
        matrix=torch.from_numpy(matrix.astype(np.float32)),
        shift=torch.from_numpy(shift.astype(np.float32)),
        elastic=_Waves.draw(g, 6, (60.0, 160.0), g.uniform(2.0, 4.0) / math.sqrt(3), 3),
        bias=_Waves.draw(g, 4, (150.0, 400.0), g.uniform(0.1, 0.3), 1),
        thickness_mod=_Waves.draw(g, 6, (40.0, 120.0), 0.12, 2),
        texture=_Waves.draw(g, 8, (6.0, 24.0), 0.06, 1),
        deep=_Waves.draw(g, 8, (12.0, 40.0), 0.5, 1),
        thickness=thickness,
        levels=levels,
        brain_contrast=float(g.uniform(0.8, 1.2)),
        gamma=float(g.uniform(0.75, 1.35)),
        noise=float(g.uniform(0.01, 0.05)),
    )


def _to_template(sub: _Subject, axes: _Axes) -> Tensor:
    """Template-space points (Z, H, W, 3) of a subject's slices: affine plus elastic field."""
    centre = torch.tensor([FOV_CENTRE[0], FOV_CENTRE[1], 0.0])
    linear = (axes.points() - centre - sub.shift) @ sub.matrix.T + centre
    return linear + sub.elastic.on_grid(axes)


def _sample(tpl: _Template, world: Tensor, channels: slice) -> Tensor:
    """Trilinear samples of template channels at world points (..., 3): (C, ...)."""
    origin = torch.tensor(tpl.origin, dtype=torch.float32)
    extent = torch.tensor([n - 1 for n in tpl.shape], dtype=torch.float32) * tpl.spacing
    grid = (world - origin) / extent * 2 - 1  # (x, y, z) -> (W, H, D) order as grid_sample wants
    flat = grid.reshape(1, 1, 1, -1, 3)
    out = F.grid_sample(tpl.volume[:, channels], flat, mode="bilinear", padding_mode="border",
                        align_corners=True)
    return out.reshape(out.shape[1], *world.shape[:-1])


def _subject(tpl: _Template, kind: str, i: int, seed: int, size: int, slices: int | None) -> Case:
    g = np.random.default_rng([int(seed), int(i), 0x4D4E49])
    sub = _draw_subject(g)
    # Coarse pass: the axial span of this subject's brain.
    z_coarse = np.arange(Z_RANGE[0], Z_RANGE[1] + 1e-6, 2.0)
    coarse = _sample(tpl, _to_template(sub, _Axes.planes(z_coarse, 40)), slice(1, 2))[0]
    area = (coarse > 0.5).sum(dim=(1, 2)).numpy()
    valid = np.flatnonzero(area >= MIN_SECTION_FRACTION * max(1, area.max()))
    z_lo, z_hi = z_coarse[valid[0]], z_coarse[valid[-1]]
    if slices is None:
        z = np.arange(z_lo, z_hi + 1e-6, FOV_MM / size)
    else:
        z = np.linspace(z_lo, z_hi, slices)
    gen = torch.Generator().manual_seed(int(g.integers(2**62)))
    # Slices in chunks of 16 bound the memory of the intermediate fields.
    parts = [_render(tpl, sub, _Axes.planes(z[j:j + 16], size), kind, gen)
             for j in range(0, len(z), 16)]
    image = torch.cat([p[0] for p in parts])
    brain_mask = torch.cat([p[1] for p in parts])
    target = torch.cat([p[2] for p in parts])
    keep = brain_mask.flatten(1).any(dim=1)
    image = quantise(robust_normalise(image[keep]))
    return Case(f"mni-{i:03d}", image, target[keep].to(torch.uint8))


def _render(tpl: _Template, sub: _Subject, axes: _Axes, kind: str, gen: torch.Generator
            ) -> tuple[Tensor, Tensor, Tensor]:
    """Raw image, brain mask and target of a few slices."""
    t1, brain, gm, d_brain, d_head = _sample(tpl, _to_template(sub, axes), slice(0, 5))
    shape = t1.shape
    # Synthetic shells: CSF and skull follow the brain, the scalp follows the head surface.
    mod = 1.0 + torch.tanh(sub.thickness_mod.on_grid(axes) / 0.12) * 0.25  # (..., 2)
    th = [float(v) for v in sub.thickness]
    bone = torch.cumsum(torch.tensor(th[:4]), 0)
    bounds_brain = bone * mod[..., :1]  # (..., 4) ends of CSF, inner table, diploe, outer table
    outer = (bone[-1] + th[4] + th[5] + th[6]) * mod[..., 1]  # head surface, from the head core
    bounds_head = torch.stack([outer - (th[5] + th[6]) * mod[..., 1], outer - th[6] * mod[..., 1],
                               outer], dim=-1)
    lv = torch.from_numpy(sub.levels.astype(np.float32))
    tau = 0.35 * FOV_MM / axes.x.numel() + 0.25
    shells = lv[0] + (torch.sigmoid((d_brain.unsqueeze(-1) - bounds_brain) / tau)
                      * (lv[1:5] - lv[0:4])).sum(-1)
    shells = shells + (torch.sigmoid((d_head.unsqueeze(-1) - bounds_head) / tau)
                       * (lv[5:8] - lv[4:7])).sum(-1)
    # Deep tissue between lobes and below the brain is blotchy (bone, marrow, sinus, muscle)
    # (further than the muscle layer from the brain, yet short of the head's fat layer).
    deep = (torch.sigmoid((d_brain - bounds_brain[..., -1] - th[4] - 2.0) / tau)
            * torch.sigmoid((bounds_head[..., 0] - 2.0 - d_head) / tau))
    texture = sub.texture.on_grid(axes)[..., 0] + deep * torch.tanh(sub.deep.on_grid(axes)[..., 0])
    shells = shells * (1.0 + texture)
    weight = brain.clamp(0.0, 1.0)
    brain_t1 = (0.65 + (t1 - 0.65) * sub.brain_contrast).clamp(min=0.0)
    image = weight * brain_t1 + (1 - weight) * shells
    image = image.clamp(min=0.0) ** sub.gamma
    image = image * torch.exp(sub.bias.on_grid(axes)[..., 0])
    sigma = sub.noise * 0.87 ** sub.gamma
    image = torch.sqrt((image + sigma * torch.randn(shape, generator=gen)) ** 2
                       + (sigma * torch.randn(shape, generator=gen)) ** 2)
    brain_mask = brain > 0.5
    target = brain_mask if kind == "skullstrip" else gm > 0.5
    return image, brain_mask, target
