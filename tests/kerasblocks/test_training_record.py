"""The run record (`model_config.json`) as one typed value, and run
directories of the previous release read, resumed and exported.

`tests/fixtures/run_v0_1/` is a run directory written by release 0.1
(main at 1619165) with

    kb-train --model=lenet --dataset=digits --batch_size=64 --steps=1 \
        --optimizer=sgd --learning_rate=0.05 --keep_checkpoints=1 \
        --export=keras

of which the flags, the record, `compile.json` and the checkpoint are
kept (not COMPLETED, so that it resumes).
"""

import io
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

import zoo  # noqa: F401  (registers the model source and the zoo's classes)
from kerasblocks.training import inference, runs, trainer
from kerasblocks.training.config import TrainConfig
from kerasblocks.training.errors import UserInputError
from kerasblocks.training.record import RunRecord

OLD_RUN = os.path.join(
    os.path.dirname(os.path.dirname(__file__)), "fixtures", "run_v0_1"
)
NET = {"class_name": "Sequential", "config": {"name": "net"}}


def test_a_record_round_trips_through_its_json():
    record = RunRecord(
        "mobilenetv2",
        NET,
        "bfloat16",
        (24, 32),
        "imagenet",
        ("cat", "dog"),
        "raw",
        {"crop_fraction": 0.875, "interpolation": "bicubic"},
    )
    text = record.to_json()
    assert RunRecord.from_json(text) == record
    values = json.loads(text)
    assert values["image_size"] == [24, 32]
    assert values["class_names"] == ["cat", "dog"]
    assert record.eval_view == {
        "crop_fraction": 0.875,
        "interpolation": "bicubic",
    }


def test_the_keys_are_those_the_previous_release_wrote():
    with open(os.path.join(OLD_RUN, "model_config.json")) as f:
        written = json.load(f)
    record = RunRecord.read(OLD_RUN)
    assert record.to_dict() == written
    assert (record.model, record.pixels, record.mixed_precision) == (
        "lenet",
        "unit",
        "none",
    )


@pytest.mark.parametrize(
    "values",
    [
        {"model": "lenet", "config": NET},  # the first release's keys
        {"model": "lenet", "mixed_precision": "none", "config": NET},
        {"model": "lenet", "config": NET, "pixels": None, "stray": 1},
    ],
)
def test_an_older_record_reads_with_its_defaults(values):
    record = RunRecord.from_dict(values)
    assert record == RunRecord("lenet", NET)
    assert (record.pixels, record.init_from, record.class_names) == (
        "unit",
        None,
        None,
    )
    assert record.eval_view == {
        "crop_fraction": 1.0,
        "interpolation": "bilinear",
    }


def test_an_unreadable_record_is_one_clear_error(tmp_path):
    with pytest.raises(UserInputError, match="no model_config.json"):
        RunRecord.read(str(tmp_path))
    (tmp_path / "model_config.json").write_text('{"model": "lenet"}')
    with pytest.raises(UserInputError, match="is unreadable"):
        RunRecord.read(str(tmp_path))
    (tmp_path / "model_config.json").write_text('{"config": {}}')
    with pytest.raises(UserInputError, match="is unreadable"):
        RunRecord.read(str(tmp_path))


def test_a_run_of_the_previous_release_opens_with_its_checkpoint():
    run = runs.open_run(OLD_RUN, "best")
    assert run.config.model == "lenet" and run.record.model == "lenet"
    assert os.path.basename(run.checkpoint) == "ckpt-000000001"
    saved = tf.train.load_checkpoint(os.path.join(run.checkpoint, "ckpt"))
    weights = run.model.trainable_weights
    assert len(weights) == len(run.model.weights) == 10
    for i, weight in enumerate(weights):
        key = f"optimizer/_trainable_variables/{i}/.ATTRIBUTES/VARIABLE_VALUE"
        np.testing.assert_array_equal(weight.numpy(), saved.get_tensor(key))


def test_a_run_of_the_previous_release_resumes_and_exports(tmp_path):
    out = tmp_path / "run"
    shutil.copytree(OLD_RUN, out)
    with open(out / "flags.json") as f:
        flags = json.load(f)
    config = TrainConfig.from_dict({**flags, "out_dir": str(out), "steps": 2})
    result = trainer.train(config, stream=io.StringIO())
    assert (result.resumed_from, result.steps) == (1, 2)
    assert os.path.isfile(out / "export" / "model.keras")
    assert RunRecord.read(str(out)) == RunRecord.read(OLD_RUN)
    predictor = inference.open_model(str(out))
    assert (predictor.pixels, predictor.class_names) == ("unit", None)
