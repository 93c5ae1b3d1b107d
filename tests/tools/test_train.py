"""kb-train, kb-evaluate, kb-export as a user runs them: real processes."""

import json
import os

import numpy as np
import pytest

from tests.tools._cli import SMALL, run_tool


def _weights(path):
    import kerasblocks as kb

    return [v.numpy() for v in kb.io.load_model(path, compile=False).weights]


@pytest.fixture(scope="module")
def attempts(tmp_path_factory):
    """A user's way to a finished run in one directory: a typo, then a
    start killed before its first checkpoint, then the run."""
    out = tmp_path_factory.mktemp("runs") / "lenet"
    typo = run_tool("train", *SMALL, "--batch_size=5000", f"--out_dir={out}")
    typo_left = out.exists()
    killed = run_tool(
        "train",
        "--batch_size=32",
        "--steps=5",
        f"--out_dir={out}",
        env={"KB_FAULT_KILL_AT_STEP": "1"},
    )
    killed_left = sorted(os.listdir(out))
    killed_checkpoints = (
        os.listdir(out / "checkpoints") if "checkpoints" in killed_left else []
    )
    done = run_tool(
        "train",
        *SMALL,
        "--epochs=2",
        "--checkpoint_every=10",
        "--export=saved_model,keras,h5,tflite",
        f"--out_dir={out}",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return {
        "out": out,
        "typo": (typo, typo_left),
        "killed": (killed, killed_left, killed_checkpoints),
        "done": done,
    }


@pytest.fixture(scope="module")
def finished_run(attempts):
    return attempts["out"], attempts["done"]


def test_a_failed_start_leaves_nothing_and_a_fixed_rerun_works(attempts):
    typo, typo_left = attempts["typo"]
    assert typo.returncode == 2 and "Traceback" not in typo.stderr
    assert not typo_left
    killed, killed_left, killed_checkpoints = attempts["killed"]
    assert killed.returncode == -9
    # killed before its first checkpoint: settings, but nothing to resume
    assert "flags.json" in killed_left and killed_checkpoints == []
    # ... and the next run, with other flags, simply starts afresh
    flags = json.loads((attempts["out"] / "flags.json").read_text())
    assert flags["batch_size"] == 64 and flags["steps"] is None


def test_run_directory_holds_everything(finished_run):
    out, done = finished_run
    names = set(os.listdir(out))
    assert {
        "flags.json",
        "model_config.json",
        "checkpoints",
        "tensorboard",
        "metrics.json",
        "curves.png",
        "export",
        "COMPLETED",
    } <= names
    flags = json.loads((out / "flags.json").read_text())
    assert flags["model"] == "lenet" and flags["batch_size"] == 64
    metrics = json.loads((out / "metrics.json").read_text())
    assert [h["epoch"] for h in metrics["history"]] == [1, 2]
    assert set(metrics["history"][0]) >= {
        "train_loss",
        "train_accuracy",
        "val_loss",
        "val_accuracy",
        "examples_per_s",
    }
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any(
        n.startswith("events.out") for n in os.listdir(out / "tensorboard")
    )
    assert sorted(os.listdir(out / "export")) == [
        "deploy_report.json",
        "model.h5",
        "model.keras",
        "model.tflite",
        "saved_model",
    ]
    checkpoints = sorted(os.listdir(out / "checkpoints"))
    assert checkpoints[-1] == "ckpt-000000044" and "BEST" in checkpoints
    assert "epoch 2/2" in done.stdout and "ex/s" in done.stdout
    # auto does not measure a 44-step convolutional run, and says so
    assert "jit_compile=auto: graph (a short run" in done.stdout
    chosen = json.loads((out / "compile.json").read_text())
    assert chosen["mode"] == "graph"
    # the output is the progress and the results: no INFO chatter
    assert not [
        line for line in done.stderr.splitlines() if line.startswith("I")
    ], done.stderr[-2000:]
    assert "done: 44 steps; val_loss" in done.stdout


def test_exports_agree(finished_run):
    import kerasblocks as kb

    out, _ = finished_run
    x = np.random.default_rng(0).uniform(size=(3, 28, 28, 1)).astype("float32")
    keras_model = kb.io.load_model(out / "export" / "model.keras")
    expected = keras_model(x).numpy()
    # TF Serving's layout: the run's first export is version 1.
    assert os.listdir(out / "export" / "saved_model") == ["1"]
    for name in ("model.h5", os.path.join("saved_model", "1")):
        restored = kb.io.load_model(out / "export" / name)
        np.testing.assert_allclose(restored(x), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        kb.io.run_tflite(out / "export" / "model.tflite", x),
        expected,
        atol=1e-5,
    )


def test_rerunning_a_completed_run_does_not_train(finished_run):
    out, _ = finished_run
    before = sorted(os.listdir(out / "checkpoints"))
    again = run_tool("train", *SMALL, "--epochs=2", f"--out_dir={out}")
    assert again.returncode == 0
    assert "already completed" in again.stdout
    assert sorted(os.listdir(out / "checkpoints")) == before


def test_evaluate_and_export_tools(finished_run, tmp_path):
    out, _ = finished_run
    evaluated = run_tool("evaluate", f"--run_dir={out}")
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert "digits val (359 examples): loss" in evaluated.stdout
    assert "true\\pred" in evaluated.stdout
    report = json.loads((out / "evaluation" / "evaluation.json").read_text())
    matrix = np.array(report["confusion_matrix"])
    assert matrix.shape == (10, 10) and matrix.sum() == 359
    assert np.trace(matrix) / 359 == pytest.approx(report["accuracy"], abs=1e-6)
    assert (out / "evaluation" / "confusion.png").read_bytes()[:4] == b"\x89PNG"
    exported = run_tool(
        "export",
        f"--run_dir={out}",
        "--checkpoint=best",
        "--formats=h5",
        f"--out_dir={tmp_path}",
    )
    assert exported.returncode == 0, exported.stderr[-2000:]
    assert os.path.exists(tmp_path / "export" / "model.h5")
    from_model = run_tool(
        "evaluate",
        f"--model_path={tmp_path / 'export' / 'model.h5'}",
        "--dataset=digits",
    )
    assert from_model.returncode == 0, from_model.stderr[-2000:]


def test_kill_and_resume_ends_with_the_same_weights(tmp_path):
    common = [
        *SMALL,
        "--steps=30",
        "--checkpoint_every=8",
        "--deterministic",
        "--export=keras",
    ]
    whole = run_tool("train", *common, f"--out_dir={tmp_path / 'whole'}")
    assert whole.returncode == 0, whole.stderr[-3000:]
    killed = run_tool(
        "train",
        *common,
        f"--out_dir={tmp_path / 'killed'}",
        env={"KB_FAULT_KILL_AT_STEP": "13"},
    )
    assert killed.returncode == -9
    assert sorted(os.listdir(tmp_path / "killed" / "checkpoints"))[-1] == (
        "ckpt-000000008"
    )
    # the killed run's lock file is left, naming it; the kernel released
    # the lock itself, so the rerun takes it over
    assert (tmp_path / "killed" / ".lock").read_text().strip().isdigit()
    resumed = run_tool("train", *common, f"--out_dir={tmp_path / 'killed'}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from ckpt-000000008 (step 8)" in resumed.stdout
    for a, b in zip(
        _weights(tmp_path / "whole" / "export" / "model.keras"),
        _weights(tmp_path / "killed" / "export" / "model.keras"),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)

    def figures(run):
        metrics = json.loads((tmp_path / run / "metrics.json").read_text())
        return [
            {k: v for k, v in h.items() if k != "examples_per_s"}
            for h in metrics["history"]
        ]

    assert figures("killed") == figures("whole")


def test_damaged_checkpoints(tmp_path):
    out = tmp_path / "run"
    common = [
        *SMALL,
        "--steps=20",
        "--checkpoint_every=5",
        "--export=keras",
        f"--out_dir={out}",
    ]
    killed = run_tool("train", *common, env={"KB_FAULT_KILL_AT_STEP": "17"})
    assert killed.returncode == -9
    checkpoints = out / "checkpoints"
    newest = checkpoints / "ckpt-000000015"
    data = next(p for p in newest.iterdir() if p.name.startswith("ckpt.data"))
    blob = bytearray(data.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    data.write_bytes(bytes(blob))
    resumed = run_tool("train", *common, env={"KB_FAULT_KILL_AT_STEP": "12"})
    assert resumed.returncode == -9
    assert "Checkpoint ckpt-000000015 is damaged" in resumed.stderr
    assert "resuming from ckpt-000000010 instead" in resumed.stderr
    for checkpoint in checkpoints.glob("ckpt-*"):
        (checkpoint / "state.json").write_text("{broken")
    failed = run_tool("train", *common)
    assert failed.returncode == 2
    last = failed.stderr.strip().splitlines()[-1]
    assert last.startswith("kb-train: error: No usable checkpoint in")
    assert "Traceback" not in failed.stderr


def test_non_finite_loss_stops_and_keeps_good_checkpoints(tmp_path):
    out = tmp_path / "nan"
    common = [
        *SMALL,
        "--steps=30",
        "--checkpoint_every=5",
        "--export=keras",
        "--optimizer=sgd",
        f"--out_dir={out}",
    ]
    first = run_tool(
        "train",
        *common,
        "--learning_rate=0.01",
        env={"KB_FAULT_KILL_AT_STEP": "12"},
    )
    assert first.returncode == -9
    exploded = run_tool(
        "train", *common, "--learning_rate=1e38", "--allow_flag_changes"
    )
    assert exploded.returncode == 3, exploded.stderr[-2000:]
    last = exploded.stderr.strip().splitlines()[-1]
    assert last.startswith("kb-train: error: non-finite loss at epoch 1 step")
    import tensorflow as tf

    names = sorted(p.name for p in (out / "checkpoints").glob("ckpt-*"))
    assert names == ["ckpt-000000005", "ckpt-000000010"]
    for name in names:
        reader = tf.train.load_checkpoint(
            str(out / "checkpoints" / name / "ckpt")
        )
        for key in reader.get_variable_to_shape_map():
            value = np.asarray(reader.get_tensor(key))
            if value.dtype.kind == "f":
                assert np.all(np.isfinite(value)), (name, key)
    calm = run_tool(
        "train", *common, "--learning_rate=0.01", "--allow_flag_changes"
    )
    assert calm.returncode == 0, calm.stderr[-2000:]
    assert "resuming from ckpt-000000010 (step 10)" in calm.stdout
    assert (out / "COMPLETED").exists()
    # flags.json says which rate trained which steps: 0.01 up to step 10
    # and from it on (the diverged attempt left no checkpoint)
    flags = json.loads((out / "flags.json").read_text())
    assert flags["learning_rate"] == 0.01
    assert flags["flag_history"] == [
        {"step": 10, "flag": "learning_rate", "old": 0.01, "new": 1e38},
        {"step": 10, "flag": "learning_rate", "old": 1e38, "new": 0.01},
    ]


def test_different_settings_in_an_existing_run_directory(finished_run):
    out, _ = finished_run
    done = run_tool("train", "--model=lenet_bn", f"--out_dir={out}")
    # a completed run is reported as completed whatever the flags
    assert done.returncode == 0
    partial = out.parent / "partial"
    partial.mkdir()
    (partial / "flags.json").write_text((out / "flags.json").read_text())
    (partial / "checkpoints" / "ckpt-000000010").mkdir(parents=True)
    clash = run_tool("train", *SMALL, "--optimizer=sgd", f"--out_dir={partial}")
    assert clash.returncode == 2
    last = clash.stderr.strip().splitlines()[-1]
    assert (
        "holds a run with different settings (--optimizer adam -> sgd) that "
        "its checkpoints cannot resume with" in last
    )
    assert "Traceback" not in clash.stderr
    assert sorted(os.listdir(partial)) == ["checkpoints", "flags.json"]


def test_mirrored_strategy_and_xla(tmp_path):
    done = run_tool(
        "train",
        *SMALL,
        "--steps=6",
        "--strategy=mirrored",
        "--jit_compile=true",
        "--export=keras",
        f"--out_dir={tmp_path / 'm'}",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((tmp_path / "m" / "COMPLETED").read_text())["steps"] == 6


def test_mixed_precision_float16_trains_and_exports(tmp_path):
    import keras

    import kerasblocks as kb

    done = run_tool(
        "train",
        *SMALL,
        "--steps=6",
        "--mixed_precision=float16",
        "--export=keras",
        f"--out_dir={tmp_path / 'mp'}",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    model = kb.io.load_model(tmp_path / "mp" / "export" / "model.keras")
    conv = model.get_layer("conv1")
    assert conv.dtype_policy.name == "mixed_float16"
    assert conv.kernel.dtype == "float32"
    assert keras.config.dtype_policy().name == "float32"


def test_bfloat16_reaches_the_float32_accuracy(tmp_path):
    accuracy = {}
    for precision in ("none", "bfloat16"):
        out = tmp_path / precision
        done = run_tool(
            "train",
            "--epochs=8",
            "--export=keras",
            f"--mixed_precision={precision}",
            f"--out_dir={out}",
        )
        assert done.returncode == 0, done.stderr[-2000:]
        record = json.loads((out / "model_config.json").read_text())
        assert record["mixed_precision"] == precision
        metrics = json.loads((out / "metrics.json").read_text())
        accuracy[precision] = metrics["history"][-1]["val_accuracy"]
    assert accuracy["none"] > 0.9
    assert abs(accuracy["bfloat16"] - accuracy["none"]) <= 0.01, accuracy
