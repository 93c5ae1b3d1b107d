"""A weights mismatch is one short message naming the layer, the
variable and both shapes; `strict=False` reports what was missing,
unexpected and mismatched, in every weights format."""

import keras
import numpy as np
import pytest

import kerasblocks as kb

FORMATS = ("net.weights.h5", "net.params", "net.keras", "net.h5")


def _net(width: int, extra: bool = False) -> keras.Model:
    layers = [
        keras.Input((4,)),
        keras.layers.Dense(width, name="hidden"),
        keras.layers.Dense(3, name="out"),
    ]
    if extra:
        layers.append(keras.layers.Dense(2, name="added"))
    return keras.Sequential(layers, name="net")


def _save(model, path: str) -> None:
    if path.endswith((".weights.h5", ".params")):
        kb.io.save_weights(model, path)
    else:
        kb.io.save_model(model, path)


@pytest.mark.parametrize("name", FORMATS)
def test_a_mismatch_is_short_and_names_layer_variable_and_shapes(
    tmp_path, name
):
    keras.utils.set_random_seed(0)
    path = str(tmp_path / name)
    _save(_net(300), path)
    model = _net(200)
    before = [v.numpy().copy() for v in model.weights]
    with pytest.raises(kb.io.WeightsMismatchError) as error:
        kb.io.load_weights(model, path)
    message = str(error.value)
    assert len(message) < 2000
    assert message.startswith(
        "Layer 'hidden' variable 'kernel' has shape (4, 200) in the model "
        "and (4, 300) in the file."
    )
    assert path in message
    # Strict: nothing was assigned.
    for variable, value in zip(model.weights, before, strict=True):
        np.testing.assert_array_equal(variable.numpy(), value)


@pytest.mark.parametrize("name", FORMATS)
def test_a_partial_load_reports_missing_unexpected_and_mismatched(
    tmp_path, name
):
    keras.utils.set_random_seed(1)
    source = _net(8, extra=True)
    path = str(tmp_path / name)
    _save(source, path)
    # The model lacks "added" and has a wider "hidden": "out" fits.
    model = _net(6)
    report = kb.io.load_weights(model, path, strict=False)
    assert [m[0] for m in report.mismatched][:2] == [
        "hidden/kernel",
        "hidden/bias",
    ]
    assert report.mismatched[0][1:] == ((4, 8), (4, 6))
    assert len(report.unexpected) == 2  # added's kernel and bias
    assert not report.ok
    text = str(report)
    assert "unexpected 2" in text and "shape mismatch" in text
    # A model with a layer the file lacks: missing.
    wider = _net(8, extra=True)
    narrow = _net(8)
    narrow_path = str(tmp_path / f"narrow-{name}")
    _save(narrow, narrow_path)
    report = kb.io.load_weights(wider, narrow_path, strict=False)
    assert report.missing == ["added/kernel", "added/bias"]
    assert len(report.loaded) == 4 and not report.unexpected
    np.testing.assert_array_equal(
        wider.get_layer("hidden").kernel.numpy(),
        narrow.get_layer("hidden").kernel.numpy(),
    )
