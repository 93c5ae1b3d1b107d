"""Parity on trained-like weights: a file written from a keras.applications
model, in every format Keras writes, loads whole into the zoo twin, and
the twin predicts what keras.applications predicts from the same file.

Every array of the source model, statistics included (batch norm, an
input Normalization's mean, variance and count), differs from a fresh
model's (`randomize_statistics` asserts it). Each family is checked at
its default input size (with the classifier where that is affordable),
from a file whose format rotates over the families (each format is met
three or four times), and at a small size without the classifier
through `zoo.from_keras_applications`, the port every file load ends
in.
"""

import importlib.util
import logging
import os

import h5py
import keras
import numpy as np
import pytest
from keras.src.legacy.saving import legacy_h5_format

import kerasblocks as kb
import zoo
from zoo.pretrained import PretrainedWeightsError

_SPEC = importlib.util.spec_from_file_location(
    "applications_twins",
    os.path.join(os.path.dirname(__file__), "applications_twins.py"),
)
twins = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(twins)

FORMATS = ("legacy.h5", ".weights.h5", ".keras", "save.h5")

# zoo name, keras.applications constructor, (default size, top), small
# size. VGG's classifier alone is 120M parameters: its default size is
# checked without it.
FAMILIES = [
    ("resnet50", "ResNet50", (224, True), 32),
    ("resnet50v2", "ResNet50V2", (224, True), 48),
    ("vgg16", "VGG16", (224, False), 32),
    ("densenet121", "DenseNet121", (224, True), 32),
    ("mobilenet", "MobileNet", (224, True), 32),
    ("mobilenetv2", "MobileNetV2", (224, True), 32),
    ("mobilenetv3_small", "MobileNetV3Small", (224, True), 32),
    ("efficientnet_b0", "EfficientNetB0", (224, True), 32),
    ("efficientnetv2_b0", "EfficientNetV2B0", (224, True), 32),
    ("inceptionv3", "InceptionV3", (299, True), 75),
    ("inception_resnet_v2", "InceptionResNetV2", (299, True), 75),
    ("xception", "Xception", (299, True), 71),
    ("nasnet_mobile", "NASNetMobile", (224, True), 32),
    ("convnext_tiny", "ConvNeXtTiny", (224, True), 32),
]


def _cases():
    return [
        pytest.param(
            *family, FORMATS[index % len(FORMATS)], id=f"{family[0]}-{index}"
        )
        for index, family in enumerate(FAMILIES)
    ]


def write(model: keras.Model, directory, fmt: str) -> str:
    """Writes `model`'s weights in one of the formats Keras writes."""
    path = str(directory / f"{model.name}-{fmt}")
    if fmt == "legacy.h5":  # keras.applications' own weight files
        with h5py.File(path, "w") as f:
            legacy_h5_format.save_weights_to_hdf5_group(f, model)
    elif fmt == ".weights.h5":
        model.save_weights(path)
    else:
        model.save(path if fmt == ".keras" else path.replace("save.h5", ".h5"))
        path = path if fmt == ".keras" else path.replace("save.h5", ".h5")
    return path


def _relative(actual, expected) -> float:
    return float(np.max(np.abs(actual - expected)) / np.max(np.abs(expected)))


@pytest.mark.parametrize("name, constructor, default, small, fmt", _cases())
def test_twin_predicts_what_keras_predicts_from_the_same_file(
    tmp_path, name, constructor, default, small, fmt
):
    """At the default size, from a file in one of Keras's formats
    (`weights=PATH`); at a small size without the top, through the port
    alone (`from_keras_applications`), which every file load ends in."""
    build = getattr(keras.applications, constructor)
    size, include_top = default
    kwargs = {"input_shape": (size, size, 3), "include_top": include_top}
    if not include_top:
        kwargs["pooling"] = "avg"
    keras.utils.set_random_seed(3)
    source = build(weights=None, **kwargs)
    twins.randomize_statistics(source, seed=3)
    path = write(source, tmp_path, fmt)
    x = np.random.default_rng(3).uniform(0, 255, (1, size, size, 3))
    # Keras reads its own files losslessly: the source is what
    # keras.applications predicts from the file.
    expected = keras.ops.convert_to_numpy(source(x, training=False))

    model = zoo.create_model(name, weights=path, **kwargs)
    assert model.pretrained_report.ok, str(model.pretrained_report)
    assert len(model.pretrained_report.loaded) == len(source.weights)
    actual = keras.ops.convert_to_numpy(model(x, training=False))
    assert _relative(actual, expected) <= 1e-5

    shape = (small, small, 3)
    other = build(
        weights=None, include_top=False, pooling="avg", input_shape=shape
    )
    twins.randomize_statistics(other, seed=4)
    x = np.random.default_rng(4).uniform(0, 255, (1, *shape))
    expected = keras.ops.convert_to_numpy(other(x, training=False))
    ported = zoo.from_keras_applications(other)
    actual = keras.ops.convert_to_numpy(ported(x, training=False))
    assert _relative(actual, expected) <= 1e-5


# --- heads ---------------------------------------------------------------


@pytest.fixture(scope="module")
def five_classes(tmp_path_factory):
    """A MobileNetV2 `.weights.h5` with a 5-class classifier, its
    keras.applications model and one batch."""
    keras.utils.set_random_seed(5)
    source = keras.applications.MobileNetV2(weights=None, classes=5)
    twins.randomize_statistics(source, seed=5)
    path = str(tmp_path_factory.mktemp("heads") / "five.weights.h5")
    source.save_weights(path)
    x = np.random.default_rng(5).uniform(-1, 1, (1, 224, 224, 3))
    return path, source, x.astype("float32")


@pytest.mark.parametrize("arguments", [{}, {"num_classes": 5}])
def test_a_file_with_five_classes_loads_whole(five_classes, arguments, caplog):
    path, source, x = five_classes
    with caplog.at_level(logging.INFO, logger="zoo"):
        model = zoo.create_model("mobilenetv2", weights=path, **arguments)
    assert model.output_shape == (None, 5)
    assert model.pretrained_report.ok
    assert len(model.pretrained_report.loaded) == len(source.weights)
    np.testing.assert_allclose(
        model(x, training=False), source(x, training=False), atol=1e-6
    )
    assert [r.levelname for r in caplog.records] == ["INFO"]


def test_another_class_count_loads_the_backbone_and_says_so_in_one_line(
    five_classes, caplog
):
    path, source, x = five_classes
    with caplog.at_level(logging.INFO, logger="zoo"):
        model = zoo.create_model("mobilenetv2", weights=path, num_classes=7)
    assert model.output_shape == (None, 7)
    report = model.pretrained_report
    assert [m[0] for m in report.mismatched] == [
        "predictions/kernel",
        "predictions/bias",
    ]
    assert len(report.loaded) == len(source.weights) - 2
    (line,) = [r.getMessage() for r in caplog.records]
    assert line == (
        f"mobilenetv2: loaded {len(report.loaded)} of {len(model.weights)} "
        f"weights from {path}; new (not loaded): predictions"
    )
    np.testing.assert_array_equal(
        model.get_layer("top_bn").moving_mean,
        source.get_layer("Conv_1_bn").moving_mean,
    )


def test_a_partial_load_is_an_error_unless_asked_for(tmp_path):
    keras.utils.set_random_seed(6)
    small = zoo.create_model("resnet18", input_shape=(32, 32, 3))
    twins.randomize_statistics(small, seed=6)
    path = str(tmp_path / "resnet18.keras")
    small.save(path)
    with pytest.raises(PretrainedWeightsError) as error:
        zoo.create_model("resnet34", weights=path, input_shape=(32, 32, 3))
    message = str(error.value)
    assert "\n" not in message and len(message) < 400
    assert "backbone weights unloaded" in message
    assert "strict=False" in message
    model = zoo.create_model(
        "resnet34", weights=path, input_shape=(32, 32, 3), strict=False
    )
    report = model.pretrained_report
    assert report.missing and report.loaded
    first = small.get_layer("conv1_conv").get_weights()[0]
    np.testing.assert_array_equal(
        model.get_layer("conv1_conv").get_weights()[0], first
    )


def test_a_file_of_another_width_is_one_short_line(tmp_path):
    keras.utils.set_random_seed(8)
    source = keras.applications.MobileNetV2(
        weights=None, include_top=False, input_shape=(32, 32, 3)
    )
    path = write(source, tmp_path, ".weights.h5")
    # A file of another width: every layer there, every shape wrong.
    with pytest.raises(PretrainedWeightsError) as error:
        zoo.create_model(
            "mobilenetv2", weights=path, input_shape=(32, 32, 3), alpha=0.5
        )
    message = str(error.value)
    assert "\n" not in message and len(message) < 600
    assert "does not fit" in message


# --- state through every path -------------------------------------------


def test_normalization_statistics_survive_every_path(tmp_path):
    keras.utils.set_random_seed(9)
    source = keras.applications.EfficientNetB0(
        weights=None, include_top=False, pooling="avg", input_shape=(32, 32, 3)
    )
    twins.randomize_statistics(source, seed=9)
    x = np.random.default_rng(9).uniform(0, 255, (2, 32, 32, 3))
    x = x.astype("float32")
    expected = keras.ops.convert_to_numpy(source(x, training=False))
    model = zoo.from_keras_applications(source)
    (norm,) = [
        layer
        for layer in source.layers
        if isinstance(layer, keras.layers.Normalization)
    ]
    # What the layer computes with, not only its variables.
    np.testing.assert_array_equal(
        np.ravel(model.get_layer("normalization").mean), np.ravel(norm.mean)
    )
    results = {"port": model, "reset": model.reset_classifier(0)}
    for suffix in (".keras", ".h5", "_savedmodel", ".params"):
        path = str(tmp_path / f"twin{suffix}")
        if suffix == ".params":
            kb.io.save_weights(model, path)
            fresh = zoo.create_model(
                "efficientnet_b0",
                include_top=False,
                pooling="avg",
                input_shape=(32, 32, 3),
            )
            kb.io.load_weights(fresh, path)
            results[suffix] = fresh
        else:
            kb.io.save_model(model, path)
            results[suffix] = kb.io.load_model(path)
    for how, loaded in results.items():
        actual = keras.ops.convert_to_numpy(loaded(x, training=False))
        assert _relative(actual, expected) <= 1e-5, how
