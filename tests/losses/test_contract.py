"""Generic checks run for every registered loss (PyTorch ``module_db`` style).

Every name in ``list_losses()`` goes through the same battery, driven by its ``LossInfo``:
shapes and reductions, gradcheck, masks and ignored voxels, edge cases at saturated logits,
precision, determinism, serialisation, metadata and bad input. A new loss file is picked up
without edits here; what is specific to a loss lives in its own ``test_<name>.py``.
"""

from __future__ import annotations

import copy
import math
import pickle

import pytest
import torch

import seglosses
from seglosses import functional as SF

NAMES = seglosses.list_losses()
SHAPES = {1: (11,), 2: (7, 9), 3: (4, 5, 6)}
C_MULTI = 3


def _info(name: str) -> seglosses.LossInfo:
    return seglosses.loss_info(name)


def _cases(name_filter=lambda info: True):
    out = []
    for name in NAMES:
        info = _info(name)
        if not name_filter(info):
            continue
        for mode in info.modes:
            out.append(pytest.param(name, mode, id=f"{name}-{mode}"))
    return out


def make_inputs(mode: str, ndim: int = 2, batch: int = 2, dtype=torch.float64, seed: int = 0,
                scale: float = 1.5):
    """Random logits and a target with both classes present in every sample."""
    g = torch.Generator().manual_seed(seed)
    spatial = SHAPES[ndim]
    c = 1 if mode == "binary" else C_MULTI
    logits = (torch.randn(batch, c, *spatial, generator=g, dtype=torch.float64) * scale).to(dtype)
    if mode == "multiclass":
        target = torch.randint(0, c, (batch, *spatial), generator=g)
        target.view(batch, -1)[:, :c] = torch.arange(c)
    else:
        target = (torch.rand(batch, c, *spatial, generator=g) > 0.5).to(torch.float64)
        flat = target.view(batch, c, -1)
        flat[..., 0] = 1.0
        flat[..., 1] = 0.0
    return logits, target


def make_mask(logits: torch.Tensor, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    b = logits.shape[0]
    spatial = logits.shape[2:]
    mask = torch.rand(b, 1, *spatial, generator=g) > 0.3
    return mask


def one_hot_target(target: torch.Tensor, mode: str) -> torch.Tensor:
    """The target as a float tensor of the logits' layout."""
    if mode == "multiclass":
        return torch.nn.functional.one_hot(target, C_MULTI).movedim(-1, 1).double()
    return target


def perfect_logits(target: torch.Tensor, mode: str, magnitude: float) -> torch.Tensor:
    t = one_hot_target(target, mode)
    return (2.0 * t - 1.0) * magnitude


def _call(name, logits, target, mask=None, **params):
    return seglosses.get_loss(name, **params)(logits, target, mask)


# --------------------------------------------------------------------------- metadata


@pytest.mark.parametrize("name", NAMES)
def test_metadata(name):
    info = _info(name)
    assert info.name == name
    assert isinstance(info.family, seglosses.Family)
    assert info.source.strip(), "every loss names its primary source"
    assert info.summary.strip(), "every loss has a one-line summary"
    assert set(info.modes) <= {"binary", "multilabel", "multiclass"} and info.modes
    assert set(info.params) == set(info.defaults()), (
        f"LossInfo.params must document exactly the loss-specific parameters "
        f"{sorted(info.defaults())}; got {sorted(info.params)}"
    )
    fn = getattr(SF, f"{name}_loss")
    assert fn is info.function
    assert getattr(seglosses, info.cls.__name__) is info.cls
    assert info.cls.__name__.endswith("Loss")
    assert fn.__doc__ and "Example" in fn.__doc__, "docstring with a doctested example"


# --------------------------------------------------------------------------- shapes, values


@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("name,mode", _cases())
def test_forward_backward_shapes(name, mode, ndim):
    info = _info(name)
    logits, target = make_inputs(mode, ndim)
    logits.requires_grad_(True)
    value = _call(name, logits, target, mode=mode, reduction="none")
    assert value.shape == (2,)
    assert value.dtype == torch.float64
    assert torch.isfinite(value).all()
    lo, hi = info.value_range
    assert (value >= lo - 1e-9).all() and (value <= hi + 1e-9).all(), (value, info.value_range)
    value.sum().backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()
    assert logits.grad.abs().sum() > 0, "the loss must depend on the logits"


@pytest.mark.parametrize("name,mode", _cases())
def test_reductions(name, mode):
    logits, target = make_inputs(mode)
    none = _call(name, logits, target, mode=mode, reduction="none")
    mean = _call(name, logits, target, mode=mode, reduction="mean")
    total = _call(name, logits, target, mode=mode, reduction="sum")
    assert mean.shape == () and total.shape == ()
    torch.testing.assert_close(mean, none.mean(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(total, none.sum(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name,mode", _cases(lambda i: not i.batch_dependent))
def test_samples_independent(name, mode):
    """Each sample's value depends on that sample only."""
    logits, target = make_inputs(mode, batch=3)
    together = _call(name, logits, target, mode=mode, reduction="none")
    alone = torch.cat([
        _call(name, logits[i:i + 1], target[i:i + 1], mode=mode, reduction="none")
        for i in range(3)
    ])
    torch.testing.assert_close(together, alone, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name,mode", _cases())
def test_module_matches_function(name, mode):
    logits, target = make_inputs(mode)
    a = logits.clone().requires_grad_(True)
    b = logits.clone().requires_grad_(True)
    module_value = seglosses.get_loss(name, mode=mode)(a, target)
    function_value = getattr(SF, f"{name}_loss")(b, target, mode=mode)
    torch.testing.assert_close(module_value, function_value, rtol=0, atol=0)
    module_value.backward()
    function_value.backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=0, atol=0)


@pytest.mark.parametrize("name,mode", _cases())
def test_from_probabilities_matches_logits(name, mode):
    logits, target = make_inputs(mode, scale=1.0)
    probs = torch.softmax(logits, 1) if mode == "multiclass" else torch.sigmoid(logits)
    from_logits = _call(name, logits, target, mode=mode, reduction="none")
    from_probs = _call(name, probs, target, mode=mode, reduction="none", from_logits=False)
    torch.testing.assert_close(from_probs, from_logits, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name,mode", _cases())
def test_non_contiguous_input(name, mode):
    logits, target = make_inputs(mode)
    nc = logits.transpose(-1, -2).contiguous().transpose(-1, -2)
    assert not nc.is_contiguous()
    torch.testing.assert_close(_call(name, nc, target, mode=mode),
                               _call(name, logits, target, mode=mode), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name,mode", _cases())
def test_deterministic(name, mode):
    logits, target = make_inputs(mode)
    a = _call(name, logits, target, mode=mode, reduction="none")
    b = _call(name, logits, target, mode=mode, reduction="none")
    assert torch.equal(a, b)


@pytest.mark.parametrize("name,mode", _cases(lambda i: i.differentiable))
def test_gradcheck(name, mode):
    logits, target = make_inputs(mode, ndim=2, seed=3)
    mask = make_mask(logits)
    logits.requires_grad_(True)
    loss = seglosses.get_loss(name, mode=mode, reduction="sum")
    assert torch.autograd.gradcheck(lambda x: loss(x, target, mask), (logits,), eps=1e-6,
                                    atol=1e-5, rtol=1e-4)


# --------------------------------------------------------------------------- masks


@pytest.mark.parametrize("name,mode", _cases())
def test_mask_counts_nowhere(name, mode):
    """Masked voxels get exactly zero gradient and their logits and targets change nothing."""
    logits, target = make_inputs(mode, seed=5)
    mask = make_mask(logits)
    x = logits.clone().requires_grad_(True)
    value = _call(name, x, target, mask, mode=mode, reduction="sum")
    value.backward()
    outside = (~mask).expand_as(x)
    assert torch.all(x.grad[outside] == 0), "masked voxels must receive exactly zero gradient"
    assert x.grad[~outside].abs().sum() > 0
    g = torch.Generator().manual_seed(9)
    other_logits = torch.where(outside, torch.randn(x.shape, generator=g, dtype=x.dtype) * 3,
                               logits)
    if mode == "multiclass":
        other_target = torch.where(mask[:, 0], target, (target + 1) % C_MULTI)
    else:
        other_target = torch.where(outside, 1.0 - target, target)
    changed = _call(name, other_logits, other_target, mask, mode=mode, reduction="sum")
    torch.testing.assert_close(changed, value.detach(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", [n for n in NAMES if "multiclass" in _info(n).modes])
def test_ignore_index_counts_nowhere(name):
    logits, target = make_inputs("multiclass", seed=6)
    ignored = make_mask(logits)[:, 0].logical_not()
    labels = torch.where(ignored, torch.full_like(target, 255), target)
    x = logits.clone().requires_grad_(True)
    value = _call(name, x, labels, mode="multiclass", ignore_index=255, reduction="sum")
    value.backward()
    where = ignored.unsqueeze(1).expand_as(x)
    assert torch.all(x.grad[where] == 0), "ignored voxels must receive exactly zero gradient"
    # ignore_index and an equivalent mask agree
    masked = _call(name, logits, target, ~ignored, mode="multiclass", reduction="sum")
    torch.testing.assert_close(value.detach(), masked, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name,mode", _cases(lambda i: True))
def test_uniform_class_weights_change_nothing(name, mode):
    logits, target = make_inputs(mode)
    c = logits.shape[1]
    plain = _call(name, logits, target, mode=mode, reduction="none")
    weighted = _call(name, logits, target, mode=mode, reduction="none", class_weights=[1.0] * c)
    torch.testing.assert_close(weighted, plain, rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------- edge cases

EDGE = ["perfect", "wrong", "empty", "full"]


def edge_inputs(case: str, mode: str, magnitude: float, dtype=torch.float32):
    logits, target = make_inputs(mode, dtype=torch.float64)
    if case == "empty":
        target = torch.zeros_like(target)
    elif case == "full":
        target = torch.ones_like(target) if mode != "multiclass" else \
            torch.full_like(target, C_MULTI - 1)
    if case == "wrong":
        x = -perfect_logits(target, mode, magnitude)
    else:
        x = perfect_logits(target, mode, magnitude)
    return x.to(dtype), target


@pytest.mark.parametrize("magnitude,dtype", [(50.0, torch.float32), (20.0, torch.float32),
                                             (10.0, torch.float16)],
                         ids=["fp32-50", "fp32-20", "fp16-10"])
@pytest.mark.parametrize("case", EDGE)
@pytest.mark.parametrize("name,mode", _cases())
def test_edge_cases_finite(name, mode, case, magnitude, dtype):
    x, target = edge_inputs(case, mode, magnitude, dtype)
    x.requires_grad_(True)
    value = _call(name, x, target, mode=mode, reduction="none")
    assert value.dtype == torch.float32
    assert torch.isfinite(value).all(), f"{case}: {value}"
    value.sum().backward()
    assert torch.isfinite(x.grad).all(), f"{case}: non-finite gradient"
    lo, hi = _info(name).value_range
    assert (value >= lo - 1e-5).all() and (value <= hi + 1e-5).all()


@pytest.mark.parametrize("name,mode", _cases())
def test_perfect_prediction_is_best(name, mode):
    """The loss at a perfect (saturated) prediction is below its value at random logits."""
    logits, target = make_inputs(mode)
    perfect = perfect_logits(target, mode, 12.0)
    at_perfect = _call(name, perfect, target, mode=mode, reduction="none")
    at_random = _call(name, logits, target, mode=mode, reduction="none")
    at_wrong = _call(name, -perfect, target, mode=mode, reduction="none")
    assert (at_perfect < at_random).all() and (at_random < at_wrong).all()


@pytest.mark.parametrize("name,mode", _cases())
def test_moving_toward_target_decreases(name, mode):
    logits, target = make_inputs(mode, seed=11)
    step = perfect_logits(target, mode, 1.0)
    before = _call(name, logits, target, mode=mode, reduction="none")
    after = _call(name, logits + 0.5 * step, target, mode=mode, reduction="none")
    assert (after < before).all()


# --------------------------------------------------------------------------- precision


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
@pytest.mark.parametrize("name,mode", _cases())
def test_low_precision_input(name, mode, dtype):
    """Half-precision logits compute in fp32: same value as the fp32 path on the same numbers."""
    logits, target = make_inputs(mode, dtype=torch.float64)
    low = logits.to(dtype)
    value = _call(name, low, target, mode=mode, reduction="none")
    assert value.dtype == torch.float32
    reference = _call(name, low.float(), target, mode=mode, reduction="none")
    torch.testing.assert_close(value, reference, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_large_fp16_image_finite(name):
    """A 512x512 fp16 image: sums that would overflow fp16 must not."""
    info = _info(name)
    mode = "binary" if "binary" in info.modes else info.modes[0]
    g = torch.Generator().manual_seed(0)
    c = 1 if mode == "binary" else C_MULTI
    x = (torch.randn(1, c, 512, 512, generator=g) * 4).half().requires_grad_(True)
    if mode == "multiclass":
        t = torch.randint(0, c, (1, 512, 512), generator=g)
    else:
        t = (torch.rand(1, c, 512, 512, generator=g) > 0.5).float()
    value = _call(name, x, t, mode=mode)
    assert value.dtype == torch.float32 and torch.isfinite(value)
    value.backward()
    assert torch.isfinite(x.grad.float()).all()


# --------------------------------------------------------------------------- serialisation


@pytest.mark.parametrize("name", NAMES)
def test_pickle_deepcopy_repr_state_dict(name):
    info = _info(name)
    mode = info.modes[0]
    c = 1 if mode == "binary" else C_MULTI
    loss = seglosses.get_loss(name, mode=mode, class_weights=[1.0] * c)
    logits, target = make_inputs(mode)
    expected = loss(logits, target)
    for clone in (pickle.loads(pickle.dumps(loss)), copy.deepcopy(loss)):
        torch.testing.assert_close(clone(logits, target), expected, rtol=0, atol=0)
    fresh = seglosses.get_loss(name, mode=mode, class_weights=[2.0] * c)
    fresh.load_state_dict(loss.state_dict())
    torch.testing.assert_close(fresh(logits, target), expected, rtol=0, atol=0)
    assert type(loss).__name__ in repr(loss)


@pytest.mark.parametrize("name", NAMES)
def test_expression_equals_weighted_sum(name):
    mode = _info(name).modes[0]
    logits, target = make_inputs(mode)
    expr = seglosses.get_loss(f"0.25*dice + 0.75*{name}", mode=mode, reduction="none")
    parts = 0.25 * _call("dice", logits, target, mode=mode, reduction="none") + \
        0.75 * _call(name, logits, target, mode=mode, reduction="none")
    torch.testing.assert_close(expr(logits, target), parts, rtol=1e-12, atol=1e-12)
    op = 0.25 * seglosses.get_loss("dice", mode=mode, reduction="none") + \
        seglosses.get_loss(name, mode=mode, reduction="none") * 0.75
    torch.testing.assert_close(op(logits, target), parts, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- bad input


def _bad_cases(mode: str):
    logits, target = make_inputs(mode, dtype=torch.float32)
    b, c = logits.shape[:2]
    cases = [
        ("target spatial shape", logits, target[..., :-1], ValueError, "target"),
        ("target batch", logits, target[:1], ValueError, "target"),
        ("integer logits", logits.long(), target, TypeError, "logits"),
        ("logits without spatial dims", logits.flatten(1)[:, :, None].squeeze(-1), target,
         ValueError, "logits"),
        ("six-dim logits", logits.reshape(b, c, 1, 1, 7, 9), target, ValueError, "logits"),
        ("empty logits", logits[:, :, :0], target[..., :0, :], ValueError, "logits"),
        ("non-tensor target", logits, target.tolist(), TypeError, "target"),
        ("non-tensor logits", logits.tolist(), target, TypeError, "logits"),
    ]
    if mode == "multiclass":
        cases += [
            ("label == C", logits, torch.where(target == 0, torch.full_like(target, c), target),
             ValueError, "target"),
            ("label == -1", logits, torch.where(target == 0, torch.full_like(target, -1), target),
             ValueError, "target"),
            ("float labels", logits, target.float(), TypeError, "target"),
        ]
    else:
        cases += [
            ("target above 1", logits, target * 1.5, ValueError, "target"),
            ("target below 0", logits, target - 0.5, ValueError, "target"),
        ]
    return cases


@pytest.mark.parametrize("name,mode", _cases())
def test_errors(name, mode):
    for desc, logits, target, exc, word in _bad_cases(mode):
        with pytest.raises(exc, match=word):
            _call(name, logits, target, mode=mode)
    logits, target = make_inputs(mode, dtype=torch.float32)
    with pytest.raises(ValueError, match="mask"):
        _call(name, logits, target, torch.ones(2, 1, 3, 3, dtype=torch.bool), mode=mode)
    with pytest.raises(TypeError, match="mask"):
        _call(name, logits, target, torch.ones(2, 1, 7, 9), mode=mode)
    with pytest.raises(ValueError, match="class_weights"):
        _call(name, logits, target, mode=mode, class_weights=[1.0] * (logits.shape[1] + 1))
    with pytest.raises(ValueError, match="class_weights"):
        _call(name, logits, target, mode=mode, class_weights=[-1.0] * logits.shape[1])
    with pytest.raises(ValueError, match="reduction"):
        seglosses.get_loss(name, reduction="avg")
    with pytest.raises(ValueError, match="mode"):
        seglosses.get_loss(name, mode="multi-class")
    with pytest.raises(TypeError, match=name):
        seglosses.get_loss(name, not_a_parameter=1)


@pytest.mark.parametrize("name", [n for n in NAMES if "multiclass" in _info(n).modes])
def test_multiclass_with_one_channel_rejected(name):
    logits = torch.randn(2, 1, 7, 9)
    target = torch.zeros(2, 7, 9, dtype=torch.long)
    with pytest.raises(ValueError, match="C >= 2"):
        _call(name, logits, target)


@pytest.mark.parametrize("name", NAMES)
def test_unsupported_mode_rejected(name):
    info = _info(name)
    for mode in {"binary", "multilabel", "multiclass"} - set(info.modes):
        logits, target = make_inputs(mode)
        with pytest.raises(ValueError, match="mode"):
            _call(name, logits, target, mode=mode)


def test_registry_is_complete():
    """Every loss of SPEC section 3 is registered."""
    spec = {
        "bce", "weighted_bce", "balanced_bce", "focal", "distance_penalty_ce", "dice", "jaccard",
        "tversky", "focal_tversky", "log_cosh_dice", "sensitivity_specificity",
        "generalized_dice", "hausdorff_dt", "boundary", "shape_aware", "combo", "exp_log",
        "correlation_ssim", "ssim", "lovasz", "cldice", "unified_focal", "dice_ce", "dice_focal",
        "topk_ce", "dice_topk", "unet3p_hybrid", "basnet_hybrid",
    }
    missing = spec - set(NAMES)
    assert not missing, f"not registered yet: {sorted(missing)}"
    paper = {n for n in NAMES if _info(n).in_paper}
    assert paper == {"bce", "weighted_bce", "focal", "dice", "tversky", "focal_tversky",
                     "sensitivity_specificity", "exp_log", "log_cosh_dice"}
    assert not math.isnan(len(NAMES))


@pytest.mark.parametrize("name,mode", _cases())
def test_autocast_cpu_bf16(name, mode):
    """Under CPU autocast (bf16) the loss still computes in fp32: same value as without it."""
    logits, target = make_inputs(mode, dtype=torch.float32)
    plain = _call(name, logits, target, mode=mode, reduction="none")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        auto = _call(name, logits, target, mode=mode, reduction="none")
    assert auto.dtype == torch.float32
    torch.testing.assert_close(auto, plain, rtol=1e-5, atol=1e-6)
