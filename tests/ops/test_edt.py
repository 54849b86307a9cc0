"""``seglosses.ops``: exact EDT, signed distance and distance to boundary vs SciPy."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage

from seglosses.ops import (_edt_scipy, _edt_torch, dist_to_boundary, edt, signed_distance,
                           squared_edt)
from tests.reference import np_metrics as ref

METHODS = ["runs", "lockstep"]
BACKENDS = ["torch", "scipy"]
edt_module = importlib.import_module("seglosses.ops.edt")   # the module (``edt`` is the function)


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


@pytest.mark.parametrize("backend", ["auto", "torch"])
def test_public_entry_matches_scipy(device, backend):
    mask = masks((1, 19, 26), seed=3).to(device).view(3, 3, 19, 26)
    out = edt(mask, spacing=(1.5, 0.8), backend=backend)
    assert out.dtype == torch.float32 and out.device == mask.device and out.shape == mask.shape
    assert_matches_scipy(out.view(9, 19, 26), mask.view(9, 19, 26), (1.5, 0.8))


@pytest.mark.parametrize("backend", BACKENDS)
def test_hand_computed(backend):
    # 1-D: distances to the nearest False voxel on either side, 0 on False voxels
    m = torch.tensor([[[0, 1, 1, 1, 1, 1, 0, 1]]], dtype=torch.bool)
    assert edt(m, backend=backend).tolist() == [[[0, 1, 2, 3, 2, 1, 0, 1]]]
    # 2-D: a 3x3 True block in the corner of a 4x4 image; the False voxels are row 3 and
    # column 3, so each True voxel is min(3 - y, 3 - x) away from them
    m = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    m[..., :3, :3] = True
    expected = torch.tensor([[3, 2, 1, 0], [2, 2, 1, 0], [1, 1, 1, 0], [0, 0, 0, 0.]])
    assert torch.equal(edt(m, backend=backend)[0, 0], expected)
    # anisotropic: spacing 2 along y doubles the vertical distances only
    m = torch.ones(1, 1, 3, 3, dtype=torch.bool)
    m[..., 0, 0] = False
    out = edt(m, spacing=(2.0, 1.0), backend=backend)[0, 0]
    assert torch.allclose(out[2, 0], torch.tensor(4.0)) and torch.allclose(out[0, 2], torch.tensor(2.0))
    assert torch.allclose(out[2, 2], torch.tensor(20.0).sqrt())


@pytest.mark.parametrize("backend", BACKENDS)
def test_edge_cases(backend):
    empty = torch.zeros(2, 1, 5, 6, dtype=torch.bool)
    assert torch.equal(edt(empty, backend=backend), torch.zeros(2, 1, 5, 6))
    full = torch.ones(2, 1, 5, 6, dtype=torch.bool)
    assert torch.isinf(edt(full, backend=backend)).all()
    mixed = torch.stack((empty[0], full[0]))
    out = edt(mixed, backend=backend)
    assert torch.equal(out[0], torch.zeros(1, 5, 6)) and torch.isinf(out[1]).all()
    # empty and full items give all-zero signed / boundary maps
    for fn in (signed_distance, dist_to_boundary):
        assert torch.equal(fn(mixed, backend=backend), torch.zeros_like(out))
    # a zero-size batch is fine
    assert edt(torch.zeros(0, 1, 4, 4, dtype=torch.bool), backend=backend).shape == (0, 1, 4, 4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_batched_equals_loop(backend):
    mask = masks((1, 13, 10), seed=7)[:6].view(2, 3, 13, 10)
    batched = edt(mask, spacing=(1.0, 1.7), backend=backend)
    for b in range(2):
        for c in range(3):
            single = edt(mask[b, c][None, None], spacing=(1.0, 1.7), backend=backend)[0, 0]
            assert torch.equal(batched[b, c], single)
    # any number of leading dims with spatial_dims
    deep = mask.view(2, 3, 1, 13, 10)
    out = edt(deep, spacing=(1.0, 1.7), spatial_dims=2, backend=backend)
    assert torch.equal(out.view(2, 3, 13, 10), batched)


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
    assert_matches_scipy(edt(mask, spatial_dims=2, backend="torch"), mask, None)
    assert calls == {"dense": 0, "sparse": 1}
    assert_matches_scipy(edt(framed(mask), spatial_dims=2, backend="torch"), framed(mask), None)
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


@pytest.mark.parametrize("backend", BACKENDS)
def test_long_distances_are_exact(backend):
    # squared distances up to 5000^2 stay exact in float32
    mask = torch.ones(1, 1, 5000, dtype=torch.bool)
    mask[..., 0] = False
    out = edt(mask, backend=backend)
    assert torch.equal(out[0, 0], torch.arange(5000, dtype=torch.float32))
    mask = torch.ones(1, 1, 3, 700, dtype=torch.bool)
    mask[..., 0, 0] = False
    assert_matches_scipy(edt(mask, backend=backend)[0], mask[0], None)


@pytest.mark.parametrize("backend", BACKENDS)
def test_signed_distance_and_boundary(backend):
    mask = masks((1, 15, 12), seed=5)[:3].unsqueeze(1)
    sd = signed_distance(mask, spacing=(1.0, 2.0), backend=backend)
    db = dist_to_boundary(mask, spacing=(1.0, 2.0), backend=backend)
    for i in range(3):
        m = mask[i, 0].numpy()
        inside = ndimage.distance_transform_edt(m, sampling=(1.0, 2.0))
        outside = ndimage.distance_transform_edt(~m, sampling=(1.0, 2.0))
        np.testing.assert_allclose(sd[i, 0].numpy(), outside - inside, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(db[i, 0].numpy(), outside + inside, rtol=1e-5, atol=1e-5)
    assert (sd[mask] < 0).all() and (sd[~mask] > 0).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_noncontiguous_and_no_grad(backend):
    mask = masks((1, 12, 9), seed=2)[:4]
    out = edt(mask.transpose(1, 2), spatial_dims=2, backend=backend)
    assert torch.equal(out, edt(mask.transpose(1, 2).contiguous(), spatial_dims=2, backend=backend))
    assert not out.requires_grad


@pytest.mark.parametrize("backend", BACKENDS)
def test_thread_count_untouched(backend):
    before = torch.get_num_threads()
    edt(masks((2, 9, 7), seed=3), backend=backend)
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("backend", BACKENDS)
def test_squared_edt(backend):
    mask = masks((1, 10, 11), seed=9)[:3].unsqueeze(1)
    squared = squared_edt(mask, backend=backend)
    assert torch.allclose(squared, edt(mask, backend=backend) ** 2, rtol=1e-6)


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


# ----------------------------------------------------------------------------------------
# backends: "torch", "scipy" (CPU, SciPy installed) and the "auto" rule
# ----------------------------------------------------------------------------------------

def brute_squared_edt(item: np.ndarray, spacing) -> np.ndarray:
    """Squared EDT of one bool array by comparing every voxel with every False voxel."""
    steps = np.ones(item.ndim) if spacing is None else np.asarray(spacing, dtype=np.float64)
    coords = np.indices(item.shape).reshape(item.ndim, -1).T * steps
    background = coords[~item.reshape(-1)]
    if background.shape[0] == 0:
        return np.full(item.shape, np.inf)
    diff = coords[:, None, :] - background[None, :, :]
    return (diff * diff).sum(-1).min(1).reshape(item.shape)


@pytest.fixture
def threads():
    """Set torch's thread count for one test (the SciPy backend uses as many threads)."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


@pytest.mark.parametrize("frame", [False, True], ids=["plain", "framed"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_scipy_backend_reference_values(shape, frame, threads):
    threads(2)
    nd = len(shape) - 1
    mask = masks(shape, seed=sum(shape) + 1)
    if frame:
        mask = framed(mask)
    for spacing in SPACINGS[nd]:
        steps = spacing or (1.0,) * nd
        ours = _edt_scipy.distances(mask, steps, nd, squared=True)
        assert ours.dtype == torch.float32 and ours.shape == mask.shape
        brute = np.stack([brute_squared_edt(item, spacing) for item in mask.numpy()])
        torch_path = _edt_torch.squared_edt(mask, steps, nd)
        if spacing is None:
            # integer squared distances: exact in both backends
            assert torch.equal(ours, torch.from_numpy(brute).float())
            assert torch.equal(ours, torch_path)
        else:
            np.testing.assert_allclose(ours.numpy(), brute, rtol=1e-6, atol=0)
            torch.testing.assert_close(ours, torch_path, rtol=1e-5, atol=1e-5)
        assert_matches_scipy(edt(mask, spacing, nd, backend="scipy"), mask, spacing)


def test_scipy_backend_batches_and_threads(threads, monkeypatch):
    monkeypatch.setattr(_edt_scipy, "_MIN_VOXELS_PER_THREAD", 1)    # threads even for tiny maps
    mask = masks((1, 21, 16), seed=12).view(3, 3, 21, 16)
    expected = _edt_torch.squared_edt(mask, (0.9, 1.3), 2)
    serial = None
    for count in (1, 2, 3, 16):             # 16 threads: more threads than items
        threads(count)
        out = squared_edt(mask, (0.9, 1.3), backend="scipy")
        assert out.shape == mask.shape and out.device.type == "cpu"
        serial = out if serial is None else serial
        assert torch.equal(out, serial)
        torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
        assert torch.get_num_threads() == count
    # one pool per size, reused across calls; the calling thread is one of the threads
    threads(3)
    squared_edt(mask, backend="scipy")
    pool = _edt_scipy._POOLS[2]
    squared_edt(mask, backend="scipy")
    assert _edt_scipy._POOLS[2] is pool
    # a forked child (another process id) builds its own pools: the parent's threads are gone
    monkeypatch.setattr(_edt_scipy, "_POOLS_PID", [-1])
    squared_edt(mask, backend="scipy")
    assert _edt_scipy._POOLS[2] is not pool
    pool.shutdown()
    # an error in a worker reaches the caller
    failing = _edt_scipy._squared_item

    def fail_on_last(ndimage, item, spacing, grid):
        if np.shares_memory(item, last):
            raise RuntimeError("worker failed")
        return failing(ndimage, item, spacing, grid)

    last = mask.numpy()[-1, -2]                  # an item of the last chunk, not all True
    assert not last.all()
    monkeypatch.setattr(_edt_scipy, "_squared_item", fail_on_last)
    with pytest.raises(RuntimeError, match="worker failed"):
        squared_edt(mask, backend="scipy")
    monkeypatch.setattr(_edt_scipy, "_squared_item", failing)
    # the square root taken by the workers, in float64: correctly rounded to float32 (torch's
    # float32 square root may be one unit in the last place off)
    squared = squared_edt(mask, backend="scipy")
    rounded = torch.from_numpy(np.sqrt(squared.double().numpy()).astype(np.float32))
    assert torch.equal(edt(mask, backend="scipy"), rounded)
    torch.testing.assert_close(edt(mask, backend="scipy"), edt(mask, backend="torch"),
                               rtol=2.5e-7, atol=0)
    # non-contiguous input, extra leading dims, a single item
    tr = mask.transpose(-1, -2)
    assert torch.equal(squared_edt(tr, backend="scipy"),
                       squared_edt(tr.contiguous(), backend="torch"))
    deep = mask.view(3, 3, 1, 21, 16)
    assert torch.equal(squared_edt(deep, spatial_dims=2, backend="scipy").view(mask.shape),
                       squared_edt(mask, backend="scipy"))
    assert torch.equal(squared_edt(mask[:1, :1], backend="scipy"), squared_edt(mask[:1, :1]))


def test_scipy_thread_count(threads):
    threads(4)
    minimum = _edt_scipy._MIN_VOXELS_PER_THREAD
    assert _edt_scipy.thread_count(32, 256 * 256) == 4
    assert _edt_scipy.thread_count(3, 256 * 256) == 3            # at least one item each
    assert _edt_scipy.thread_count(2, minimum) == 2
    assert _edt_scipy.thread_count(3, minimum // 2) == 1         # too little work to share
    assert _edt_scipy.thread_count(8, 64 * 64) == max(1, min(4, 8 * 64 * 64 // minimum))
    threads(1)
    assert _edt_scipy.thread_count(32, 256 * 256) == 1


def test_scipy_backend_edge_cases(threads):
    threads(2)
    empty = torch.zeros(2, 1, 5, 6, dtype=torch.bool)
    full = torch.ones(2, 1, 5, 6, dtype=torch.bool)
    assert torch.equal(edt(empty, backend="scipy"), torch.zeros(2, 1, 5, 6))
    assert torch.isinf(edt(full, backend="scipy")).all()
    mixed = torch.cat((full, empty, full))
    out = edt(mixed, backend="scipy")
    assert torch.isinf(out[:2]).all() and torch.equal(out[2:4], torch.zeros(2, 1, 5, 6))
    assert torch.isinf(out[4:]).all()
    for fn in (signed_distance, dist_to_boundary):
        assert torch.equal(fn(mixed, backend="scipy"), torch.zeros_like(out))
        mask = masks((1, 15, 12), seed=5)[:4].unsqueeze(1)
        torch.testing.assert_close(fn(mask, (1.0, 2.0), backend="scipy"),
                                   fn(mask, (1.0, 2.0), backend="torch"), rtol=1e-5, atol=1e-5)
    assert edt(torch.zeros(0, 1, 4, 4, dtype=torch.bool), backend="scipy").shape == (0, 1, 4, 4)
    # long distances stay exact integers
    line = torch.ones(1, 1, 5000, dtype=torch.bool)
    line[..., 0] = False
    assert torch.equal(squared_edt(line, backend="scipy")[0, 0], torch.arange(5000.0) ** 2)


def test_auto_rule():
    rule = edt_module.scipy_is_faster
    # SciPy for 1-D items, 2-D items up to 2^19 voxels, 3-D items up to 2^17 voxels ...
    assert rule((65536,), 32) and rule((4096,), 1) and rule((256,), 32) and rule((1 << 22,), 4)
    assert rule((256, 256), 32) and rule((64, 64), 1) and rule((512, 1024), 32)
    assert rule((48, 48, 48), 8) and rule((32, 64, 64), 1) and rule((4, 4, 4), 1)
    # ... except many (> 256) small (< 1024 voxels in 1-D and 2-D, < 256 in 3-D) items
    assert rule((32, 32), 1024) and rule((16, 16), 256) and rule((8,), 256)
    assert not rule((16, 16), 257) and not rule((8,), 4096) and not rule((256,), 512)
    assert rule((8, 8, 8), 4096) and rule((4, 4, 4), 256) and not rule((4, 4, 4), 257)
    # torch for larger 2-D and 3-D items
    assert not rule((513, 1024), 1) and not rule((1024, 1024), 32)
    assert not rule((33, 64, 64), 1) and not rule((128, 128, 128), 4) and not rule((96,) * 3, 1)


def test_auto_resolution(monkeypatch):
    resolve = edt_module.resolve_backend
    cases = [((32, 1, 256, 256), 2, "scipy"), ((2, 1, 64, 64, 64), 3, "torch"),
             ((2, 1, 48, 48, 48), 3, "scipy"),
             ((300, 1, 16, 16), 2, "torch"), ((8, 1, 16, 16), 2, "scipy"), ((4, 100), 1, "scipy")]
    for shape, nd, expected in cases:
        mask = torch.zeros(shape, dtype=torch.bool)
        assert resolve("auto", mask, nd) == expected
        assert resolve("torch", mask, nd) == "torch" and resolve("scipy", mask, nd) == "scipy"
    # other devices always take the torch driver (a meta tensor holds no data to move)
    meta = torch.zeros(32, 1, 256, 256, dtype=torch.bool, device="meta")
    assert resolve("auto", meta, 2) == "torch"
    # the public functions call the backend the rule names
    calls = []
    for module, attr, name in ((_edt_scipy, "distances", "scipy"),
                              (_edt_torch, "squared_edt", "torch")):
        original = getattr(module, attr)

        def record(*args, _fn=original, _name=name, **kwargs):
            calls.append(_name)
            return _fn(*args, **kwargs)

        monkeypatch.setattr(module, attr, record)
    edt(torch.rand(2, 1, 40, 40) < 0.5)
    edt(torch.rand(1, 1, 60, 60, 40) < 0.5)
    signed_distance(torch.rand(1, 1, 40, 40) < 0.5)
    dist_to_boundary(torch.rand(1, 1, 40, 40) < 0.5, backend="torch")
    edt(torch.rand(1, 1, 8, 8, 8) < 0.5, backend="scipy")
    assert calls == ["scipy", "torch", "scipy", "torch", "scipy"]


@pytest.mark.parametrize("fn", [edt, squared_edt, signed_distance, dist_to_boundary])
def test_backend_errors(fn):
    m = torch.ones(1, 1, 4, 4, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"`backend` must be one of \['auto', 'torch', 'scipy'\]; "
                                         r"got 'SciPy' \(did you mean 'scipy'\?\)"):
        fn(m, backend="SciPy")
    with pytest.raises(ValueError, match=r"`backend` must be one of .*; got 'cuda'$"):
        fn(m, backend="cuda")
    with pytest.raises(ValueError, match=r"`backend` must be one of .*; got None"):
        fn(m, backend=None)
    with pytest.raises(ValueError, match=r"`backend`='scipy' runs on CPU tensors only; got `mask` "
                                         r"on device meta"):
        fn(m.to("meta"), backend="scipy")
    with pytest.raises(TypeError, match="positional"):
        fn(m, None, 2, "scipy")            # backend is keyword-only


def test_without_scipy(monkeypatch):
    # an import of scipy.ndimage that fails, as when SciPy is not installed
    monkeypatch.setitem(sys.modules, "scipy.ndimage", None)
    assert not _edt_scipy.available()
    mask = masks((1, 17, 14), seed=6)
    assert edt_module.resolve_backend("auto", mask, 2) == "torch"
    assert_matches_scipy(edt(mask, spatial_dims=2), mask, None)
    with pytest.raises(ImportError, match=r"`backend`='scipy' needs SciPy, which cannot be "):
        edt(mask, spatial_dims=2, backend="scipy")
    with pytest.raises(ImportError, match="needs scipy"):
        _edt_scipy.distances(mask, (1.0, 1.0), 2, squared=True)


def test_import_without_scipy():
    # a fresh interpreter where SciPy cannot be imported: the package imports and "auto" runs
    code = textwrap.dedent("""
        import sys
        sys.modules["scipy"] = None
        import torch
        import seglosses
        from seglosses.ops import edt
        m = torch.zeros(2, 1, 5, 7, dtype=torch.bool)
        m[:, :, 1:4, 2:6] = True
        out = edt(m)
        assert out.max().item() == 2.0, out
        try:
            edt(m, backend="scipy")
        except ImportError as e:
            print("ok:", e)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok: `backend`='scipy' needs SciPy")
