"""The run on the streaming sources: a short epoch, a cache's mixing,
the evaluation view of a pretrained run, several workers.

The images are the data-source tests' (`data_files`): a solid colour per
class, so labels can be checked against the pixels.
"""

import io
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from kerasblocks.data import dataset as data_lib
from tests.kerasblocks.data_files import (
    _epoch,
    class_of,
    write_folder,
)


def test_training_carries_on_when_an_epoch_runs_short(tmp_path, monkeypatch):
    """An image that stops decoding during the run (changed on disk after
    the up-front check) is dropped; the short epoch is said, and the run
    keeps its planned steps and epochs."""
    import keras

    from kerasblocks.training import models, trainer
    from kerasblocks.training.config import TrainConfig

    def mlp(name, num_classes=10, input_shape=(8, 8, 3)):
        return keras.Sequential(
            [
                keras.Input(input_shape),
                keras.layers.Flatten(),
                keras.layers.Dense(num_classes),
            ],
            name=name,
        )

    monkeypatch.setattr(
        models, "_SOURCE", [models.ModelSource(mlp, lambda name: "image")]
    )
    write_folder(tmp_path / "data" / "train", per_class=(3, 3))
    write_folder(tmp_path / "data" / "val", per_class=(2, 2))
    victim = tmp_path / "data" / "train" / "class_1" / "000.png"

    def damage(step):
        if step == 2:  # the end of epoch 1
            png = bytearray(victim.read_bytes())
            png[len(png) // 2 : len(png) // 2 + 40] = bytes(40)
            victim.write_bytes(bytes(png))

    config = TrainConfig(
        model="mlp",
        dataset=f"folder:{tmp_path / 'data'}",
        batch_size=3,
        epochs=3,
        jit_compile="false",
        export=(),
        out_dir=str(tmp_path / "run"),
    )
    with pytest.warns(UserWarning) as caught:
        result = trainer.train(
            config, stream=io.StringIO(), hooks=trainer.Hooks(damage)
        )
    short = [str(w.message) for w in caught if "ended after" in str(w.message)]
    assert short == [
        f"epoch {e} ended after 1 of 2 batches: some examples could not be "
        "decoded and were dropped; check the data (kb-prepare finds them)."
        for e in (2, 3)
    ]
    assert result.steps == 6
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    history = metrics["history"]
    assert [(h["epoch"], h["step"]) for h in history] == [
        (1, 2),
        (2, 4),
        (3, 6),
    ]


def test_a_cache_fills_a_folder_mixed_so_blocks_hold_every_class(
    tmp_path, monkeypatch
):
    # An epoch permutes blocks of a cached split; a cache filled in the
    # folder's listing order (class by class) gave batches of one class.
    from kerasblocks.data import streams

    monkeypatch.setattr(streams, "SHUFFLE_BLOCK", 4)
    write_folder(tmp_path, per_class=(8, 8), formats=("png",))
    dataset = data_lib.load_dataset(
        f"folder:{tmp_path}", val_fraction=0.25, cache="memory"
    )
    for seed in (3, 4):
        batches = _epoch(dataset, seed=seed)
        labels = np.concatenate([y for _, y in batches])
        assert np.bincount(labels).tolist() == [7, 5]  # the seeded split
        assert all(len(set(y)) == 2 for _, y in batches), labels
        for x, y in batches:
            np.testing.assert_array_equal(class_of(x), y)


def test_evaluation_sees_the_pixels_serving_does(tmp_path):
    """A pretrained run's validation and kb-evaluate crop and resize as
    its export serves (timm's evaluation view); training from scratch
    keeps the whole image."""
    from kerasblocks.io import ImageServing
    from kerasblocks.io.image_serving import crop_and_resize
    from kerasblocks.training.record import RunRecord

    rng = np.random.default_rng(7)
    for label in range(2):
        os.makedirs(tmp_path / f"class_{label}")
        for i in range(3):
            image = rng.integers(0, 256, (20, 28, 3), dtype=np.uint8)
            path = str(tmp_path / f"class_{label}" / f"{i}.png")
            tf.io.write_file(path, tf.io.encode_png(image))
    record = RunRecord(
        "pretend",
        {},
        pixels="raw",
        pretrained_cfg={"crop_fraction": 0.5, "interpolation": "bicubic"},
    )
    view = record.eval_view
    assert view == {"crop_fraction": 0.5, "interpolation": "bicubic"}
    assert RunRecord("scratch", {}).eval_view == {
        "crop_fraction": 1.0,
        "interpolation": "bilinear",
    }
    serving = ImageServing((8, 8), preprocessing="none", **view)
    dataset = data_lib.load_dataset(f"folder:{tmp_path}", val_fraction=0.5)
    (images, _), *_ = data_lib.make_pipeline(
        dataset, "val", 3, image_shape=(8, 8, 3), pixels="raw", **view
    )
    files = dataset._splits["val"][0]
    served = serving.prepare(
        tf.stack([tf.io.decode_png(tf.io.read_file(f)) for f in files])
    )
    np.testing.assert_allclose(images, served, atol=1e-3)
    whole, _ = next(
        iter(
            data_lib.make_pipeline(
                dataset, "val", 3, image_shape=(8, 8, 3), pixels="raw"
            )
        )
    )
    assert np.abs(whole - served).max() > 10  # the crop shows
    # In-memory images take the same view.
    digits = data_lib.load_dataset("digits")
    x, _ = next(
        iter(
            data_lib.make_pipeline(
                digits, "val", 4, image_shape=(4, 4, 1), pixels="raw", **view
            )
        )
    )
    expected = crop_and_resize(
        data_lib.to_float_pixels(tf.constant(digits.x_val[:4]), "raw"),
        (4, 4),
        0.5,
        "bicubic",
    )
    np.testing.assert_allclose(x, expected, atol=1e-4)
    assert digits.x_val.shape[1:3] == (8, 8)  # cropped to 4x4, not resized
    np.testing.assert_allclose(
        x[..., 0],
        data_lib.to_float_pixels(tf.constant(digits.x_val[:4]), "raw")[
            :, 2:6, 2:6, 0
        ],
        atol=1e-4,
    )


def test_a_pretrained_runs_validation_uses_its_evaluation_view(
    tmp_path, monkeypatch
):
    """The trainer validates through the run's `eval_view` (the crop its
    export serves with), not the whole image."""
    import keras

    from kerasblocks.io import ImageServing
    from kerasblocks.training import models, trainer, transfer
    from kerasblocks.training.config import TrainConfig
    from kerasblocks.training.record import RunRecord

    keras.utils.set_random_seed(5)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Flatten(),
            keras.layers.Dense(3, kernel_initializer="glorot_normal"),
        ]
    )
    cfg = {"crop_fraction": 0.5, "interpolation": "bicubic"}

    def start_model(config, dataset):
        record = RunRecord(
            "pretend",
            keras.saving.serialize_keras_object(model),
            init_from="pretend.h5",
            pretrained_cfg=cfg,
        )
        return transfer.Start(model, record, (8, 8, 3), from_logits=True)

    monkeypatch.setattr(transfer, "start_model", start_model)
    monkeypatch.setattr(
        models, "_SOURCE", [models.ModelSource(None, lambda name: "image")]
    )
    rng = np.random.default_rng(3)
    for split, count in (("train", 3), ("val", 2)):
        for label in range(3):
            folder = tmp_path / "data" / split / f"class_{label}"
            os.makedirs(folder)
            for i in range(count):
                image = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
                tf.io.write_file(
                    str(folder / f"{i}.png"), tf.io.encode_png(image)
                )
    config = TrainConfig(
        model="pretend",
        dataset=f"folder:{tmp_path / 'data'}",
        batch_size=3,
        epochs=1,
        learning_rate=1e-3,
        jit_compile="false",
        export=(),
        out_dir=str(tmp_path / "run"),
    )
    trainer.train(config, stream=io.StringIO())
    history = json.loads((tmp_path / "run" / "metrics.json").read_text())
    val_files = sorted((tmp_path / "data" / "val").glob("class_*/*.png"))
    labels = np.asarray([int(p.parent.name[-1]) for p in val_files])
    pixels = tf.stack(
        [tf.io.decode_png(tf.io.read_file(str(p))) for p in val_files]
    )

    def val_loss(serving):
        logits = model(serving.prepare(pixels))
        return float(
            np.mean(
                keras.losses.sparse_categorical_crossentropy(
                    labels, logits, from_logits=True
                )
            )
        )

    served = ImageServing((8, 8), preprocessing="unit", **cfg)
    whole = ImageServing((8, 8), preprocessing="unit")
    got = history["history"][0]["val_loss"]
    np.testing.assert_allclose(got, val_loss(served), rtol=1e-4)
    assert abs(got - val_loss(whole)) > 1e-3


def test_a_short_epoch_under_several_workers_stops_the_run():
    """Carrying on would pair this worker's next steps with the others'
    current ones in their collectives; the worker stops instead."""
    import types

    from kerasblocks.training import loop
    from kerasblocks.training.loop import TrainState

    def fake(workers):
        extended = types.SimpleNamespace(_num_workers=workers)
        return types.SimpleNamespace(
            strategy=types.SimpleNamespace(extended=extended),
            plan=types.SimpleNamespace(steps_per_epoch=4, total_steps=8),
        )

    state = TrainState(epoch=1, step=6, batch=2)
    worker = fake(2)
    worker.workers = loop.Loop.workers.fget(worker)
    with pytest.raises(data_lib.DataError) as info:
        loop.Loop._end_short_epoch(worker, state)
    assert str(info.value) == (
        "epoch 2: this worker's share ended after 2 of 4 batches (an example "
        "could not be decoded); rerun to check the data again and resume."
    )
    assert (state.step, state.batch) == (6, 2)  # nothing moved
    alone = fake(1)
    alone.workers = 1
    with pytest.warns(UserWarning, match="epoch 2 ended after 2 of 4"):
        loop.Loop._end_short_epoch(alone, state)
    assert (state.step, state.batch) == (8, 4)
