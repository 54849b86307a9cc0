"""``torch.compile`` support, driven by each loss's ``LossInfo.compilable`` flag.

Losses flagged ``compilable=True`` must compile with ``fullgraph=True`` (no graph break) and
match eager mode in value and gradient, in every mode they support. The registry-wide check
uses the ``aot_eager`` backend: it runs Dynamo and AOTAutograd (so forward and backward are
traced exactly as for Inductor) without generating code, which keeps it fast on CPU. A small
Inductor test, marked ``slow``, compiles three losses for real.

Losses flagged ``compilable=False`` must *fail* to compile with ``fullgraph=True`` (as smp
checks for its models), so that a flag left stale by a later change is caught either way. On
CPU their distance transforms read values back to skip work, which is data-dependent control
flow; on CUDA the transform avoids host reads, so the negative check runs on CPU only.

Value checks are off while compiling (``seglosses.get_validation()`` is false during tracing),
so they cannot break the graph.
"""

from __future__ import annotations

import pytest
import torch

import seglosses

NAMES = seglosses.list_losses()
C_MULTI = 3
IGNORE = -1


def _info(name: str) -> seglosses.LossInfo:
    return seglosses.loss_info(name)


def _cases(compilable: bool) -> list:
    return [pytest.param(name, mode, id=f"{name}-{mode}")
            for name in NAMES if _info(name).compilable is compilable
            for mode in _info(name).modes]


def make_case(mode: str, device: torch.device) -> tuple[dict, torch.Tensor, torch.Tensor,
                                                        torch.Tensor | None]:
    """Inputs covering the main code paths, one per mode.

    binary: 2-D, no mask (no valid-voxel weights); multilabel: 3-D with a mask;
    multiclass: 1-D integer labels with ``ignore_index`` and a mask.
    """
    g = torch.Generator().manual_seed(0)
    params: dict = {"mode": mode}
    mask = None
    if mode == "binary":
        logits = torch.randn(2, 1, 12, 10, generator=g) * 2.0
        target = (torch.rand(2, 1, 12, 10, generator=g) > 0.5).float()
    elif mode == "multilabel":
        logits = torch.randn(2, C_MULTI, 4, 5, 6, generator=g) * 2.0
        target = (torch.rand(2, C_MULTI, 4, 5, 6, generator=g) > 0.5).float()
        mask = torch.rand(2, 1, 4, 5, 6, generator=g) > 0.3
    else:
        logits = torch.randn(2, C_MULTI, 23, generator=g) * 2.0
        target = torch.randint(0, C_MULTI, (2, 23), generator=g)
        target[:, :C_MULTI] = torch.arange(C_MULTI)  # every class present
        target[:, -2:] = IGNORE
        mask = torch.rand(2, 1, 23, generator=g) > 0.2
        mask[:, 0, :C_MULTI] = True
        params["ignore_index"] = IGNORE
    to = (lambda t: None if t is None else t.to(device))
    return params, logits.to(device), to(target), to(mask)


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    """Every test compiles from scratch: no cache limit reached, no graph reused."""
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _value_and_grad(fn, logits, target, mask):
    x = logits.detach().clone().requires_grad_(True)
    value = fn(x, target, mask)
    (grad,) = torch.autograd.grad(value, x)
    return value.detach(), grad


@pytest.mark.compile
@pytest.mark.parametrize("name,mode", _cases(True))
def test_compile(name, mode, device):
    params, logits, target, mask = make_case(mode, device)
    loss = seglosses.get_loss(name, **params)
    compiled = torch.compile(loss, fullgraph=True, backend="aot_eager")
    value, grad = _value_and_grad(compiled, logits, target, mask)
    ref_value, ref_grad = _value_and_grad(loss, logits, target, mask)
    assert torch.isfinite(value) and torch.isfinite(grad).all()
    torch.testing.assert_close(value, ref_value, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-5, atol=1e-7)


@pytest.mark.compile
@pytest.mark.parametrize("name,mode", _cases(False))
def test_compile_flag_false_is_accurate(name, mode, device):
    """A loss flagged ``compilable=False`` really breaks the graph (else flip its flag)."""
    if device.type != "cpu":
        pytest.skip("the distance transforms read values back on CPU only")
    params, logits, target, mask = make_case(mode, device)
    loss = seglosses.get_loss(name, **params)
    compiled = torch.compile(loss, fullgraph=True, backend="aot_eager")
    with pytest.raises(torch._dynamo.exc.TorchDynamoException):
        compiled(logits, target, mask)


def test_validation_is_off_while_compiling():
    """Data-dependent value checks would break the graph, so tracing turns them off."""
    seen = []

    def probe(x):
        seen.append(seglosses.get_validation())
        return x * 2.0

    torch.compile(probe, fullgraph=True, backend="aot_eager")(torch.ones(3))
    assert seen == [False]
    assert seglosses.get_validation() is True


def test_compiled_loss_rejects_bad_shapes():
    """Shape checks still run (at trace time) in a compiled loss, with the same message
    (with ``fullgraph=True`` Dynamo re-raises the ``ValueError`` as its own exception type)."""
    loss = torch.compile(seglosses.get_loss("dice"), fullgraph=True, backend="aot_eager")
    with pytest.raises(Exception, match=r"`target` must have the shape of `logits` "
                                        r"\(2, 1, 8, 8\) for mode='binary'; got \(2, 1, 8, 7\)"):
        loss(torch.randn(2, 1, 8, 8), torch.zeros(2, 1, 8, 7))


@pytest.mark.slow
@pytest.mark.compile
@pytest.mark.parametrize("name,mode", [("dice", "binary"), ("focal", "multiclass"),
                                       ("tversky", "multilabel")])
def test_compile_inductor(name, mode, device):
    """The default backend generates and runs real kernels that match eager mode."""
    params, logits, target, mask = make_case(mode, device)
    loss = seglosses.get_loss(name, **params)
    compiled = torch.compile(loss, fullgraph=True)
    value, grad = _value_and_grad(compiled, logits, target, mask)
    ref_value, ref_grad = _value_and_grad(loss, logits, target, mask)
    torch.testing.assert_close(value, ref_value, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-4, atol=1e-6)
