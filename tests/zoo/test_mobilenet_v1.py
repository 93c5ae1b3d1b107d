"""MobileNet (V1): keras.applications parity through weight porting,
trainable and non-trainable parameter counts, feature maps and argument
errors."""

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


_ported_outputs = functools.partial(twins.ported_outputs, batch=2)
_trainable_and_not = twins.trainable_and_not


def test_port_at_224_with_top_gives_equal_logits():
    keras_model = keras.applications.MobileNet(
        weights=None, classifier_activation=None
    )
    model, actual, expected = _ported_outputs(keras_model)
    assert isinstance(model, zoo.mobilenet.MobileNet)
    config = model.get_config()
    assert (config["alpha"], config["depth_multiplier"]) == (1.0, 1)
    assert config["dropout"] == pytest.approx(1e-3)
    assert (config["include_top"], config["num_classes"]) == (True, 1000)
    assert config["classifier_activation"] is None
    twins.assert_same_outputs(actual, expected, (2, 1000), spread=0.1)


@pytest.mark.parametrize(
    "input_shape, alpha, depth_multiplier, pooling, output_shape",
    [
        ((160, 160, 3), 0.5, 2, "avg", (2, 512)),
        # Odd sizes: keras.applications pads one row and column at
        # stride 2, not "same".
        ((75, 97, 3), 0.25, 1, None, (2, 2, 3, 256)),
    ],
)
def test_port_without_top_gives_equal_features(
    input_shape, alpha, depth_multiplier, pooling, output_shape
):
    keras_model = keras.applications.MobileNet(
        weights=None,
        input_shape=input_shape,
        alpha=alpha,
        depth_multiplier=depth_multiplier,
        include_top=False,
        pooling=pooling,
    )
    model, actual, expected = _ported_outputs(keras_model, seed=1)
    config = model.get_config()
    assert (config["alpha"], config["depth_multiplier"]) == (
        alpha,
        depth_multiplier,
    )
    assert (config["include_top"], config["pooling"]) == (False, pooling)
    twins.assert_same_outputs(actual, expected, output_shape, spread=0.05)


# Counts do not depend on the input size: 32x32 is the cheapest.
@pytest.mark.parametrize(
    "alpha, depth_multiplier, include_top, trainable, non_trainable",
    [
        (1.0, 1, True, 4_231_976, 21_888),
        (1.0, 1, False, 3_206_976, 21_888),
        (0.75, 1, True, 2_585_560, 16_416),
        (0.5, 2, True, 2_143_768, 15_904),
        (0.25, 1, False, 213_072, 5_472),
    ],
)
def test_parameter_counts_equal_keras_applications(
    alpha, depth_multiplier, include_top, trainable, non_trainable
):
    arguments = {
        "input_shape": (32, 32, 3),
        "alpha": alpha,
        "depth_multiplier": depth_multiplier,
        "include_top": include_top,
    }
    keras_model = keras.applications.MobileNet(weights=None, **arguments)
    assert _trainable_and_not(keras_model) == (trainable, non_trainable)
    model = zoo.create_model("mobilenet", **arguments)
    assert _trainable_and_not(model) == (trainable, non_trainable)
    # Weights live in the same layers, in the same order.
    shapes = [tuple(v.shape) for v in model.weights]
    assert shapes == [tuple(v.shape) for v in keras_model.weights]


def test_features_only_gives_one_map_per_stride():
    model = zoo.create_model(
        "mobilenet", input_shape=(64, 64, 3), features_only=True
    )
    assert [(f.name, f.stride, f.channels) for f in model.feature_info] == [
        ("block_0", 2, 64),
        ("block_2", 4, 128),
        ("block_4", 8, 256),
        ("block_10", 16, 512),
        ("block_12", 32, 1024),
    ]
    assert [tuple(s) for s in model.output_shape] == [
        (None, 32, 32, 64),
        (None, 16, 16, 128),
        (None, 8, 8, 256),
        (None, 4, 4, 512),
        (None, 2, 2, 1024),
    ]


def test_head_is_a_convolution_then_the_activation():
    model = zoo.create_model(
        "mobilenet", input_shape=(32, 32, 3), num_classes=7, dropout=0.0
    )
    names = [layer.name for layer in model.layers[-4:]]
    assert names == ["avg_pool", "logits", "flatten", "predictions"]
    assert model.get_layer("logits").kernel.shape == (1, 1, 1024, 7)
    probabilities = model(np.zeros((1, 32, 32, 3), "float32"))
    np.testing.assert_allclose(np.sum(probabilities), 1.0, rtol=1e-6)


def test_port_of_an_unparsable_name_is_refused():
    keras_model = keras.applications.MobileNet(
        weights=None,
        input_shape=(32, 32, 3),
        include_top=False,
        name="mobilenet_custom",
    )
    with pytest.raises(ValueError, match="mobilenet_<alpha>_<rows>"):
        zoo.from_keras_applications(keras_model)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"input_shape": (31, 64, 3)}, "too small"),
        ({"num_classes": 0}, "num_classes must be a positive int"),
        ({"pooling": "sum"}, "pooling must be one of"),
        ({"alpha": -1.0}, "alpha must be a positive number"),
        ({"depth_multiplier": 0}, "depth_multiplier must be a positive int"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
    ],
)
def test_bad_arguments_raise(overrides, message):
    with pytest.raises(ValueError, match=message):
        zoo.create_model("mobilenet", **overrides)
