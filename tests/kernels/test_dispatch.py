"""The losses' dispatch to the fused Triton kernels, end to end.

Without a GPU the kernels run under Triton's CPU interpreter: the tests let the dispatch take
CPU tensors (``seglosses.kernels._ON_CPU``) and compare every loss built on the kernels, value
and gradient, with the eager PyTorch path on the same inputs.
"""

from __future__ import annotations

from types import ModuleType

import pytest
import torch

import seglosses
import seglosses.kernels as kernels_pkg


@pytest.fixture
def triton_on(kernels: ModuleType, device: torch.device, monkeypatch: pytest.MonkeyPatch):
    """Kernels enabled, on CPU tensors too when there is no GPU."""
    monkeypatch.setattr(kernels_pkg, "_ON_CPU", device.type == "cpu")
    monkeypatch.setattr(kernels_pkg, "_ENABLED", True)
    return device


def _inputs(mode: str, weighting: str, device: torch.device, dtype: torch.dtype):
    g = torch.Generator().manual_seed(3)
    b, c, shape = 2, {"binary": 1, "multilabel": 3, "multiclass": 4}[mode], (9, 11)
    logits = (2.5 * torch.randn(b, c, *shape, generator=g)).to(dtype)
    if mode == "multiclass":
        target = torch.randint(0, c, (b, *shape), generator=g)
    else:
        target = (torch.rand(b, c, *shape, generator=g) > 0.55).float()
    kwargs: dict = {}
    mask = None
    if weighting == "mask":
        mask = torch.rand(b, 1, *shape, generator=g) > 0.25
        mask = mask.to(device)
    elif weighting == "ignore":
        kwargs["ignore_index"] = 2 if mode == "multiclass" else 0
    elif weighting == "class_weights":
        kwargs["class_weights"] = [0.5, 2.0, 1.0, 0.75][:c]
    return logits.to(device), target.to(device), mask, kwargs


CASES = [
    ("dice", {}), ("dice", {"batch": True}), ("jaccard", {}), ("tversky", {}),
    ("focal_tversky", {}), ("generalized_dice", {}), ("bce", {}), ("focal", {}),
    ("focal", {"alpha": None, "gamma": 0.5}), ("weighted_bce", {}), ("balanced_bce", {}),
    ("dice_ce", {}), ("dice_focal", {}), ("combo", {}), ("unified_focal", {}),
]


def _value_and_grad(name, params, logits, target, mask, kwargs, mode):
    x = logits.detach().clone().requires_grad_()
    loss = seglosses.get_loss(name, mode=mode, reduction="none", **params, **kwargs)
    value = loss(x, target, mask)
    (grad,) = torch.autograd.grad((value * torch.arange(1.0, value.numel() + 1,
                                                         device=value.device)).sum(), x)
    return value.detach(), grad


#: one-vs-rest softmax terms have no kernel (they stay eager on every device), and one class
#: weight in binary mode is a plain scale
COMBOS = [(name, params, mode, weighting) for name, params in CASES
          for mode in ("binary", "multilabel", "multiclass")
          for weighting in ("none", "mask", "ignore", "class_weights")
          if not (mode == "multiclass" and name in ("weighted_bce", "balanced_bce", "combo"))
          and not (mode == "binary" and weighting == "class_weights")]


@pytest.mark.parametrize("name,params,mode,weighting", COMBOS,
                         ids=[f"{n}{'-' + '-'.join(map(str, p.values())) if p else ''}-{m}-{w}"
                              for n, p, m, w in COMBOS])
def test_kernels_match_eager(name, params, mode, weighting, triton_on, monkeypatch):
    """Every loss on the kernels gives the eager value and gradient."""
    logits, target, mask, kwargs = _inputs(mode, weighting, triton_on, torch.float32)
    v1, g1 = _value_and_grad(name, params, logits, target, mask, kwargs, mode)
    monkeypatch.setattr(kernels_pkg, "_ENABLED", False)
    v2, g2 = _value_and_grad(name, params, logits, target, mask, kwargs, mode)
    torch.testing.assert_close(v1, v2, rtol=2e-5, atol=1e-6)
    torch.testing.assert_close(g1, g2, rtol=2e-5, atol=1e-7)


@pytest.mark.parametrize("mode", ["binary", "multiclass"])
def test_kernels_used(mode, triton_on, kernels, monkeypatch):
    """The dispatch really reaches the kernels (else the comparison above proves nothing)."""
    calls = []
    for fn in ("sigmoid_stats", "softmax_stats", "binary_focal_sums", "softmax_focal_sums"):
        original = getattr(kernels, fn)
        monkeypatch.setattr(kernels, fn,
                            lambda *a, _f=original, _n=fn, **k: (calls.append((_n, a[1].dtype)),
                                                                 _f(*a, **k))[1])
    logits, target, mask, kwargs = _inputs(mode, "mask", triton_on, torch.float32)
    seglosses.get_loss("dice_focal", mode=mode)(logits, target, mask)
    stats = "softmax_stats" if mode == "multiclass" else "sigmoid_stats"
    focal = "softmax_focal_sums" if mode == "multiclass" else "binary_focal_sums"
    assert [name for name, _ in calls] == [stats, focal]
    # integer labels reach the softmax kernels as they are, without a one-hot copy
    expected = torch.int64 if mode == "multiclass" else torch.float32
    assert [dtype for _, dtype in calls] == [expected, expected]


def test_half_logits_read_as_given(triton_on, kernels, monkeypatch):
    """bfloat16 logits reach the kernels unconverted, and the loss equals the eager one."""
    seen = []
    original = kernels.sigmoid_stats
    monkeypatch.setattr(kernels, "sigmoid_stats",
                        lambda x, *a: (seen.append(x.dtype), original(x, *a))[1])
    logits, target, mask, kwargs = _inputs("binary", "none", triton_on, torch.bfloat16)
    v1, g1 = _value_and_grad("dice", {}, logits, target, mask, kwargs, "binary")
    assert seen == [torch.bfloat16]
    monkeypatch.setattr(kernels_pkg, "_ENABLED", False)
    v2, g2 = _value_and_grad("dice", {}, logits, target, mask, kwargs, "binary")
    torch.testing.assert_close(v1, v2, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(g1.float(), g2.float(), rtol=1e-2, atol=1e-4)


def test_disabled_by_environment(monkeypatch):
    """SEGLOSSES_TRITON=0 turns the kernels off; set_enabled overrides it."""
    monkeypatch.setattr(kernels_pkg, "_ENABLED", None)
    monkeypatch.setenv("SEGLOSSES_TRITON", "0")
    assert not kernels_pkg.enabled()
    kernels_pkg.set_enabled(True)
    try:
        assert kernels_pkg.enabled()
    finally:
        kernels_pkg.set_enabled(None)
    with pytest.raises(TypeError, match="flag"):
        kernels_pkg.set_enabled("yes")  # type: ignore[arg-type]


def test_cpu_tensors_stay_eager():
    """Outside the tests, CPU tensors never take the kernel path."""
    assert not kernels_pkg.use_for(torch.zeros(2, 1, 4, 4))
