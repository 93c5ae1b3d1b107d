"""The image convention a model file carries (kerasblocks.io.image_metadata).

LiteRT and ONNX files are covered end to end by tests/tools/test_predict.py
(their conversion takes tens of seconds); here the `.keras` member and
the SavedModel record, and what a damaged record does.
"""

import json
import zipfile

import keras
import numpy as np
import pytest

from kerasblocks import io as kb_io
from kerasblocks.io import image_metadata


def _model():
    keras.utils.set_random_seed(3)
    return keras.Sequential(
        [
            keras.Input((6, 6, 3)),
            keras.layers.Conv2D(4, 3),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )


META = kb_io.ImageMetadata(
    kb_io.ImageServing(
        (6, 6),
        preprocessing="none",
        crop_fraction=0.875,
        interpolation="bicubic",
        class_names=("a", "b", "c"),
    ),
    outputs="probabilities",
)


def test_a_keras_file_keeps_its_metadata_and_still_loads(tmp_path):
    model = _model()
    path = str(tmp_path / "m.keras")
    kb_io.save_model(model, path)
    assert kb_io.read_image_metadata(path) is None
    kb_io.write_image_metadata(path, META)
    found = kb_io.read_image_metadata(path)
    assert found == META
    assert found.pixels == "raw"
    assert found.serving.class_names == ("a", "b", "c")
    # Written again: replaced, not added.
    again = kb_io.ImageMetadata(META.serving, outputs="logits")
    kb_io.write_image_metadata(path, again)
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    assert names.count(image_metadata.KERAS_MEMBER) == 1
    assert kb_io.read_image_metadata(path).outputs == "logits"
    x = np.random.default_rng(0).uniform(0, 255, (2, 6, 6, 3))
    reloaded = kb_io.load_model(path)
    np.testing.assert_allclose(
        reloaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6
    )


def test_a_tampered_record_is_refused_by_the_seal(tmp_path):
    path = str(tmp_path / "m.keras")
    kb_io.save_model(_model(), path)
    kb_io.write_image_metadata(path, META)
    with zipfile.ZipFile(path) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    record = json.loads(members[image_metadata.KERAS_MEMBER])
    record["image_serving"]["preprocessing"] = "unit"
    members[image_metadata.KERAS_MEMBER] = json.dumps(record).encode()
    forged = str(tmp_path / "forged.keras")
    with zipfile.ZipFile(forged, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(kb_io.CorruptFileError):
        kb_io.load_model(forged)


def test_an_unreadable_record_is_one_error_naming_the_file(tmp_path):
    path = str(tmp_path / "m.keras")
    kb_io.save_model(_model(), path)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(image_metadata.KERAS_MEMBER, "{not json")
    with pytest.raises(kb_io.CorruptFileError, match="m.keras") as caught:
        kb_io.read_image_metadata(path)
    assert "unreadable image metadata" in str(caught.value)


def test_a_saved_model_records_its_view_and_outputs(tmp_path):
    model = _model()
    path = str(tmp_path / "sm")
    kb_io.export_saved_model(model, path, image_serving=META.serving)
    assert kb_io.read_image_metadata(path) == META
    logits = keras.Sequential(
        [keras.Input((6, 6, 3)), keras.layers.Flatten(), keras.layers.Dense(3)]
    )
    kb_io.export_saved_model(
        logits, str(tmp_path / "lg"), image_serving=META.serving
    )
    assert kb_io.read_image_metadata(str(tmp_path / "lg")).outputs == "logits"
    plain = str(tmp_path / "plain")
    kb_io.export_saved_model(model, plain)
    assert kb_io.read_image_metadata(plain) is None


def test_formats_without_a_place_say_so(tmp_path):
    with pytest.raises(kb_io.CorruptFileError, match="unknown model format"):
        image_metadata.model_format(str(tmp_path / "m.pt"))
    with pytest.raises(FileNotFoundError):
        kb_io.read_image_metadata(str(tmp_path / "missing.keras"))
    path = str(tmp_path / "sm")
    kb_io.export_saved_model(_model(), path)
    with pytest.raises(ValueError, match="a SavedModel takes it"):
        kb_io.write_image_metadata(path, META)
    with pytest.raises(ValueError, match="outputs must be one of"):
        kb_io.ImageMetadata(META.serving, outputs="scores")


def test_open_model_refuses_images_over_its_pixel_limit(tmp_path):
    import tensorflow as tf

    from kerasblocks.data import DataError
    from kerasblocks.training import inference

    net = keras.Sequential(
        [keras.Input((4, 4, 3)), keras.layers.Flatten(), keras.layers.Dense(2)]
    )
    kb_io.save_model(net, tmp_path / "net.keras")
    image = str(tmp_path / "a.png")
    tf.io.write_file(image, tf.io.encode_png(np.zeros((9, 10, 3), "uint8")))
    model = inference.open_model(str(tmp_path / "net.keras"), max_pixels=90)
    assert model.predict_files([image]).shape == (1, 2)
    model = inference.open_model(str(tmp_path / "net.keras"), max_pixels=89)
    with pytest.raises(DataError) as error:
        model.predict_files([image])
    assert str(error.value) == (
        f"{image}: 9x10 = 90 pixels, over the limit max_image_pixels=89"
    )
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError) as error:
            inference.open_model(str(tmp_path / "net.keras"), max_pixels=bad)
        assert str(error.value) == (
            f"max_pixels must be a positive int. Received: {bad!r}"
        )
