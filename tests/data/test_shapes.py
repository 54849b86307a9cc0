"""The procedural ``shapes`` format: determinism, fraction control, options."""

from __future__ import annotations

import pytest
import torch

from seglosses.data import DataError, ShapesOptions, load_data, make_shapes
from seglosses.data.shapes import parse_options


def test_deterministic_by_seed() -> None:
    a = make_shapes(6, 32, seed=3)
    b = make_shapes(6, 32, seed=3)
    c = make_shapes(6, 32, seed=4)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])


def test_image_depends_on_seed_and_index_only() -> None:
    small_img, small_mask = make_shapes(3, 16, seed=1)
    big_img, big_mask = make_shapes(131, 16, seed=1)  # crosses the internal chunk of 128
    assert torch.equal(small_img, big_img[:3]) and torch.equal(small_mask, big_mask[:3])
    again_img, _ = make_shapes(130, 16, seed=1)
    assert torch.equal(again_img[128:130], big_img[128:130])


@pytest.mark.parametrize("fraction", [0.01, 0.1, 0.4])
def test_fraction_exact_without_spread(fraction: float) -> None:
    size = 48
    _, masks = make_shapes(8, size, seed=0, fraction=fraction, spread=0.0)
    expected = round(fraction * size * size) / size**2
    assert torch.allclose(masks.float().mean(dim=(1, 2)), torch.full((8,), expected))


def test_fraction_spread_bounds() -> None:
    _, masks = make_shapes(40, 32, seed=2, fraction=0.2, spread=0.5)
    per_image = masks.float().mean(dim=(1, 2))
    assert per_image.min() >= 0.1 - 1 / 1024 and per_image.max() <= 0.3 + 1 / 1024
    assert per_image.std() > 0.02  # the spread is real
    assert abs(float(per_image.mean()) - 0.2) < 0.03


def test_outputs_range_and_types() -> None:
    images, masks = make_shapes(5, 40, seed=0)
    assert images.shape == masks.shape == (5, 40, 40)
    assert images.dtype == torch.float32 and masks.dtype == torch.uint8
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
    assert set(masks.unique().tolist()) <= {0, 1}


def test_clean_image_separates_foreground() -> None:
    """Without noise, blur, texture or distractors the classes are separable by intensity."""
    images, masks = make_shapes(6, 48, seed=5, noise=0.0, blur=0.0, texture=0.0, distractors=0)
    for img, m in zip(images, masks.bool()):
        fg, bg = img[m], img[~m]
        gap = max(float(fg.min()) - float(bg.max()), float(bg.min()) - float(fg.max()))
        # Anti-aliased edges overlap by a few grey levels at most.
        assert abs(float(fg.median()) - float(bg.median())) > 0.5
        assert gap > -0.6


def test_noise_level_controls_residual() -> None:
    clean = dict(blur=0.0, texture=0.0, distractors=0)
    quiet, _ = make_shapes(4, 48, seed=1, noise=0.0, **clean)
    residual = [float((make_shapes(4, 48, seed=1, noise=n, **clean)[0] - quiet).std())
                for n in (0.05, 0.3, 1.0)]
    assert residual[0] > 0.02
    assert residual[0] * 1.3 < residual[1] and residual[1] * 1.2 < residual[2]


def test_blur_smooths_edges() -> None:
    sharp, _ = make_shapes(4, 48, seed=1, noise=0.0, blur=0.0, texture=0.0)
    soft, _ = make_shapes(4, 48, seed=1, noise=0.0, blur=3.0, texture=0.0)
    def grad(x: torch.Tensor) -> float:
        return float((x[:, 1:, :] - x[:, :-1, :]).abs().max(dim=2).values.mean())
    assert grad(soft) < 0.7 * grad(sharp)


def test_curves_are_thin() -> None:
    """Curves at a small fraction are long and thin: much more boundary per area than discs."""
    _, curves = make_shapes(6, 64, seed=0, shapes=("curve",), fraction=0.03, spread=0.0)
    _, discs = make_shapes(6, 64, seed=0, shapes=("ellipse",), fraction=0.03, spread=0.0,
                           max_shapes=1)

    def boundary_ratio(m: torch.Tensor) -> float:
        m = m.float()
        edge = ((m[:, 1:, :] != m[:, :-1, :]).float().sum()
                + (m[:, :, 1:] != m[:, :, :-1]).float().sum())
        return float(edge / m.sum())

    assert boundary_ratio(curves) > 2.0 * boundary_ratio(discs)


def test_parse_options() -> None:
    opts = parse_options("fraction=0.05, noise=0.5,shapes=ellipse+rectangle,max_shapes=2")
    assert opts == ShapesOptions(fraction=0.05, noise=0.5, shapes=("ellipse", "rectangle"),
                                 max_shapes=2)
    assert parse_options(None) == ShapesOptions()
    assert parse_options("") == ShapesOptions()


@pytest.mark.parametrize(
    "text, match",
    [
        ("fraction", "could not read 'fraction'"),
        ("colour=red", "could not read 'colour=red'"),
        ("noise=loud", "not a number"),
        ("fraction=2", "fraction"),
        ("shapes=hexagon", "shapes"),
    ],
)
def test_bad_options(text: str, match: str) -> None:
    with pytest.raises(DataError, match=match):
        parse_options(text)


def test_errors() -> None:
    with pytest.raises(ValueError, match="fraction"):
        ShapesOptions(fraction=0.0)
    with pytest.raises(ValueError, match="shapes"):
        ShapesOptions(shapes=())
    with pytest.raises(TypeError, match="n"):
        make_shapes(2.5, 32)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="size"):
        make_shapes(2, 4)


def test_load_data_shapes() -> None:
    data = load_data("shapes", image_size=32, subjects=20, seed=1)
    assert data.format == "shapes" and data.volumetric is False and data.spacing == (1.0, 1.0)
    assert (len(data.train), len(data.val), len(data.test)) == (12, 4, 4)
    for part in (data.train, data.val, data.test):
        assert part.images.shape[1:] == (1, 32, 32) and part.images.dtype == torch.float32
        assert part.masks.dtype == torch.float32 and set(part.masks.unique().tolist()) <= {0.0, 1.0}
        assert len(set(part.subjects)) == len(part)  # one image per subject
    assert "Not medical images" in data.description
    custom = load_data("shapes", "fraction=0.05,spread=0", image_size=32, subjects=5)
    assert torch.allclose(custom.train.masks.mean(dim=(1, 2, 3)), torch.tensor(51 / 1024))
