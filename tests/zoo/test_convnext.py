"""ConvNeXt: keras.applications parity through weight porting (raw
0-255 inputs, preprocessing included), parameter counts, the stochastic
depth schedule, feature maps and argument errors."""

import functools
import importlib.util
import os

import keras
import numpy as np
import pytest

import zoo
from kerasblocks.params import count_parameters

# The shared helpers, loaded by path (see applications_twins.py).
_TWINS = os.path.join(os.path.dirname(__file__), "applications_twins.py")
_SPEC = importlib.util.spec_from_file_location("applications_twins", _TWINS)
twins = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(twins)


def _randomize(model, seed=0):
    """Every weight moved from its initial value; layer scales raised
    from 1e-6 so that every block changes the output."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        if "layer_scale" in variable.path:
            value = rng.uniform(0.2, 0.6, variable.shape)
        else:
            value = variable.numpy() + rng.normal(0, 0.05, variable.shape)
        variable.assign(value.astype("float32"))


_ported_outputs = functools.partial(
    twins.ported_outputs, pixels=(0.0, 255.0), randomize=_randomize
)
_trainable_and_not = twins.trainable_and_not


def test_tiny_port_at_224_with_top_gives_equal_logits():
    keras_model = keras.applications.ConvNeXtTiny(
        weights=None, classifier_activation=None
    )
    model, actual, expected = _ported_outputs(keras_model)
    config = model.get_config()
    assert config["depths"] == [3, 3, 9, 3]
    assert config["include_top"] is True
    assert config["include_preprocessing"] is True
    assert config["classifier_activation"] is None
    twins.assert_same_outputs(actual, expected, (1, 1000), spread=0.1)


def test_small_port_at_64_without_top_gives_equal_features():
    keras_model = keras.applications.ConvNeXtSmall(
        weights=None,
        input_shape=(64, 64, 3),
        include_top=False,
        pooling="avg",
    )
    model, actual, expected = _ported_outputs(keras_model, seed=1)
    config = model.get_config()
    assert config["depths"] == [3, 3, 27, 3]
    assert (config["include_top"], config["pooling"]) == (False, "avg")
    twins.assert_same_outputs(actual, expected, (1, 768))


def test_port_without_preprocessing_or_pooling_at_an_odd_size():
    keras_model = keras.applications.ConvNeXtTiny(
        weights=None,
        input_shape=(45, 67, 3),
        include_top=False,
        include_preprocessing=False,
    )
    model, actual, expected = _ported_outputs(keras_model, seed=2)
    assert model.get_config()["include_preprocessing"] is False
    assert "preprocessing" not in [layer.name for layer in model.layers]
    twins.assert_same_outputs(actual, expected, (1, 1, 2, 768))


def test_port_of_fewer_blocks_under_a_deeper_name_names_the_weight():
    keras_model = keras.applications.ConvNeXtTiny(
        weights=None,
        input_shape=(32, 32, 3),
        include_top=False,
        name="convnext_small",
    )
    with pytest.raises(
        ValueError,
        match=r"^Weight \d+ does not match: zoo stage_2_block_9/layer_scale "
        r"\(384,\) has no source; convnext_small has no layer "
        r"'convnext_small_stage_2_block_9_layer_scale' with weights\.$",
    ):
        zoo.from_keras_applications(keras_model)


def test_port_with_a_missing_layer_names_the_weight():
    full = keras.applications.ConvNeXtTiny(
        weights=None, input_shape=(32, 32, 3), include_top=False
    )
    # Everything but the final layer norm.
    truncated = keras.Model(
        full.input, full.layers[-2].output, name="convnext_tiny"
    )
    with pytest.raises(
        ValueError,
        match=r"zoo head_layernorm/gamma \(768,\) has no source; "
        r"convnext_tiny has no layer '.+' with weights\.$",
    ):
        zoo.from_keras_applications(truncated)


@pytest.mark.parametrize(
    "name, application, with_top, without_top",
    [
        ("convnext_tiny", "ConvNeXtTiny", 28_589_128, 27_820_128),
        ("convnext_small", "ConvNeXtSmall", 50_223_688, 49_454_688),
    ],
)
def test_parameter_counts_equal_keras_applications(
    name, application, with_top, without_top
):
    keras_model = getattr(keras.applications, application)(weights=None)
    assert keras_model.count_params() == with_top
    assert count_parameters(zoo.create_model(name)) == with_top
    no_top = zoo.create_model(name, include_top=False)
    assert count_parameters(no_top) == without_top


@pytest.mark.parametrize(
    "name, application, with_top, without_top",
    [
        ("convnext_base", "ConvNeXtBase", 88_591_464, 87_566_464),
        ("convnext_large", "ConvNeXtLarge", 197_767_336, None),
        ("convnext_xlarge", "ConvNeXtXLarge", 350_196_968, None),
    ],
)
def test_big_parameter_counts_equal_keras_applications(
    name, application, with_top, without_top
):
    shape = (32, 32, 3)
    keras_model = getattr(keras.applications, application)(
        weights=None, input_shape=shape
    )
    assert _trainable_and_not(keras_model) == (with_top, 0)
    model = zoo.create_model(name, input_shape=shape)
    assert _trainable_and_not(model) == (with_top, 0)
    assert [layer.name for layer in model.layers if layer.weights][-3:] == [
        "stage_3_block_2",
        "head_layernorm",
        "predictions",
    ]
    if without_top is not None:
        no_top = zoo.create_model(name, input_shape=shape, include_top=False)
        # keras.applications' figure, as the literals above.
        assert count_parameters(no_top) == without_top


def test_base_port_at_64_with_top_gives_equal_logits():
    keras_model = keras.applications.ConvNeXtBase(
        weights=None, input_shape=(64, 64, 3), classifier_activation=None
    )
    model, actual, expected = _ported_outputs(keras_model, seed=3)
    config = model.get_config()
    assert model.name == "convnext_base"
    assert config["filters"] == [128, 256, 512, 1024]
    assert config["depths"] == [3, 3, 27, 3]
    twins.assert_same_outputs(actual, expected, (1, 1000), spread=0.1)


def test_stochastic_depth_grows_linearly_over_the_blocks():
    model = zoo.create_model(
        "convnext_tiny", input_shape=(32, 32, 3), drop_path_rate=0.36
    )
    rates = [
        layer.drop_path_rate
        for layer in model.layers
        if layer.name.startswith("stage_")
    ]
    assert len(rates) == 18
    np.testing.assert_allclose(rates, np.linspace(0.0, 0.36, 18))
    assert model.get_layer("stage_3_block_2").drop_path_rate == 0.36


def test_features_only_gives_each_stage():
    model = zoo.create_model(
        "convnext_tiny", input_shape=(64, 64, 3), features_only=True
    )
    assert [(f.name, f.stride, f.channels) for f in model.feature_info] == [
        ("stage_0", 4, 96),
        ("stage_1", 8, 192),
        ("stage_2", 16, 384),
        ("stage_3", 32, 768),
    ]
    assert [tuple(s) for s in model.output_shape] == [
        (None, 16, 16, 96),
        (None, 8, 8, 192),
        (None, 4, 4, 384),
        (None, 2, 2, 768),
    ]


def test_preprocessing_normalizes_raw_rgb_images():
    model = zoo.create_model(
        "convnext_tiny", input_shape=(32, 32, 3), include_top=False
    )
    layer = model.get_layer("preprocessing")
    pixel = np.array([[[[0.485 * 255, 0.0, 255.0]]]], "float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer(pixel))[0, 0, 0],
        [0.0, -0.456 / 0.224, (1 - 0.406) / 0.225],
        rtol=1e-5,
        atol=1e-5,
    )
    grey = zoo.create_model(
        "convnext_tiny",
        input_shape=(32, 32, 1),
        include_preprocessing=False,
        include_top=False,
        pooling="avg",
    )
    assert grey.output_shape == (None, 768)
    # RGB normalization needs RGB: with another channel count it is
    # left out, as keras.applications leaves it out.
    grey = zoo.create_model(
        "convnext_tiny", input_shape=(32, 32, 1), include_top=False
    )
    names = [layer.name for layer in grey.layers]
    assert "preprocessing" not in names and "stem_conv" in names


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"input_shape": (31, 64, 3)}, "too small"),
        ({"input_shape": (64, 64)}, r"input_shape must be \(height, width"),
        ({"num_classes": 0}, "num_classes must be a positive int"),
        ({"pooling": "sum"}, "pooling must be one of"),
        ({"depths": (3, 3, 9)}, "depths must be 4 positive ints"),
        ({"filters": (96, 192, 384, 0)}, "filters must be 4 positive ints"),
        ({"drop_path_rate": 1.0}, r"drop_path_rate must be in \[0, 1\)"),
    ],
)
def test_bad_arguments_raise(overrides, message):
    with pytest.raises(ValueError, match=message):
        zoo.create_model("convnext_tiny", **overrides)
