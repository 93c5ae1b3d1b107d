"""Pretrained weights: keras.applications files, "imagenet" from
Keras's cache (offline), files of the same architecture, new heads, and
preprocessing carried inside the model."""

import hashlib
import logging

import h5py
import keras
import numpy as np
import pytest
from keras.src.legacy.saving import legacy_h5_format

import kerasblocks as kb
import zoo
from zoo import _download_table
from zoo.pretrained import PRETRAINED, PretrainedWeightsError


def _randomize_statistics(model, seed):
    """Fresh BN statistics are 0/1, which would hide a wrong port."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        if variable.path.endswith("moving_mean"):
            variable.assign(rng.normal(0, 0.1, variable.shape))
        elif variable.path.endswith("moving_variance"):
            variable.assign(rng.uniform(0.5, 1.5, variable.shape))


def _applications_file(tmp_path, constructor, name, **kwargs):
    """Writes a weights file in keras.applications' own format (legacy
    HDF5 layer weights) from a seeded `weights=None` model."""
    keras.utils.set_random_seed(7)
    model = constructor(weights=None, **kwargs)
    _randomize_statistics(model, 7)
    path = str(tmp_path / name)
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    return path


def _images(shape, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, (2, *shape)).astype("float32")


def test_resnet50_from_an_applications_file_predicts_what_keras_does(
    tmp_path,
):
    path = _applications_file(
        tmp_path, keras.applications.ResNet50, "resnet50.h5"
    )
    images = _images((224, 224, 3))
    reference = keras.applications.ResNet50(weights=path)
    expected = reference.predict(
        keras.applications.resnet.preprocess_input(images.copy()), verbose=0
    )
    model = zoo.create_model(
        "resnet50", weights=path, include_preprocessing=True
    )
    np.testing.assert_allclose(
        model.predict(images, verbose=0), expected, atol=1e-5
    )
    assert len(model.pretrained_report.loaded) == len(reference.weights)
    assert model.pretrained_report.ok


@pytest.mark.parametrize(
    "name, constructor, module, size",
    [
        ("mobilenetv2", "MobileNetV2", "mobilenet_v2", 96),
        ("densenet121", "DenseNet121", "densenet", 64),
    ],
)
def test_backbone_from_applications_file_each_preprocessing_mode(
    tmp_path, name, constructor, module, size
):
    keras_constructor = getattr(keras.applications, constructor)
    shape = (size, size, 3)
    kwargs = dict(include_top=False, pooling="avg", input_shape=shape)
    path = _applications_file(tmp_path, keras_constructor, "w.h5", **kwargs)
    images = _images(shape, seed=1)
    reference = keras_constructor(weights=path, **kwargs)
    preprocess = getattr(keras.applications, module).preprocess_input
    expected = reference.predict(preprocess(images.copy()), verbose=0)
    model = zoo.create_model(
        name,
        weights=path,
        include_top=False,
        pooling="avg",
        input_shape=shape,
        include_preprocessing=True,
    )
    got = model.predict(images, verbose=0)
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)


def test_new_head_loads_the_backbone_and_reports_the_rest(tmp_path, caplog):
    path = _applications_file(
        tmp_path, keras.applications.ResNet50, "resnet50.h5"
    )
    with caplog.at_level(logging.INFO, logger="zoo"):
        model = zoo.create_model(
            "resnet50", weights=path, num_classes=5, input_shape=(64, 64, 3)
        )
    report = model.pretrained_report
    assert model.output_shape == (None, 5)
    assert [m[0] for m in report.mismatched] == [
        "predictions/kernel",
        "predictions/bias",
    ]
    assert len(report.loaded) == len(model.weights) - 2
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        f"resnet50: loaded {len(report.loaded)} of {len(model.weights)} "
        f"weights from {path}; new (not loaded): predictions"
    ]
    # The backbone equals the file's; the new head is fresh.
    reference = keras.applications.ResNet50(weights=path)
    kernel = reference.get_layer("conv1_conv").kernel.numpy()
    np.testing.assert_array_equal(
        model.get_layer("conv1_conv").kernel.numpy(), kernel
    )


def test_imagenet_offline_names_the_cache_file(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(PretrainedWeightsError) as error:
        zoo.create_model("resnet50", weights="imagenet", include_top=False)
    name = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
    message = str(error.value)
    assert message.startswith(f"resnet50: ZOO_OFFLINE=1 and {name} is not")
    assert message.endswith(str(tmp_path / "models" / name))
    assert "\n" not in message


def test_imagenet_checks_the_hash_and_loads_a_verified_file(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    name = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
    (tmp_path / "models").mkdir()
    path = _applications_file(
        tmp_path / "models",
        keras.applications.ResNet50,
        name,
        include_top=False,
    )
    with pytest.raises(PretrainedWeightsError, match="does not match the hash"):
        zoo.create_model("resnet50", weights="imagenet", include_top=False)
    # The test's hash stands in for Keras's: the same check passes.
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
    files = _download_table.FIXED["ResNet50"]
    monkeypatch.setitem(files, False, files[False]._replace(file_hash=digest))
    shape = (64, 64, 3)
    model = zoo.create_model(
        "resnet50",
        weights="imagenet",
        include_top=False,
        pooling="avg",
        input_shape=shape,
    )
    reference = keras.applications.ResNet50(
        weights=path, include_top=False, pooling="avg", input_shape=shape
    )
    images = keras.applications.resnet.preprocess_input(_images((64, 64, 3)))
    np.testing.assert_allclose(
        model.predict(images, verbose=0),
        reference.predict(images, verbose=0),
        atol=1e-4,
    )


@pytest.mark.parametrize(
    "suffix", [".keras", ".h5", "_savedmodel", ".weights.h5"]
)
def test_weights_from_a_saved_model_of_the_same_architecture(tmp_path, suffix):
    source = zoo.create_model("lenet")
    path = str(tmp_path / f"lenet{suffix}")
    if suffix == ".weights.h5":
        source.save_weights(path)  # Keras's own weights format
    else:
        kb.io.save_model(source, path)
    model = zoo.create_model("lenet", weights=path)
    x = np.random.default_rng(2).uniform(size=(2, 28, 28, 1))
    np.testing.assert_array_equal(model(x), source(x))
    assert model.pretrained_report.ok


def test_weights_errors_are_one_line(tmp_path):
    with pytest.raises(FileNotFoundError, match="no weights file"):
        zoo.create_model("lenet", weights=str(tmp_path / "nope.h5"))
    path = _applications_file(
        tmp_path, keras.applications.MobileNetV2, "m.h5", include_top=False
    )
    with pytest.raises(PretrainedWeightsError, match="no keras.applications"):
        zoo.create_model("lenet", weights=path)
    with pytest.raises(ValueError, match="no pretrained configuration"):
        zoo.create_model("lenet", include_preprocessing=True)


def test_pretrained_cfg_is_on_every_keras_applications_twin():
    cfg = zoo.get_model_entry("resnet50").pretrained_cfg
    assert cfg.keras_application == "ResNet50"
    assert cfg.input_size == (224, 224, 3)
    assert cfg.preprocessing == "caffe"
    assert zoo.get_model_entry("lenet").pretrained_cfg is None
    assert sorted(set(PRETRAINED) - set(zoo.list_models())) == []
    for name, entry_cfg in PRETRAINED.items():
        assert hasattr(keras.applications, entry_cfg.keras_application), name


def test_builtin_preprocessing_is_the_family_argument():
    plain = zoo.create_model(
        "convnext_tiny", input_shape=(32, 32, 3), include_preprocessing=False
    )
    inside = zoo.create_model("convnext_tiny", input_shape=(32, 32, 3))
    assert "preprocessing" not in [layer.name for layer in plain.layers]
    assert "preprocessing" in [layer.name for layer in inside.layers]


@pytest.mark.parametrize("mode", ["caffe", "tf", "torch"])
def test_image_preprocessing_equals_keras_preprocess_input(mode):
    images = _images((5, 7, 3), seed=3)
    expected = keras.applications.imagenet_utils.preprocess_input(
        images.copy(), mode=mode
    )
    got = kb.layers.ImagePreprocessing(mode)(images)
    np.testing.assert_allclose(got, expected, atol=1e-4)


@pytest.mark.parametrize(
    "mode, trainable",
    [
        ("backbone", ["avg_pool", "predictions"]),
        ("all_but_head", ["predictions"]),
    ],
)
def test_frozen_backbone_stays_put_while_the_head_trains(mode, trainable):
    model = zoo.create_model("resnet18", input_shape=(32, 32, 1), num_classes=3)
    assert zoo.pretrained.freeze(model, mode) == trainable
    before = {v.path: v.numpy().copy() for v in model.weights}
    rng = np.random.default_rng(4)
    x = rng.uniform(size=(16, 32, 32, 1)).astype("float32")
    y = rng.integers(0, 3, 16)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    changed = {
        v.path for v in model.weights if not np.array_equal(v, before[v.path])
    }
    # BN moving statistics are frozen too (inference mode).
    assert changed == {"predictions/kernel", "predictions/bias"}
    zoo.pretrained.freeze(model, "none")
    assert len(model.trainable_weights) == len(
        zoo.create_model(
            "resnet18", input_shape=(32, 32, 1), num_classes=3
        ).trainable_weights
    )


def test_freeze_rejects_unknown_modes_and_models():
    model = zoo.create_model("lenet")
    with pytest.raises(ValueError, match="freeze must be one of"):
        zoo.pretrained.freeze(model, "top")
    with pytest.raises(ValueError, match="not a zoo image model"):
        zoo.pretrained.freeze(keras.Sequential([keras.layers.Dense(2)]), "none")


def test_efficientnet_imagenet_layout_keeps_its_extra_rescaling(
    tmp_path, monkeypatch
):
    """keras.applications builds EfficientNet with one more rescaling
    layer (no weights) when it loads ImageNet weights: the zoo model
    must carry it too, or its predictions are silently wrong."""
    from keras.src.applications import efficientnet as keras_efficientnet

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "models").mkdir()
    shape = (64, 64, 3)
    kwargs = dict(include_top=False, pooling="avg", input_shape=shape)
    path = _applications_file(
        tmp_path / "models",
        keras.applications.EfficientNetB0,
        "efficientnetb0_notop.h5",
        **kwargs,
    )
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
    files = _download_table.FIXED["EfficientNetB0"]
    monkeypatch.setitem(files, False, files[False]._replace(file_hash=digest))
    images = _images(shape, seed=5)
    model = zoo.create_model("efficientnet_b0", weights="imagenet", **kwargs)
    # Keras's own ImageNet layout, reading the same file.
    monkeypatch.setattr(
        keras_efficientnet.file_utils, "get_file", lambda *a, **k: path
    )
    reference = keras.applications.EfficientNetB0(weights="imagenet", **kwargs)
    np.testing.assert_allclose(
        model.predict(images, verbose=0),
        reference.predict(images, verbose=0),
        atol=1e-4,
        rtol=1e-4,
    )
    assert model.get_config()["stddev_rescaling"] is True
