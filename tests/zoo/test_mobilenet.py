"""MobileNetV2: keras.applications parity through weight porting,
parameter counts, widths, feature maps and argument errors."""

import importlib.util
import os

import keras
import numpy as np
import pytest

import zoo
from kerasblocks.params import count_parameters
from zoo.mobilenet import round_channels

# The shared helpers, loaded by path (see applications_twins.py).
_TWINS = os.path.join(os.path.dirname(__file__), "applications_twins.py")
_SPEC = importlib.util.spec_from_file_location("applications_twins", _TWINS)
twins = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(twins)


_ported_outputs = twins.ported_outputs


def test_port_at_224_with_top_gives_equal_logits():
    keras_model = keras.applications.MobileNetV2(
        weights=None, classifier_activation=None
    )
    model, actual, expected = _ported_outputs(keras_model)
    assert isinstance(model, zoo.mobilenet.MobileNetV2)
    config = model.get_config()
    assert config["alpha"] == 1.0
    assert config["include_top"] is True
    assert config["classifier_activation"] is None
    twins.assert_same_outputs(actual, expected, (1, 1000), spread=0.1)


@pytest.mark.parametrize(
    "input_shape, alpha, pooling",
    [((96, 96, 3), 0.35, "avg"), ((75, 97, 3), 1.0, None)],
)
def test_port_without_top_gives_equal_features(input_shape, alpha, pooling):
    keras_model = keras.applications.MobileNetV2(
        weights=None,
        input_shape=input_shape,
        alpha=alpha,
        include_top=False,
        pooling=pooling,
    )
    model, actual, expected = _ported_outputs(keras_model, seed=1)
    assert model.get_config()["alpha"] == alpha
    assert model.get_config()["pooling"] == pooling
    assert actual.shape == expected.shape
    assert np.max(np.abs(actual - expected)) <= 1e-4


def _headless(**kwargs):
    return keras.applications.MobileNetV2(
        weights=None, input_shape=(32, 32, 3), include_top=False, **kwargs
    )


def _another_width():
    return _headless(alpha=0.5, name="mobilenetv2_1.00_32")


def _missing_layer():
    return twins.truncated(
        _headless(), "block_16_project_BN", name="mobilenetv2_1.00_32"
    )


def _extra_layer():
    base = _headless()
    return keras.Model(
        base.input,
        keras.layers.Dense(3, name="extra")(base.output),
        name="mobilenetv2_1.00_32",
    )


@pytest.mark.parametrize(
    "impostor, message",
    [
        (
            _another_width,
            r"^Weight 0 does not match: mobilenetv2_1\.00_32 Conv1/kernel "
            r"has shape \(3, 3, 3, 16\), zoo stem_conv/kernel has shape "
            r"\(3, 3, 3, 32\)\.$",
        ),
        (
            _missing_layer,
            r"zoo top_conv/kernel \(1, 1, 320, 1280\) has no source; "
            r"mobilenetv2_1\.00_32 has no layer 'Conv_1' with weights\.$",
        ),
        (
            _extra_layer,
            r"^Weight extra/kernel \(1280, 3\) of mobilenetv2_1\.00_32 has "
            r"no place in the zoo model \(2 mobilenetv2_1\.00_32 weights "
            r"left over\)\.$",
        ),
    ],
)
def test_port_of_an_impostor_names_the_weight(impostor, message):
    """A model of another width, or with a layer missing or extra, under
    MobileNetV2's name: the port names the first weight that differs."""
    with pytest.raises(ValueError, match=message):
        zoo.from_keras_applications(impostor())


def test_port_of_an_unparsable_name_is_refused():
    keras_model = keras.applications.MobileNetV2(
        weights=None,
        input_shape=(32, 32, 3),
        include_top=False,
        name="mobilenetv2_custom",
    )
    with pytest.raises(ValueError, match="mobilenetv2_<alpha>_<rows>"):
        zoo.from_keras_applications(keras_model)


def test_parameter_counts_equal_keras_applications():
    model = zoo.create_model("mobilenetv2")
    assert count_parameters(model) == 3_538_984
    assert model.count_params() == 3_538_984
    no_top = zoo.create_model("mobilenetv2", include_top=False)
    assert count_parameters(no_top) == 2_257_984


@pytest.mark.parametrize("alpha", [0.35, 0.75, 1.4])
def test_width_multiplier_counts_equal_keras_applications(alpha):
    shape = (96, 96, 3)
    keras_model = keras.applications.MobileNetV2(
        weights=None, input_shape=shape, alpha=alpha, classes=10
    )
    model = zoo.create_model(
        "mobilenetv2", input_shape=shape, alpha=alpha, num_classes=10
    )
    assert count_parameters(model) == keras_model.count_params()
    assert model.get_layer("top_conv").filters == (
        keras_model.get_layer("Conv_1").filters
    )


def test_round_channels_follows_keras_applications():
    assert [round_channels(v) for v in (11.2, 16, 12, 3, 22.4, 1792)] == [
        16,
        16,
        16,
        8,
        24,
        1792,
    ]
    # Never more than 10% below the request.
    assert round_channels(36, divisor=16) == 48


def test_features_only_gives_one_map_per_stride():
    model = zoo.create_model(
        "mobilenetv2", input_shape=(64, 64, 3), features_only=True
    )
    assert [(f.name, f.stride, f.channels) for f in model.feature_info] == [
        ("block_0", 2, 16),
        ("block_2", 4, 24),
        ("block_5", 8, 32),
        ("block_12", 16, 96),
        ("top_relu", 32, 1280),
    ]
    assert [tuple(s) for s in model.output_shape] == [
        (None, 32, 32, 16),
        (None, 16, 16, 24),
        (None, 8, 8, 32),
        (None, 4, 4, 96),
        (None, 2, 2, 1280),
    ]


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"input_shape": (31, 64, 3)}, "too small"),
        ({"input_shape": (64, 64)}, r"input_shape must be \(height, width"),
        ({"input_shape": (64, 64, 0)}, "positive int"),
        ({"num_classes": 0}, "num_classes must be a positive int"),
        ({"pooling": "sum"}, "pooling must be one of"),
        ({"alpha": 0.0}, "alpha must be a positive number"),
        ({"classifier_activation": "nope"}, "unknown classifier_activation"),
    ],
)
def test_bad_arguments_raise(overrides, message):
    with pytest.raises(ValueError, match=message):
        zoo.create_model("mobilenetv2", **overrides)
