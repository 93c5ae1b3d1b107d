"""The trainer's pieces in-process: flags mean what they say, the run
directory's policy, the model rebuilt from model_config.json."""

import json
import os

import numpy as np
import pytest

import zoo  # noqa: F401  (registers the model source)
from kerasblocks.training import models, objectives
from kerasblocks.training.config import TrainConfig
from kerasblocks.training.errors import RunDirectoryError, UserInputError
from kerasblocks.training.loop import TrainState
from kerasblocks.training.rundir import RunDirectory


@pytest.mark.parametrize(
    "optimizer, decay, expected",
    [("adamw", 0.0, 0.0), ("adamw", 0.01, 0.01), ("adam", 0.0, None)],
)
def test_the_optimizer_gets_the_weight_decay_given(optimizer, decay, expected):
    config = TrainConfig(optimizer=optimizer, weight_decay=decay).validate()
    built = objectives.build_optimizer(config, total_steps=10)
    assert built.weight_decay == expected


def test_config_errors_are_the_users():
    with pytest.raises(UserInputError, match="--batch_size must be"):
        TrainConfig(batch_size=0).validate()


def test_run_directory_policy(tmp_path):
    config = TrainConfig(out_dir=str(tmp_path / "run")).validate()
    fresh = RunDirectory(config)
    fresh.check()
    assert not (tmp_path / "run").exists()  # checking writes nothing
    os.makedirs(tmp_path / "run")
    other = TrainConfig(out_dir=config.out_dir, optimizer="sgd").validate()
    (tmp_path / "run" / "flags.json").write_text(other.to_json())
    # no checkpoint yet: nothing to resume, so other flags may start over
    RunDirectory(config).check()
    (tmp_path / "run" / "checkpoints" / "ckpt-000000001").mkdir(parents=True)
    with pytest.raises(
        RunDirectoryError, match=r"settings \(--optimizer sgd -> adam\)"
    ):
        RunDirectory(config).check()
    (tmp_path / "stray").mkdir()
    (tmp_path / "stray" / "notes.txt").write_text("mine")
    stray = TrainConfig(out_dir=str(tmp_path / "stray"), overwrite=True)
    with pytest.raises(RunDirectoryError, match="not a run directory"):
        RunDirectory(stray.validate()).check()


def test_train_state_round_trips_through_state_json():
    state = TrainState(step=7, epoch=1, batch=3, best=0.5, history=[{"a": 1}])
    again = TrainState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert again == state


def test_model_rebuilt_from_model_config(tmp_path):
    import keras

    from kerasblocks.data import dataset as data_lib
    from kerasblocks.training.record import RunRecord

    config = TrainConfig(model="lenet", mixed_precision="bfloat16").validate()
    dataset = data_lib.load_dataset("digits")
    model = models.create_model(config, dataset)
    record = RunRecord(
        config.model,
        keras.saving.serialize_keras_object(model),
        config.mixed_precision,
    )
    (tmp_path / "model_config.json").write_text(record.to_json())
    rebuilt = models.model_from_config(str(tmp_path))
    assert rebuilt.get_config() == model.get_config()
    assert rebuilt.get_layer("conv1").dtype_policy.name == "mixed_bfloat16"
    x = np.zeros((2, 28, 28, 1), "float32")
    assert rebuilt(x).shape == (2, 10)
    with pytest.raises(UserInputError, match="no model_config.json"):
        models.model_from_config(str(tmp_path / "missing"))


def test_auto_jit_measures_only_where_the_answer_is_unknown():
    import keras

    from kerasblocks.training import jit

    auto = TrainConfig(jit_compile="auto").validate()
    conv = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3)], name="conv"
    )
    dense = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(2)], name="dense"
    )
    mode, why = jit.plan_mode(auto, None, conv, 5000, 1)
    assert (mode, why) == (
        "graph",
        "convolutions on CPU: graph is known to win",
    )
    assert jit.plan_mode(auto, None, dense, 5000, 1)[0] == "auto"
    assert jit.plan_mode(auto, None, dense, 10, 1)[0] == "graph"
    assert jit.plan_mode(auto, None, dense, 5000, 2)[0] == "graph"
    # what a run recorded is what it resumes with
    assert jit.plan_mode(auto, {"mode": "xla"}, conv, 10, 1) == (
        "xla",
        "chosen when the run started",
    )
    forced = TrainConfig(jit_compile="false").validate()
    assert jit.plan_mode(forced, None, dense, 5000, 1)[0] == "graph"


def test_auto_jit_says_what_it_measured_and_records_it(tmp_path, monkeypatch):
    import io

    import keras

    from kerasblocks.training import jit, trainer

    def mlp(name, num_classes=10):
        return keras.Sequential(
            [
                keras.Input((8, 8, 1)),
                keras.layers.Flatten(),
                keras.layers.Dense(num_classes),
            ],
            name=name,
        )

    monkeypatch.setattr(jit, "SHORT_RUN", 1)
    monkeypatch.setattr(
        models, "_SOURCE", [models.ModelSource(mlp, lambda name: "image")]
    )
    config = TrainConfig(
        model="mlp",
        batch_size=64,
        steps=4,
        checkpoint_every=2,
        export=(),
        out_dir=str(tmp_path / "run"),
    )

    class Outage(Exception):
        pass

    def outage(step):
        if step == 3:
            raise Outage

    shown = io.StringIO()
    with pytest.raises(Outage):
        trainer.train(config, stream=shown, hooks=trainer.Hooks(outage))
    lines = shown.getvalue().splitlines()
    assert lines[0].startswith("jit_compile=auto: timing graph against XLA")
    assert lines[1].startswith("jit_compile=auto: mode=")
    record = json.loads((tmp_path / "run" / "compile.json").read_text())
    assert record["mode"] in ("graph", "xla") and "auto:" in record["reason"]
    # the resumed run keeps that mode, without measuring again
    shown = io.StringIO()
    result = trainer.train(config, stream=shown)
    assert result.resumed_from == 2 and result.steps == 4
    assert f"jit_compile=auto: {record['mode']} (chosen when the run " in (
        shown.getvalue()
    )
    assert "timing" not in shown.getvalue()
