"""SegLoss: constructor validation of the shared parameters."""

import pytest

import seglosses


@pytest.mark.parametrize("class_weights", [["a", 1.0], "ab", object()])
def test_bad_class_weights_named_in_error(class_weights):
    with pytest.raises(TypeError, match="`class_weights` must be a sequence of numbers"):
        seglosses.get_loss("dice", class_weights=class_weights)
