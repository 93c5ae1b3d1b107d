"""MobileNetV3-Small and -Large: keras.applications parity through
weight porting (raw 0-255 inputs, preprocessing included), trainable
and non-trainable parameter counts with and without `minimalistic` at
several widths, feature maps and argument errors."""

import functools
import importlib.util
import os

import keras
import numpy as np
import pytest

import zoo

# The shared helpers, loaded by path (see applications_twins.py).
_TWINS = os.path.join(os.path.dirname(__file__), "applications_twins.py")
_SPEC = importlib.util.spec_from_file_location("applications_twins", _TWINS)
twins = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(twins)


_ported_outputs = functools.partial(
    twins.ported_outputs, batch=2, pixels=(0.0, 255.0)
)
_trainable_and_not = twins.trainable_and_not


APPLICATIONS = {
    "small": keras.applications.MobileNetV3Small,
    "large": keras.applications.MobileNetV3Large,
}


@pytest.mark.parametrize("model_type", ["small", "large"])
def test_port_at_224_with_top_gives_equal_logits(model_type):
    # keras.applications' default input is (None, None, 3): the port
    # takes it as 224x224.
    keras_model = APPLICATIONS[model_type](
        weights=None, classifier_activation=None
    )
    model, actual, expected = _ported_outputs(keras_model)
    assert isinstance(model, zoo.mobilenetv3.MobileNetV3)
    assert model.name == f"mobilenetv3_{model_type}"
    config = model.get_config()
    assert config["model_type"] == model_type
    assert (config["alpha"], config["minimalistic"]) == (1.0, False)
    assert model.input_shape == (None, 224, 224, 3)
    assert config["include_preprocessing"] is True
    assert config["dropout_rate"] == pytest.approx(0.2)
    assert config["classifier_activation"] is None
    twins.assert_same_outputs(actual, expected, (2, 1000), spread=0.02)


@pytest.mark.parametrize(
    "model_type, arguments, output_shape",
    [
        (
            "small",
            {"alpha": 0.75, "include_top": False, "pooling": "avg"},
            (2, 432),
        ),
        (
            "large",
            {"alpha": 0.35, "minimalistic": True, "classes": 7},
            (2, 7),
        ),
    ],
)
def test_port_at_128_gives_equal_outputs(model_type, arguments, output_shape):
    keras_model = APPLICATIONS[model_type](
        weights=None, input_shape=(128, 128, 3), **arguments
    )
    model, actual, expected = _ported_outputs(keras_model, seed=1)
    config = model.get_config()
    assert config["alpha"] == arguments["alpha"]
    assert config["minimalistic"] is arguments.get("minimalistic", False)
    assert model.input_shape == (None, 128, 128, 3)
    twins.assert_same_outputs(actual, expected, output_shape, spread=0.02)


def test_port_without_preprocessing_or_dropout_at_an_odd_size():
    keras_model = keras.applications.MobileNetV3Small(
        weights=None,
        input_shape=(75, 97, 3),
        alpha=1.25,
        dropout_rate=0.0,
        include_preprocessing=False,
        classes=5,
    )
    model, actual, expected = _ported_outputs(keras_model, seed=2)
    config = model.get_config()
    assert (config["alpha"], config["dropout_rate"]) == (1.25, 0.0)
    assert config["include_preprocessing"] is False
    names = [layer.name for layer in model.layers]
    assert "preprocessing" not in names and "dropout" not in names
    # alpha > 1 widens the head's convolution too.
    assert model.get_layer("head_conv").filters == 1280
    assert np.max(np.abs(actual - expected)) <= 1e-4


def test_port_with_a_missing_layer_names_the_weight():
    full = keras.applications.MobileNetV3Small(
        weights=None, input_shape=(32, 32, 3), include_top=False
    )
    twins.assert_port_refused(
        twins.truncated(
            full, "expanded_conv_10_project_bn", name="MobileNetV3Small"
        ),
        r"zoo top_conv/kernel \(1, 1, 96, 576\) has no source; "
        r"MobileNetV3Small has no layer 'conv_1' with weights\.$",
    )


# Counts do not depend on the input size: 32x32 is the cheapest. (alpha
# above 1, which also widens the head, is in the odd-size port above.)
@pytest.mark.parametrize("model_type", ["small", "large"])
@pytest.mark.parametrize("minimalistic", [False, True])
@pytest.mark.parametrize("alpha", [0.75, 1.0])
def test_parameter_counts_equal_keras_applications(
    model_type, minimalistic, alpha
):
    arguments = {
        "input_shape": (32, 32, 3),
        "alpha": alpha,
        "minimalistic": minimalistic,
    }
    keras_model = APPLICATIONS[model_type](weights=None, **arguments)
    model = zoo.create_model(f"mobilenetv3_{model_type}", **arguments)
    assert _trainable_and_not(model) == _trainable_and_not(keras_model)
    # Weights live in the same layers, in the same order.
    shapes = [tuple(v.shape) for v in model.weights]
    assert shapes == [tuple(v.shape) for v in keras_model.weights]


@pytest.mark.parametrize(
    "name, include_top, trainable, non_trainable",
    [
        ("mobilenetv3_small", True, 2_542_856, 12_112),
        ("mobilenetv3_small", False, 927_008, 12_112),
        ("mobilenetv3_large", True, 5_483_032, 24_400),
        ("mobilenetv3_large", False, 2_971_952, 24_400),
    ],
)
def test_default_counts_are_keras_applications_figures(
    name, include_top, trainable, non_trainable
):
    model = zoo.create_model(
        name, input_shape=(32, 32, 3), include_top=include_top
    )
    assert _trainable_and_not(model) == (trainable, non_trainable)


@pytest.mark.parametrize(
    "name, expected",
    [
        (
            "mobilenetv3_small",
            [
                ("stem_act", 2, 16),
                ("block_0", 4, 16),
                ("block_2", 8, 24),
                ("block_7", 16, 48),
                ("top_act", 32, 576),
            ],
        ),
        (
            "mobilenetv3_large",
            [
                ("block_0", 2, 16),
                ("block_2", 4, 24),
                ("block_5", 8, 40),
                ("block_11", 16, 112),
                ("top_act", 32, 960),
            ],
        ),
    ],
)
def test_features_only_gives_one_map_per_stride(name, expected):
    model = zoo.create_model(name, input_shape=(64, 64, 3), features_only=True)
    info = [(f.name, f.stride, f.channels) for f in model.feature_info]
    assert info == expected
    assert [s[1] for s in model.output_shape] == [32, 16, 8, 4, 2]


def test_preprocessing_rescales_raw_images_to_plus_minus_one():
    model = zoo.create_model("mobilenetv3_small", input_shape=(32, 32, 3))
    layer = model.get_layer("preprocessing")
    pixels = np.array([[[[0.0, 127.5, 255.0]]]], "float32")
    np.testing.assert_allclose(layer(pixels)[0, 0, 0], [-1.0, 0.0, 1.0])


def test_minimalistic_has_no_squeeze_excite_or_hard_swish():
    model = zoo.create_model(
        "mobilenetv3_large", input_shape=(32, 32, 3), minimalistic=True
    )
    blocks = [layer for layer in model.layers if layer.name[:6] == "block_"]
    assert len(blocks) == 15
    assert all(block.squeeze_excite is None for block in blocks)
    assert {block.kernel_size for block in blocks} == {3}
    assert {b.get_config()["activation"] for b in blocks} == {"relu"}


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"input_shape": (31, 64, 3)}, "too small"),
        ({"num_classes": 0}, "num_classes must be a positive int"),
        ({"pooling": "sum"}, "pooling must be one of"),
        ({"alpha": 0}, "alpha must be a positive number"),
        ({"dropout_rate": -0.1}, r"dropout_rate must be in \[0, 1\)"),
        ({"model_type": "medium"}, "model_type must be one of"),
    ],
)
def test_bad_arguments_raise(overrides, message):
    with pytest.raises(ValueError, match=message):
        zoo.create_model("mobilenetv3_small", **overrides)
