"""Which data flags apply to which data set, checked by the library too."""

import keras
import pytest

from kerasblocks.training import models, trainer, transfer
from kerasblocks.training.config import TrainConfig
from kerasblocks.training.errors import UserInputError


def _options(**settings):
    return trainer.source_options(TrainConfig(**settings).validate())


def test_source_options_pass_only_what_applies():
    limit = {"max_pixels": 8192 * 8192}
    assert _options(dataset="folder:x") == {"strict": False, **limit}
    assert _options(
        dataset="tfrecord:a-*,b-*", image_size=24, cache="memory"
    ) == {
        "strict": False,
        **limit,
        "image_size": (24, 24),
        "cache": "memory",
    }
    assert _options(
        dataset="tfds:mnist", data_dir="/d", image_size=[24, 32]
    ) == {"strict": False, **limit, "image_size": (24, 32)}
    # A tfrecord source's labels must fit the model's classes.
    assert _options(
        dataset="tfrecord:a-*",
        model_overrides={"num_classes": 3},
        max_image_pixels=100,
    ) == {"strict": False, "max_pixels": 100, "num_classes": 3}
    assert _options(dataset="folder:x", model_overrides={"num_classes": 3}) == {
        "strict": False,
        **limit,
    }
    assert _options(dataset="digits") == {}
    assert _options(dataset="mnist", data_dir="/d") == {}
    for settings, message in [
        ({"dataset": "digits", "cache": "memory"}, "--cache applies to"),
        ({"dataset": "cifar10", "image_size": 32}, "--image_size applies"),
        ({"dataset": "digits", "strict_data": True}, "--strict_data applies"),
        (
            {"dataset": "digits", "max_image_pixels": 100},
            "--max_image_pixels applies",
        ),
        (
            {"dataset": "folder:x", "max_image_pixels": 0},
            "--max_image_pixels must be a positive integer",
        ),
        ({"dataset": "digits", "data_dir": "/d"}, "made in memory"),
        (
            {"dataset": "folder:x", "data_dir": "/d"},
            "--data_dir does not apply to --dataset=folder:...",
        ),
    ]:
        with pytest.raises(UserInputError, match=message):
            _options(**settings)


@pytest.mark.parametrize("size", [0, [3], [4, 0], [True, 4], "32"])
def test_a_bad_image_size_is_refused(size):
    with pytest.raises(UserInputError, match="--image_size must be"):
        TrainConfig(dataset="folder:x", image_size=size).validate()


def test_the_image_size_is_recorded_with_the_model(monkeypatch):
    from kerasblocks.data import dataset as data_lib

    def create(name, **overrides):
        return keras.Sequential(
            [
                keras.Input((8, 12, 1)),
                keras.layers.Flatten(),
                keras.layers.Dense(10),
            ]
        )

    source = models.ModelSource(create, lambda name: "image")
    monkeypatch.setattr(models, "_SOURCE", [source])
    digits = data_lib.load_dataset("digits")
    config = TrainConfig(dataset="folder:x", image_size=[8, 12]).validate()
    record = transfer.start_model(config, digits).record
    assert record.image_size == (8, 12)
    assert record.to_dict()["image_size"] == [8, 12]
    default = transfer.start_model(TrainConfig().validate(), digits).record
    assert default.image_size is None
