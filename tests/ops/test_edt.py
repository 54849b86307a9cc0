"""``seglosses.ops``: exact EDT, signed distance and distance to boundary vs SciPy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage

from seglosses.ops import _edt_torch, dist_to_boundary, edt, signed_distance, squared_edt
from tests.reference import np_metrics as ref

METHODS = ["runs", "lockstep"]


def blobs(shape: tuple[int, ...], seed: int, fraction: float = 0.5) -> torch.Tensor:
    """Smooth random blobs over the last len(shape) - 1 dims (first dim = items)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape[0], 1, *shape[1:], generator=g)
    pool = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}[len(shape) - 1]
    kernel = tuple(min(5, 2 * (n // 2) + 1) for n in shape[1:])
    x = pool(x, kernel, 1, tuple(k // 2 for k in kernel), count_include_pad=False)
    thr = torch.quantile(x.flatten(1), 1 - fraction, dim=1).view(-1, *([1] * (x.dim() - 1)))
    return (x > thr)[:, 0]


def masks(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """A batch mixing blobs, noise, thin lines, single voxels, empty and full items."""
    g = torch.Generator().manual_seed(seed)
    items = [blobs(shape, seed)[0], blobs(shape, seed + 1, 0.9)[0],
             torch.rand(shape[1:], generator=g) < 0.5]
    line = torch.zeros(shape[1:], dtype=torch.bool)
    line[(slice(None),) + tuple(n // 2 for n in shape[2:])] = True        # a 1-voxel line
    items.append(line)
    items.append(~line)
    single_bg = torch.ones(shape[1:], dtype=torch.bool)
    single_bg[(0,) * (len(shape) - 1)] = False                             # one background voxel
    items.append(single_bg)
    single_fg = torch.zeros(shape[1:], dtype=torch.bool)
    single_fg[tuple(s // 2 for s in shape[1:])] = True
    items.append(single_fg)
    items.append(torch.zeros(shape[1:], dtype=torch.bool))
    items.append(torch.ones(shape[1:], dtype=torch.bool))
    return torch.stack(items)


SHAPES = [(1, 37), (1, 23, 17), (1, 1, 9), (1, 9, 1), (1, 11, 7, 5), (1, 6, 1, 9)]
SPACINGS = {1: [None, (0.7,)], 2: [None, (0.5, 2.0), (3.0, 0.3)], 3: [None, (2.5, 1.0, 0.6)]}


def assert_matches_scipy(out: torch.Tensor, mask: torch.Tensor, spacing) -> None:
    out_np = out.cpu().numpy()
    mask_np = mask.cpu().numpy()
    for i in range(mask_np.shape[0]):
        expected = ref.edt(mask_np[i], spacing)
        np.testing.assert_allclose(out_np[i], expected, rtol=1e-5, atol=1e-5)


def framed(mask: torch.Tensor) -> torch.Tensor:
    """Set index 0 of every spatial axis to False: every line then meets the background."""
    mask = mask.clone()
    for d in range(1, mask.dim()):
        mask.select(d, 0).fill_(False)
    return mask


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("frame", [False, True], ids=["plain", "framed"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_reference_values(shape, method, frame):
    nd = len(shape) - 1
    mask = masks(shape, seed=sum(shape))
    if frame:
        mask = framed(mask)
    for spacing in SPACINGS[nd]:
        steps = spacing or (1.0,) * nd
        out = _edt_torch.squared_edt(mask, steps, nd, method).sqrt()
        assert_matches_scipy(out, mask, spacing)


def test_public_entry_matches_scipy(device):
    mask = masks((1, 19, 26), seed=3).to(device).view(3, 3, 19, 26)
    out = edt(mask, spacing=(1.5, 0.8))
    assert out.dtype == torch.float32 and out.device == mask.device and out.shape == mask.shape
    assert_matches_scipy(out.view(9, 19, 26), mask.view(9, 19, 26), (1.5, 0.8))


def test_hand_computed():
    # 1-D: distances to the nearest False voxel on either side, 0 on False voxels
    m = torch.tensor([[[0, 1, 1, 1, 1, 1, 0, 1]]], dtype=torch.bool)
    assert edt(m).tolist() == [[[0, 1, 2, 3, 2, 1, 0, 1]]]
    # 2-D: a 3x3 True block in the corner of a 4x4 image; the False voxels are row 3 and
    # column 3, so each True voxel is min(3 - y, 3 - x) away from them
    m = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    m[..., :3, :3] = True
    expected = torch.tensor([[3, 2, 1, 0], [2, 2, 1, 0], [1, 1, 1, 0], [0, 0, 0, 0.]])
    assert torch.equal(edt(m)[0, 0], expected)
    # anisotropic: spacing 2 along y doubles the vertical distances only
    m = torch.ones(1, 1, 3, 3, dtype=torch.bool)
    m[..., 0, 0] = False
    out = edt(m, spacing=(2.0, 1.0))[0, 0]
    assert torch.allclose(out[2, 0], torch.tensor(4.0)) and torch.allclose(out[0, 2], torch.tensor(2.0))
    assert torch.allclose(out[2, 2], torch.tensor(20.0).sqrt())


def test_edge_cases():
    empty = torch.zeros(2, 1, 5, 6, dtype=torch.bool)
    assert torch.equal(edt(empty), torch.zeros(2, 1, 5, 6))
    full = torch.ones(2, 1, 5, 6, dtype=torch.bool)
    assert torch.isinf(edt(full)).all()
    mixed = torch.stack((empty[0], full[0]))
    out = edt(mixed)
    assert torch.equal(out[0], torch.zeros(1, 5, 6)) and torch.isinf(out[1]).all()
    # empty and full items give all-zero signed / boundary maps
    for fn in (signed_distance, dist_to_boundary):
        assert torch.equal(fn(mixed), torch.zeros_like(out))
    # a zero-size batch is fine
    assert edt(torch.zeros(0, 1, 4, 4, dtype=torch.bool)).shape == (0, 1, 4, 4)


def test_batched_equals_loop():
    mask = masks((1, 13, 10), seed=7)[:6].view(2, 3, 13, 10)
    batched = edt(mask, spacing=(1.0, 1.7))
    for b in range(2):
        for c in range(3):
            single = edt(mask[b, c][None, None], spacing=(1.0, 1.7))[0, 0]
            assert torch.equal(batched[b, c], single)
    # any number of leading dims with spatial_dims
    deep = mask.view(2, 3, 1, 13, 10)
    assert torch.equal(edt(deep, spacing=(1.0, 1.7), spatial_dims=2).view(2, 3, 13, 10), batched)


def test_methods_agree_on_long_lines():
    # long runs, many pops and absent samples: the two drivers agree exactly
    g = torch.Generator().manual_seed(0)
    mask = torch.rand(3, 301, 7, generator=g) < 0.97
    mask[2] = True
    mask[2, 150, 3] = False
    a = _edt_torch.squared_edt(mask, (1.0, 1.0), 2, "runs")
    b = _edt_torch.squared_edt(mask, (1.0, 1.0), 2, "lockstep")
    assert torch.equal(a, b)
    assert_matches_scipy(a.sqrt(), mask, None)


def test_runs_paths_are_exercised(monkeypatch):
    # batches without absent samples take the dense path, the others the sparse one
    calls = {"dense": 0, "sparse": 0}
    dense, sparse = _edt_torch._runs_dense, _edt_torch._runs_sparse

    def count(name, fn):
        def wrapper(*args):
            calls[name] += 1
            return fn(*args)
        return wrapper

    monkeypatch.setattr(_edt_torch, "_runs_dense", count("dense", dense))
    monkeypatch.setattr(_edt_torch, "_runs_sparse", count("sparse", sparse))
    mask = masks((1, 14, 13), seed=8)
    assert_matches_scipy(edt(mask, spatial_dims=2), mask, None)
    assert calls == {"dense": 0, "sparse": 1}
    assert_matches_scipy(edt(framed(mask), spatial_dims=2), framed(mask), None)
    assert calls == {"dense": 1, "sparse": 1}


def test_deep_pops():
    # heights falling fast along a line make every new parabola hide many stack entries
    h = torch.tensor([[900.0, 800, 700, 600, 500, 400, 300, 200, 100, 50, 20, 5, 1, 0.5]] * 2)
    h[1, :3] = _edt_torch.BIG
    expected = (h[:, None, :] + (torch.arange(14.0)[:, None] - torch.arange(14.0)) ** 2).amin(-1)
    for fn in (_edt_torch._envelope_runs, _edt_torch._envelope_lockstep):
        out = fn(h.contiguous(), 1)
        torch.testing.assert_close(out, expected.clamp(max=_edt_torch.BIG), rtol=1e-6, atol=1e-4)


def test_chunked_runs(monkeypatch):
    monkeypatch.setattr(_edt_torch, "_CHUNK", 50)
    mask = masks((1, 9, 8, 7), seed=11)
    out = _edt_torch.squared_edt(mask, (1.0, 2.0, 0.5), 3, "runs").sqrt()
    assert_matches_scipy(out, mask, (1.0, 2.0, 0.5))


def test_long_distances_are_exact():
    # squared distances up to 5000^2 stay exact in float32
    mask = torch.ones(1, 1, 5000, dtype=torch.bool)
    mask[..., 0] = False
    out = edt(mask)
    assert torch.equal(out[0, 0], torch.arange(5000, dtype=torch.float32))
    mask = torch.ones(1, 1, 3, 700, dtype=torch.bool)
    mask[..., 0, 0] = False
    assert_matches_scipy(edt(mask)[0], mask[0], None)


def test_signed_distance_and_boundary():
    mask = masks((1, 15, 12), seed=5)[:3].unsqueeze(1)
    sd = signed_distance(mask, spacing=(1.0, 2.0))
    db = dist_to_boundary(mask, spacing=(1.0, 2.0))
    for i in range(3):
        m = mask[i, 0].numpy()
        inside = ndimage.distance_transform_edt(m, sampling=(1.0, 2.0))
        outside = ndimage.distance_transform_edt(~m, sampling=(1.0, 2.0))
        np.testing.assert_allclose(sd[i, 0].numpy(), outside - inside, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(db[i, 0].numpy(), outside + inside, rtol=1e-5, atol=1e-5)
    assert (sd[mask] < 0).all() and (sd[~mask] > 0).all()


def test_noncontiguous_and_no_grad():
    mask = masks((1, 12, 9), seed=2)[:4]
    out = edt(mask.transpose(1, 2), spatial_dims=2)
    assert torch.equal(out, edt(mask.transpose(1, 2).contiguous(), spatial_dims=2))
    assert not out.requires_grad


def test_thread_count_untouched():
    before = torch.get_num_threads()
    edt(masks((2, 9, 7), seed=3))
    assert torch.get_num_threads() == before


def test_squared_edt():
    mask = masks((1, 10, 11), seed=9)[:3].unsqueeze(1)
    assert torch.allclose(squared_edt(mask), edt(mask) ** 2, rtol=1e-6)


def test_errors():
    m = torch.ones(1, 1, 4, 4, dtype=torch.bool)
    with pytest.raises(TypeError, match=r"`mask` must be a bool tensor; got dtype torch.float32"):
        edt(m.float())
    with pytest.raises(TypeError, match="`mask` must be a torch.Tensor; got list"):
        edt([[True]])
    with pytest.raises(ValueError, match=r"`mask` must have shape \(B, C, \*S\).*got 2 dims"):
        edt(torch.ones(4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"`spatial_dims` must lie in \[1, 3\]; got 4"):
        edt(m, spatial_dims=4)
    with pytest.raises(ValueError, match=r"`spatial_dims` must lie in \[1, 3\]; got 0"):
        edt(m, spatial_dims=0)
    with pytest.raises(TypeError, match="`spatial_dims` must be an int"):
        edt(m, spatial_dims=2.0)
    with pytest.raises(ValueError, match=r"`spatial_dims` \(3\) must not exceed"):
        edt(torch.ones(4, 4, dtype=torch.bool), spatial_dims=3)
    with pytest.raises(ValueError, match=r"`spacing` must hold one value per spatial dim \(2\); got 3"):
        edt(m, spacing=(1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match=r"`spacing` values must be finite and > 0; got \[1.0, -1.0\]"):
        edt(m, spacing=(1.0, -1.0))
    with pytest.raises(ValueError, match="finite and > 0"):
        edt(m, spacing=0.0)
    with pytest.raises(ValueError, match="finite and > 0"):
        edt(m, spacing=float("nan"))
    with pytest.raises(TypeError, match="`spacing` must hold numbers"):
        edt(m, spacing=(True, 1.0))
    with pytest.raises(TypeError, match="`spacing` must be a positive number or a sequence"):
        edt(m, spacing="1,1")
    for fn in (signed_distance, dist_to_boundary):
        with pytest.raises(TypeError, match="bool"):
            fn(m.long())


@pytest.mark.gpu
def test_cuda_matches_cpu_without_sync():
    mask = masks((1, 33, 20), seed=4)
    expected = edt(mask, spacing=(1.0, 0.7), spatial_dims=2)
    cuda = mask.cuda()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = edt(cuda, spacing=(1.0, 0.7), spatial_dims=2)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert out.device.type == "cuda"
    torch.testing.assert_close(out.cpu(), expected, rtol=1e-5, atol=1e-5)
