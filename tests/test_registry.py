"""The registry, ``get_loss`` and loss expressions."""

from __future__ import annotations

import pytest
import torch

import seglosses
from seglosses._registry import LossInfo, parse_expression, register_loss


def test_list_losses_sorted_and_unique():
    names = seglosses.list_losses()
    assert names == sorted(set(names))


def test_unknown_name_suggests_closest():
    with pytest.raises(ValueError, match="closest: dice"):
        seglosses.get_loss("dicee")


def test_unknown_parameter_names_loss_and_accepted():
    with pytest.raises(TypeError, match=r"'dice' got unexpected parameter\(s\) \['smoth'\]"):
        seglosses.get_loss("dice", smoth=1.0)


def test_name_must_be_str():
    with pytest.raises(TypeError, match="name"):
        seglosses.get_loss(3)


@pytest.mark.parametrize("expr,expected", [
    ("dice", [(1.0, "dice")]),
    ("0.5*dice + 0.5*bce", [(0.5, "dice"), (0.5, "bce")]),
    ("dice+bce", [(1.0, "dice"), (1.0, "bce")]),
    ("2 * dice", [(2.0, "dice")]),
    ("dice*3 + .5*bce", [(3.0, "dice"), (0.5, "bce")]),
    ("1e-1*dice", [(0.1, "dice")]),
])
def test_parse_expression(expr, expected):
    assert parse_expression(expr) == expected


@pytest.mark.parametrize("expr", ["0.5*", "+dice", "dice +", "dice bce", "0.5 dice", "dice*bce",
                                  "dice - bce", "__import__('os')", "0.5**dice", "dice*"])
def test_malformed_expression(expr):
    with pytest.raises(ValueError, match="loss expression"):
        parse_expression(expr)


def test_expression_rejects_unknown_term_and_specific_params():
    with pytest.raises(ValueError, match="closest"):
        seglosses.get_loss("0.5*dice + 0.5*bcee")
    with pytest.raises(TypeError, match="shared parameters"):
        seglosses.get_loss("dice + bce", smooth=2.0)


def test_expression_value_by_hand():
    # dice: p = sigmoid(0) = 0.5 everywhere; 4 voxels, 2 positive:
    # TP = 1, sum p = 2, sum t = 2 -> D = (2 + 1)/(4 + 1) = 0.6 -> loss 0.4
    # bce: -log(0.5) = log 2 at every voxel
    logits = torch.zeros(1, 1, 2, 2, dtype=torch.float64)
    target = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]], dtype=torch.float64)
    value = seglosses.get_loss("0.5*dice + 2*bce")(logits, target)
    expected = 0.5 * 0.4 + 2 * torch.log(torch.tensor(2.0, dtype=torch.float64))
    torch.testing.assert_close(value, expected)


def test_compound_requires_same_reduction():
    with pytest.raises(ValueError, match="reduction"):
        seglosses.get_loss("dice", reduction="none") + seglosses.get_loss("bce")


def test_arithmetic_flattens_and_reprs():
    loss = 2 * (seglosses.get_loss("dice") + 0.5 * seglosses.get_loss("bce"))
    assert repr(loss) == "CompoundLoss(2*dice + 1*bce)"
    # a non-number factor is refused (NotImplemented), naming the loss type
    with pytest.raises(TypeError, match="DiceLoss"):
        seglosses.get_loss("dice") * "two"
    with pytest.raises(TypeError, match="DiceLoss"):
        seglosses.get_loss("dice") * object()


def test_duplicate_registration_is_an_error():
    with pytest.raises(ValueError, match="already registered"):
        @register_loss(LossInfo(name="dice", family="region", source="x"))
        class Again(seglosses.SegLoss):
            function = staticmethod(seglosses.functional.dice_loss)


def test_set_validation_skips_value_checks_but_not_shapes():
    logits = torch.zeros(1, 1, 2, 2)
    bad_values = torch.full((1, 1, 2, 2), 2.0)
    loss = seglosses.get_loss("bce")
    with pytest.raises(ValueError, match="target"):
        loss(logits, bad_values)
    seglosses.set_validation(False)
    try:
        loss(logits, bad_values)
        with pytest.raises(ValueError, match="target"):
            loss(logits, bad_values[..., :1])
    finally:
        seglosses.set_validation(True)
    with pytest.raises(TypeError, match="enabled"):
        seglosses.set_validation("no")


def test_auto_mode_resolution():
    from seglosses.losses._prepare import resolve_mode

    x1 = torch.zeros(2, 1, 4, 4)
    x3 = torch.zeros(2, 3, 4, 4)
    assert resolve_mode("auto", x3, torch.zeros(2, 4, 4, dtype=torch.long)) == "multiclass"
    assert resolve_mode("auto", x3, torch.zeros(2, 1, 4, 4, dtype=torch.long)) == "multiclass"
    assert resolve_mode("auto", x1, torch.zeros(2, 1, 4, 4)) == "binary"
    assert resolve_mode("auto", x3, torch.zeros(2, 3, 4, 4)) == "multilabel"
    assert resolve_mode("auto", x1, torch.zeros(2, 4, 4, dtype=torch.long)) == "multiclass"
