"""Benchmark presets and the resolved configuration of a sweep.

A preset fixes every setting of a sweep; command-line options override single values. The
resolved :class:`BenchConfig` is what the store records, and its :meth:`BenchConfig.fingerprint`
(every setting that changes a result, i.e. all but the loss, the seed and where it runs)
decides whether ``--resume`` may continue a results folder.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

PAPER_LOSSES: tuple[str, ...] = (
    "bce", "weighted_bce", "focal", "dice", "tversky", "focal_tversky",
    "sensitivity_specificity", "exp_log", "log_cosh_dice",
)
PRESET_NAMES: tuple[str, ...] = ("quick", "paper", "full")
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")

# Settings that do not change a result, left out of the fingerprint.
_NOT_FINGERPRINTED = ("losses", "seeds", "device", "num_threads", "preset", "note")


class BenchArgumentError(ValueError):
    """A bad benchmark argument; the command line turns it into exit status 2."""


@dataclass(frozen=True)
class BenchConfig:
    """Every setting of a sweep.

    Attributes:
        preset: the preset it started from.
        losses: loss specifications (registry names or expressions such as ``"0.5*dice+bce"``).
        seeds: the model seeds (one run per loss and seed).
        format: data format (see :data:`seglosses.data.FORMATS`).
        data: data path (``None`` for the built-in formats).
        image_size: side of the square slices, in pixels.
        subjects: number of subjects to use (``None``: the format's default, or all).
        slices_per_subject: axial slices per subject (``None``: the format's default).
        data_seed: seed of the data split and of the synthetic subjects (fixed across runs so
            that every run sees the same test cases and the comparison is paired).
        epochs: training epochs per run.
        batch_size: slices per optimisation step.
        lr: initial Adam learning rate.
        lr_min: learning rate reached at the last step (cosine decay).
        weight_decay: Adam weight decay.
        width: channels of the first U-Net level.
        depth: U-Net pooling steps.
        norm: U-Net normalisation (``"batch"`` or ``"group"``).
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        amp: mixed precision on CUDA (ignored on CPU).
        num_threads: CPU threads for torch (``None``: every core).
        examples: number of fixed test slices whose predictions are kept for the overlays.
        note: a line printed before the sweep (e.g. why the data fell back to ``shapes``).
    """

    preset: str = "quick"
    losses: tuple[str, ...] = PAPER_LOSSES
    seeds: tuple[int, ...] = (0,)
    format: str = "shapes"
    data: str | None = None
    image_size: int = 64
    subjects: int | None = None
    slices_per_subject: int | None = None
    data_seed: int = 0
    epochs: int = 5
    batch_size: int = 16
    lr: float = 1e-3
    lr_min: float = 1e-5
    weight_decay: float = 0.0
    width: int = 8
    depth: int = 3
    norm: str = "batch"
    device: str = "auto"
    amp: bool = True
    num_threads: int | None = None
    examples: int = 4
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dictionary."""
        out = asdict(self)
        out["losses"] = list(self.losses)
        out["seeds"] = list(self.seeds)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchConfig:
        """Inverse of :meth:`to_dict` (unknown keys are ignored)."""
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        if "losses" in kwargs:
            kwargs["losses"] = tuple(kwargs["losses"])
        if "seeds" in kwargs:
            kwargs["seeds"] = tuple(int(s) for s in kwargs["seeds"])
        return cls(**kwargs)

    def fingerprint_dict(self) -> dict[str, Any]:
        """The settings that change a run's result (all but loss, seed and placement)."""
        return {k: v for k, v in self.to_dict().items() if k not in _NOT_FINGERPRINTED}

    def fingerprint(self) -> str:
        """Short hash of :meth:`fingerprint_dict`."""
        text = json.dumps(self.fingerprint_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Preset:
    """A named starting configuration and what it is for."""

    name: str
    summary: str
    config: BenchConfig = field(default_factory=BenchConfig)
    shapes_images: int | None = None  # number of images when the data is ``shapes``


def _presets() -> dict[str, Preset]:
    quick = BenchConfig(
        preset="quick", losses=PAPER_LOSSES, seeds=(0,), format="mni-skullstrip",
        image_size=64, subjects=30, slices_per_subject=8, epochs=30, batch_size=16,
        width=8, depth=3, examples=4,
    )
    paper = BenchConfig(
        preset="paper", losses=PAPER_LOSSES, seeds=(0, 1, 2), format="mni-skullstrip",
        image_size=128, subjects=None, slices_per_subject=None, epochs=50, batch_size=16,
        width=32, depth=4, examples=6,
    )
    full = replace(paper, preset="full", losses=("all",))
    return {
        "quick": Preset("quick", "the survey's nine losses, 1 seed, a short CPU schedule on small "
                        "slices (a few minutes on 2 CPU cores)", quick, shapes_images=240),
        "paper": Preset("paper", "the survey's protocol: 2D U-Net, Adam 1e-3 decayed to 1e-5, "
                        "60/20/20 split by subject, 3 seeds, 128 px, 50 epochs (GPU expected)",
                        paper),
        "full": Preset("full", "the paper protocol with every registered loss (GPU expected)",
                       full),
    }


PRESETS: dict[str, Preset] = _presets()


def parse_losses(spec: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Resolve ``"paper"``, ``"all"`` or ``"NAME,NAME,..."`` into loss specifications.

    Every name is checked against the registry (``seglosses.get_loss``), so a typo fails
    before any training with the closest registered names.

    Raises:
        BenchArgumentError: empty list, duplicate or unknown loss.
    """
    import seglosses

    items = [spec] if isinstance(spec, str) else list(spec)
    names: list[str] = []
    for item in items:
        for part in str(item).split(","):
            part = part.strip()
            if not part:
                continue
            if part == "paper":
                names.extend(PAPER_LOSSES)
            elif part == "all":
                names.extend(seglosses.list_losses())
            else:
                names.append(part)
    if not names:
        raise BenchArgumentError(f"--losses must name at least one loss; got {spec!r}")
    out: list[str] = []
    for name in names:
        if name in out:
            continue
        try:
            seglosses.get_loss(name)
        except (ValueError, TypeError) as err:
            raise BenchArgumentError(f"--losses: {_first_line(err)}") from None
        out.append(name)
    return tuple(out)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def guess_format(path: Path) -> str:
    """Tell the data format of a folder from its layout.

    ``images/`` and ``masks/`` holding NIfTI files, or ``IMG_*.nii[.gz]`` files: ``nifti``;
    ``images/`` and ``masks/`` holding pictures: ``images``; subfolders holding
    ``*_brainmask.nii.gz``: ``nfbs``.

    Raises:
        BenchArgumentError: the layout matches none of these.
    """
    if not path.exists():
        raise BenchArgumentError(f"--data: {path} does not exist")
    if not path.is_dir():
        raise BenchArgumentError(f"--data: {path} is not a folder")
    if (path / "images").is_dir() and (path / "masks").is_dir():
        names = [p.name.lower() for p in (path / "images").iterdir()]
        if any(n.endswith((".nii", ".nii.gz")) for n in names):
            return "nifti"
        return "images"
    if any(path.glob("IMG_*.nii*")):
        return "nifti"
    if any(path.glob("*/*_brainmask.nii*")):
        return "nfbs"
    raise BenchArgumentError(
        f"--data: cannot tell the format of {path} (expected images/ + masks/, IMG_*/MASK_* "
        "NIfTI pairs, or NFBS subject folders); pass --format"
    )


def resolve_config(
    preset: str = "quick",
    *,
    data: str | Path | None = None,
    format: str | None = None,
    losses: str | None = None,
    seeds: int | None = None,
    epochs: int | None = None,
    image_size: int | None = None,
    batch_size: int | None = None,
    device: str | None = None,
    mri_available: bool | None = None,
    **extra: Any,
) -> BenchConfig:
    """Start from a preset and apply the given overrides.

    ``seeds=N`` means seeds ``0 .. N-1``. ``extra`` overrides any other field of
    :class:`BenchConfig` (e.g. ``width=4``). Without ``--data`` and ``--format``, a preset on
    ``mni-skullstrip`` falls back to ``shapes`` when the MRI extra is not installed, and says so
    in :attr:`BenchConfig.note`.

    Raises:
        BenchArgumentError: unknown preset, format or device, bad numbers, unknown losses,
            missing data path.
    """
    from ..data import FORMATS

    if preset not in PRESETS:
        raise BenchArgumentError(f"--preset must be one of {', '.join(PRESETS)}; got {preset!r}")
    cfg = PRESETS[preset].config
    changes: dict[str, Any] = {}
    note = ""
    if format is not None and format not in FORMATS:
        raise BenchArgumentError(f"--format must be one of {', '.join(FORMATS)}; got {format!r}")
    if data is not None:
        path = Path(data).expanduser()
        if not path.exists():
            raise BenchArgumentError(f"--data: {path} does not exist")
        fmt = format or guess_format(path)
        if fmt in ("shapes", "mni-skullstrip", "mni-gm"):
            raise BenchArgumentError(f"--format {fmt} is built in and takes no --data path")
        changes.update(format=fmt, data=str(path.resolve()))
        # A user's own data: use every subject and slice unless told otherwise.
        changes.update(subjects=None, slices_per_subject=None)
    elif format is not None:
        if format in ("nfbs", "nifti", "images"):
            raise BenchArgumentError(f"--format {format} needs --data PATH (the data folder)")
        changes["format"] = format
    if changes.get("format", cfg.format) in ("mni-skullstrip", "mni-gm"):
        if mri_available is None:
            from ..data import mri_available as _mri

            mri_available = _mri()
        if not mri_available:
            if format is not None:
                raise BenchArgumentError(
                    f"--format {format} needs the MRI extra: pip install 'seglosses[mri]'"
                )
            changes["format"] = "shapes"
            note = ("note: the MRI extra (nibabel + nilearn) is not installed, so this sweep runs "
                    "on the procedural 'shapes' data; pip install 'seglosses[mri]' for the "
                    "MNI-based skull-stripping data")
    if changes.get("format", cfg.format) == "shapes" and cfg.format != "shapes":
        changes.update(subjects=PRESETS[preset].shapes_images, slices_per_subject=None)
    if losses is not None:
        changes["losses"] = parse_losses(losses)
    else:
        changes["losses"] = parse_losses(cfg.losses)
    if seeds is not None:
        _check_count(seeds, "--seeds")
        changes["seeds"] = tuple(range(seeds))
    for name, value in (("epochs", epochs), ("image_size", image_size),
                        ("batch_size", batch_size)):
        if value is not None:
            _check_count(value, "--" + name.replace("_", "-"))
            changes[name] = value
    if device is not None:
        if device not in DEVICES:
            raise BenchArgumentError(f"--device must be one of {', '.join(DEVICES)}; got {device!r}")
        changes["device"] = device
    known = {f.name for f in fields(BenchConfig)}
    for key, value in extra.items():
        if key not in known:
            raise BenchArgumentError(f"unknown setting {key!r}")
        changes[key] = value
    if note:
        changes["note"] = note
    final = replace(cfg, **changes)
    if final.image_size < 2 ** final.depth:
        raise BenchArgumentError(
            f"--image-size must be at least {2 ** final.depth} for a depth-{final.depth} U-Net; "
            f"got {final.image_size}"
        )
    return final


_DEDICATED = {"preset": "--preset", "losses": "--losses", "seeds": "--seeds",
              "format": "--format", "data": "--data", "epochs": "--epochs",
              "image_size": "--image-size", "batch_size": "--batch-size", "device": "--device"}
_SETTABLE: dict[str, type] = {
    "subjects": int, "slices_per_subject": int, "data_seed": int, "lr": float, "lr_min": float,
    "weight_decay": float, "width": int, "depth": int, "norm": str, "amp": bool,
    "num_threads": int, "examples": int,
}


def parse_settings(items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Parse ``--set KEY=VALUE`` items into configuration overrides.

    Keys: ``subjects``, ``slices_per_subject`` (``none`` = the format's default), ``data_seed``,
    ``lr``, ``lr_min``, ``weight_decay``, ``width``, ``depth``, ``norm`` (``batch``/``group``),
    ``amp`` (``true``/``false``), ``num_threads``, ``examples``.

    Raises:
        BenchArgumentError: malformed item, unknown key, or a value of the wrong type.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        text = text.strip()
        if not sep or not key:
            raise BenchArgumentError(f"--set expects KEY=VALUE; got {item!r}")
        if key in _DEDICATED:
            raise BenchArgumentError(f"--set {key}: use {_DEDICATED[key]} instead")
        if key not in _SETTABLE:
            raise BenchArgumentError(
                f"--set: unknown key {key!r}; known: {', '.join(sorted(_SETTABLE))}")
        kind = _SETTABLE[key]
        if text.lower() == "none" and key in ("subjects", "slices_per_subject", "num_threads"):
            out[key] = None
            continue
        try:
            if kind is bool:
                if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(text)
                value: Any = text.lower() in ("true", "1", "yes")
            else:
                value = kind(text)
        except ValueError:
            what = {bool: "a boolean", int: "an integer", float: "a number"}.get(kind, "text")
            raise BenchArgumentError(f"--set {key} must be {what}; got {text!r}") from None
        if kind is int and value < (0 if key == "data_seed" else 1):
            raise BenchArgumentError(f"--set {key} must be a positive integer; got {value}")
        if kind is float and not (value >= 0 and math.isfinite(value)):
            raise BenchArgumentError(f"--set {key} must be a finite number >= 0; got {value}")
        if key == "norm" and value not in ("batch", "group", "none"):
            raise BenchArgumentError(f"--set norm must be one of batch, group, none; got {value!r}")
        out[key] = value
    return out


def _check_count(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BenchArgumentError(f"{name} must be a positive integer; got {value!r}")
