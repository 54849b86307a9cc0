"""Presets, overrides, loss lists, format guessing and the configuration fingerprint."""

from __future__ import annotations

from pathlib import Path

import pytest

import seglosses
from seglosses.bench.presets import (
    PAPER_LOSSES,
    PRESETS,
    BenchArgumentError,
    BenchConfig,
    guess_format,
    parse_losses,
    resolve_config,
)


def test_paper_losses_are_the_survey_nine() -> None:
    assert PAPER_LOSSES == ("bce", "weighted_bce", "focal", "dice", "tversky", "focal_tversky",
                            "sensitivity_specificity", "exp_log", "log_cosh_dice")


def test_presets_follow_the_protocol() -> None:
    quick, paper, full = (PRESETS[n].config for n in ("quick", "paper", "full"))
    assert quick.seeds == (0,) and quick.format == "mni-skullstrip"
    assert (paper.lr, paper.lr_min, paper.seeds, paper.image_size) == (1e-3, 1e-5, (0, 1, 2), 128)
    assert full.losses == ("all",) and full.epochs == paper.epochs


def test_quick_falls_back_to_shapes_with_a_note() -> None:
    cfg = resolve_config("quick", mri_available=False, losses="dice")
    assert cfg.format == "shapes"
    assert "not installed" in cfg.note
    assert cfg.subjects == PRESETS["quick"].shapes_images
    cfg = resolve_config("quick", mri_available=True, losses="dice")
    assert cfg.format == "mni-skullstrip" and cfg.note == ""


def test_options_override_the_preset() -> None:
    cfg = resolve_config("paper", format="shapes", losses="dice,bce", seeds=2, epochs=3,
                         image_size=40, batch_size=5, device="cpu", width=4)
    assert (cfg.format, cfg.losses, cfg.seeds, cfg.epochs) == ("shapes", ("dice", "bce"), (0, 1), 3)
    assert (cfg.image_size, cfg.batch_size, cfg.device, cfg.width) == (40, 5, "cpu", 4)
    assert cfg.lr == 1e-3 and cfg.preset == "paper"


def test_parse_losses() -> None:
    assert parse_losses("paper") == PAPER_LOSSES
    assert parse_losses("all") == tuple(seglosses.list_losses())
    assert parse_losses(" dice , bce,dice ") == ("dice", "bce")
    assert parse_losses("0.5*dice + 0.5*bce") == ("0.5*dice + 0.5*bce",)
    with pytest.raises(BenchArgumentError, match=r"^--losses: .*'dcie'.*closest: dice"):
        parse_losses("dcie")
    with pytest.raises(BenchArgumentError, match="at least one loss"):
        parse_losses(" , ")


def test_bad_arguments() -> None:
    with pytest.raises(BenchArgumentError, match=r"--preset must be one of quick, paper, full; got 'fast'"):
        resolve_config("fast")
    with pytest.raises(BenchArgumentError, match=r"--format must be one of .*got 'png'"):
        resolve_config("quick", format="png")
    with pytest.raises(BenchArgumentError, match=r"--seeds must be a positive integer; got 0"):
        resolve_config("quick", format="shapes", seeds=0)
    with pytest.raises(BenchArgumentError, match=r"--image-size must be at least 8"):
        resolve_config("quick", format="shapes", image_size=4)
    with pytest.raises(BenchArgumentError, match=r"--device must be one of auto, cpu, cuda; got 'tpu'"):
        resolve_config("quick", format="shapes", device="tpu")
    with pytest.raises(BenchArgumentError, match=r"--format nifti needs --data PATH"):
        resolve_config("quick", format="nifti")
    with pytest.raises(BenchArgumentError, match=r"does not exist"):
        resolve_config("quick", data="/no/such/folder")
    with pytest.raises(BenchArgumentError, match=r"needs the MRI extra"):
        resolve_config("quick", format="mni-gm", mri_available=False)


def test_guess_format(tmp_path: Path) -> None:
    (tmp_path / "a" / "images").mkdir(parents=True)
    (tmp_path / "a" / "masks").mkdir()
    (tmp_path / "a" / "images" / "x.png").write_bytes(b"")
    assert guess_format(tmp_path / "a") == "images"
    (tmp_path / "b" / "images").mkdir(parents=True)
    (tmp_path / "b" / "masks").mkdir()
    (tmp_path / "b" / "images" / "x.nii.gz").write_bytes(b"")
    assert guess_format(tmp_path / "b") == "nifti"
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "IMG_1.nii").write_bytes(b"")
    assert guess_format(tmp_path / "c") == "nifti"
    (tmp_path / "d" / "A00028185").mkdir(parents=True)
    (tmp_path / "d" / "A00028185" / "sub-A00028185_ses-NFB3_T1w_brainmask.nii.gz").write_bytes(b"")
    assert guess_format(tmp_path / "d") == "nfbs"
    (tmp_path / "e").mkdir()
    with pytest.raises(BenchArgumentError, match="cannot tell the format"):
        guess_format(tmp_path / "e")
    cfg = resolve_config("quick", data=tmp_path / "a", losses="dice")
    assert cfg.format == "images" and cfg.data == str((tmp_path / "a").resolve())
    assert cfg.subjects is None


def test_fingerprint_ignores_losses_seeds_and_placement() -> None:
    a = BenchConfig(losses=("dice",), seeds=(0,), device="cpu", num_threads=1)
    b = BenchConfig(losses=("bce", "dice"), seeds=(0, 1, 2), device="cuda", num_threads=8)
    assert a.fingerprint() == b.fingerprint()
    assert BenchConfig(epochs=6).fingerprint() != BenchConfig(epochs=7).fingerprint()
    assert BenchConfig.from_dict(b.to_dict()) == b


def test_parse_settings() -> None:
    from seglosses.bench.presets import parse_settings

    got = parse_settings(["width=4", "depth = 2", "subjects=none", "amp=false", "lr=0.01",
                          "norm=group", "data-seed=3"])
    assert got == {"width": 4, "depth": 2, "subjects": None, "amp": False, "lr": 0.01,
                   "norm": "group", "data_seed": 3}
    cfg = resolve_config("quick", format="shapes", losses="dice", **parse_settings(["subjects=30"]))
    assert cfg.subjects == 30
    for item, message in [("width", "KEY=VALUE"), ("epochs=3", "use --epochs"),
                          ("colour=red", "unknown key 'colour'"), ("width=two", "must be an integer"),
                          ("width=0", "positive integer"), ("amp=maybe", "a boolean"),
                          ("lr=-1", "finite number"), ("norm=layer", "batch, group, none")]:
        with pytest.raises(BenchArgumentError, match=message):
            parse_settings([item])
    with pytest.raises(BenchArgumentError, match="at least 32 for a depth-5"):
        resolve_config("quick", format="shapes", losses="dice", image_size=16, depth=5)
