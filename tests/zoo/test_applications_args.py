"""keras.applications' arguments on the zoo's twins: `classes`,
`input_tensor`, open height and width, any channel count without
weights, `keras.config.image_data_format()`, and the minimum input
size."""

import importlib.util
import os

import h5py
import keras
import numpy as np
import pytest

import zoo
from kerasblocks._keras_compat import legacy_h5_format
from zoo.mobilenet import MobileNetV2

_TWINS = os.path.join(os.path.dirname(__file__), "applications_twins.py")
_SPEC = importlib.util.spec_from_file_location("applications_twins", _TWINS)
twins = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(twins)

SMALL = {"alpha": 0.35}  # mobilenetv2 at its narrowest: fast to build


@pytest.fixture(autouse=True)
def _restore_data_format():
    previous = keras.config.image_data_format()
    yield
    keras.config.set_image_data_format(previous)


def _randomize(model, seed=0):
    """Every weight away from its initial value, statistics included."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        value = rng.normal(0.0, 0.1, variable.shape)
        if "variance" in variable.path or "gamma" in variable.path:
            value = rng.uniform(0.5, 1.5, variable.shape)
        variable.assign(value.astype(variable.dtype))


def test_classes_is_num_classes():
    model = zoo.create_model(
        "mobilenetv2", classes=7, input_shape=(32, 32, 3), **SMALL
    )
    assert model.output_shape == (None, 7)
    config = model.get_config()
    assert config["num_classes"] == 7 and "classes" not in config
    same = zoo.create_model(
        "mobilenetv2", classes=7, num_classes=7, input_shape=(32, 32, 3)
    )
    assert same.output_shape == (None, 7)
    # The class takes it too, and its config says num_classes.
    direct = MobileNetV2(classes=4, input_shape=(32, 32, 3), alpha=0.35)
    assert direct.output_shape == (None, 4)
    assert direct.get_config()["num_classes"] == 4
    assert type(direct).from_config(direct.get_config()).output_shape == (
        None,
        4,
    )


def test_classes_and_num_classes_that_differ_are_refused():
    with pytest.raises(ValueError, match=r"classes=5, num_classes=6"):
        zoo.create_model("mobilenetv2", classes=5, num_classes=6)
    with pytest.raises(ValueError, match=r"classes=5, num_classes=6"):
        MobileNetV2(classes=5, num_classes=6)
    with pytest.raises(ValueError, match=r"classes must be a positive int"):
        zoo.create_model("mobilenetv2", classes="5")


def test_input_tensor_with_layers_before_it():
    keras.utils.set_random_seed(0)
    source = keras.Input((64, 64, 4), name="custom_input")
    tensor = keras.layers.Conv2D(3, 2, strides=2, name="adapter")(source)
    model = zoo.create_model(
        "mobilenetv2", include_top=False, input_tensor=tensor, **SMALL
    )
    # As in keras.applications: the model starts at the source input.
    assert model.inputs[0] is source
    assert model.output_shape == (None, 1, 1, 1280)
    assert "adapter" in [layer.name for layer in model.layers]
    # Its config is the graph, which reloads (as a Functional model).
    x = np.random.default_rng(0).uniform(0, 1, (2, 64, 64, 4))
    expected = keras.ops.convert_to_numpy(model(x))
    again = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(model)
    )
    again.set_weights(model.get_weights())
    np.testing.assert_allclose(again(x), expected, atol=1e-6)
    assert [w.path for w in again.weights] == [w.path for w in model.weights]


def test_input_tensor_that_is_an_input():
    tensor = keras.Input((40, 40, 3))
    model = zoo.create_model("resnet50", input_tensor=tensor, classes=3)
    assert model.inputs[0] is tensor
    assert model.output_shape == (None, 3)


def test_open_height_and_width():
    # keras.applications' rule: without a top and without input_shape,
    # any size.
    model = zoo.create_model("mobilenetv2", include_top=False, **SMALL)
    assert model.input_shape == (None, None, None, 3)
    for size in (32, 64):
        x = np.zeros((1, size, size, 3), "float32")
        assert model(x).shape == (1, size // 32, size // 32, 1280)
    pooled = zoo.create_model(
        "mobilenetv2", include_top=False, pooling="max", **SMALL
    )
    assert pooled.output_shape == (None, 1280)
    # With a top, a static size is needed (Keras's rule too).
    with pytest.raises(ValueError, match=r"static input_shape"):
        zoo.create_model("mobilenetv2", input_shape=(None, None, 3))
    # And a top keeps the twin's default size.
    assert zoo.create_model("mobilenetv2", **SMALL).input_shape == (
        None,
        224,
        224,
        3,
    )


@pytest.mark.parametrize("channels", [1, 5])
def test_any_channel_count_without_weights(channels):
    model = zoo.create_model(
        "mobilenetv2",
        weights=None,
        input_shape=(None, None, channels),
        include_top=False,
        **SMALL,
    )
    assert model.input_shape == (None, None, None, channels)
    stem = model.get_layer("stem_conv")
    assert tuple(stem.kernel.shape) == (3, 3, channels, 16)
    x = np.random.default_rng(0).uniform(0, 1, (1, 32, 32, channels))
    assert model(x).shape == (1, 1, 1, 1280)


def test_too_small_an_input_says_the_minimum():
    with pytest.raises(ValueError, match=r"at least 32") as error:
        zoo.create_model("mobilenetv2", input_shape=(16, 40, 3))
    assert "(16, 40, 3)" in str(error.value)
    keras.config.set_image_data_format("channels_first")
    with pytest.raises(ValueError, match=r"at least 75") as error:
        zoo.create_model("inceptionv3", input_shape=(3, 74, 80))
    # Shown as the caller gave it (channels first).
    assert "(3, 74, 80)" in str(error.value)


@pytest.mark.parametrize(
    "arguments",
    [
        {"include_top": False},
        {"include_top": True, "num_classes": 6},
        {"features_only": True},
    ],
    ids=["features", "top", "features_only"],
)
def test_channels_first_loads_the_same_weights(arguments, tmp_path):
    keras.utils.set_random_seed(0)
    last = zoo.create_model(
        "mobilenetv2", input_shape=(48, 48, 3), **SMALL, **arguments
    )
    _randomize(last)
    path = str(tmp_path / "last.weights.h5")
    last.save_weights(path)

    keras.config.set_image_data_format("channels_first")
    first = zoo.create_model(
        "mobilenetv2", input_shape=(3, 48, 48), **SMALL, **arguments
    )
    assert first.input_shape == (None, 3, 48, 48)
    # Keras's conv kernels are (kh, kw, in, out) in both formats: the
    # file loads as it is.
    first.load_weights(path)
    x = np.random.default_rng(1).uniform(-1, 1, (2, 48, 48, 3))
    expected = last(x.astype("float32"))
    actual = first(np.transpose(x, (0, 3, 1, 2)).astype("float32"))
    if not isinstance(expected, list):
        expected, actual = [expected], [actual]
    for want, got in zip(expected, actual, strict=True):
        want = keras.ops.convert_to_numpy(want)
        got = keras.ops.convert_to_numpy(got)
        if want.ndim == 4:  # feature maps come back channels-first
            want = np.transpose(want, (0, 3, 1, 2))
        assert got.shape == want.shape
        scale = np.abs(want).max()
        np.testing.assert_allclose(got, want, atol=1e-5 * scale)


def test_channels_first_is_recorded_in_the_config():
    keras.config.set_image_data_format("channels_first")
    model = zoo.create_model(
        "mobilenetv2", include_top=False, input_shape=(1, None, None), **SMALL
    )
    assert model.output_shape == (None, 1280, None, None)
    config = model.get_config()
    assert config["data_format"] == "channels_first"
    keras.config.set_image_data_format("channels_last")
    # Rebuilt under another global format, it keeps its own.
    again = MobileNetV2.from_config(config)
    assert again.input_shape == (None, 1, None, None)
    assert keras.config.image_data_format() == "channels_last"
    x = np.zeros((1, 1, 64, 64), "float32")
    assert again.forward_features(x).shape == (1, 1280, 2, 2)


def test_a_config_without_the_new_keys_still_loads():
    # A config saved before data_format and classes existed.
    model = zoo.create_model("mobilenetv2", input_shape=(32, 32, 3), **SMALL)
    config = model.get_config()
    del config["data_format"]
    again = MobileNetV2.from_config(config)
    assert again.input_shape == (None, 32, 32, 3)
    assert [w.path for w in again.weights] == [w.path for w in model.weights]


@pytest.mark.onednn  # NCHW convolutions on the CPU
def test_a_channels_first_keras_model_ports_to_a_channels_first_twin():
    keras.config.set_image_data_format("channels_first")
    keras_model = keras.applications.MobileNetV2(
        weights=None, input_shape=(3, 32, 32), alpha=0.35, classes=4
    )
    model, actual, expected = twins.ported_outputs(keras_model, seed=3)
    assert model.input_shape == (None, 3, 32, 32)
    np.testing.assert_allclose(
        actual, expected, atol=1e-5 * np.abs(expected).max()
    )


def test_classifier_activation_is_the_last_layers():
    model = zoo.create_model(
        "mobilenet",
        input_shape=(32, 32, 3),
        alpha=0.25,
        classifier_activation="softmax",
    )
    assert model.layers[-1].activation.__name__ == "softmax"


@pytest.mark.onednn  # NCHW convolutions on the CPU
def test_a_keras_applications_file_loads_into_a_channels_first_twin(
    tmp_path,
):
    """A channels-last keras.applications weights file (their legacy
    layout) loads into a channels-first twin as into keras.applications
    in that format: the same arrays, the same outputs."""
    arguments = {"include_top": False, "pooling": "avg"}
    keras.utils.set_random_seed(6)
    source = keras.applications.VGG16(
        weights=None, input_shape=(32, 32, 3), **arguments
    )
    twins.randomize_statistics(source, seed=6)
    path = str(tmp_path / "vgg16.h5")
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, source)

    keras.config.set_image_data_format("channels_first")
    reference = keras.applications.VGG16(
        weights=path, input_shape=(3, 32, 32), **arguments
    )
    model = zoo.create_model(
        "vgg16", weights=path, input_shape=(3, 32, 32), **arguments
    )
    assert model.data_format == "channels_first"
    assert model.input_shape == (None, 3, 32, 32)
    assert model.pretrained_report.ok, str(model.pretrained_report)
    assert len(model.pretrained_report.loaded) == len(reference.weights) == 26
    # The zoo's VGG nests its convolutions in blocks.
    kernel = {v.path: v for v in model.weights}["block5/conv3/kernel"]
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(kernel),
        keras.ops.convert_to_numpy(reference.get_layer("block5_conv3").kernel),
    )
    x = np.random.default_rng(6).uniform(0, 255, (2, 3, 32, 32))
    expected = keras.ops.convert_to_numpy(reference(x.astype("float32")))
    actual = keras.ops.convert_to_numpy(model(x.astype("float32")))
    assert actual.shape == expected.shape == (2, 512)
    np.testing.assert_allclose(
        actual, expected, atol=1e-5 * np.abs(expected).max()
    )


@pytest.mark.onednn  # NCHW convolutions on the CPU
def test_a_channels_first_vgg_top_ports_with_its_flatten():
    # Keras's Flatten orders a channels-first map channels-last, so the
    # classifier after it takes the same kernel as in channels-last.
    keras.config.set_image_data_format("channels_first")
    keras_model = keras.applications.VGG16(
        weights=None,
        input_shape=(3, 32, 32),
        classes=5,
        classifier_activation=None,
    )
    model, actual, expected = twins.ported_outputs(keras_model, seed=7)
    assert model.data_format == "channels_first"
    assert actual.shape == expected.shape == (1, 5)
    # Not a constant: the classes' logits differ.
    assert np.std(expected) > 0.1 * np.abs(expected).max()
    np.testing.assert_allclose(
        actual, expected, atol=1e-5 * np.abs(expected).max()
    )
