"""kb-train on the user's own files, as real processes, continued: two
workers killed and resumed, a file cache killed while it is written, and
a directory prepared by tensorflow-datasets."""

import json
import os

import h5py
import numpy as np
import pytest

from tests.tools._cli import run_tool
from tests.tools.test_multi_worker import _free_ports, _launch, _wait
from tests.tools.test_train_sources import (
    TRAIN,
    _figures,
    _same_runs,
    files,  # noqa: F401  (the module's folder and shards)
    write_folder,
)

# Two workers of 8 examples a step: 6 steps an epoch over the 96 training
# records, a checkpoint every 4 (from test_multi_worker's flags). No batch
# norm: its moving statistics are each worker's own.
WORKERS = [
    *TRAIN[:4],
    "--steps=9",
    "--jit_compile=false",
    "--deterministic",
]


def _two_workers(root, shards, tag):
    """Launches both workers on the shards; their exit codes."""
    args = [*WORKERS, f"--dataset=tfrecord:{shards / 'data-*'}"]
    return _wait(_launch(root, _free_ports(2), args, tag), timeout=300)


def _final_weights(root, tag):
    """Each worker's final weights, by variable path."""
    weights = []
    for index in (0, 1):
        with h5py.File(root / f"final-{tag}" / f"worker-{index}.weights") as f:
            weights.append(
                {name: f["variables"][name][()] for name in f["variables"]}
            )
    return weights


def _assert_same_weights(a, b):
    assert list(a) == list(b) and len(a) > 0
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@pytest.fixture(scope="module")
def two_workers(files):  # noqa: F811
    """An uninterrupted two-worker run on the TFRecord shards."""
    root = files / "two-workers"
    root.mkdir()
    codes = _two_workers(root, files / "shards", "whole")
    assert codes == [0, 0], (root / "whole-worker0.log").read_text()[-3000:]
    return root


def test_two_workers_on_tfrecord_shards_end_identical(two_workers):
    chief, other = _final_weights(two_workers, "whole")
    _assert_same_weights(chief, other)
    completed = json.loads((two_workers / "run" / "COMPLETED").read_text())
    assert completed["steps"] == 9


def test_both_workers_killed_mid_epoch_resume_exactly(
    files,  # noqa: F811
    two_workers,
    tmp_path,
    monkeypatch,
):
    # Both die after step 5, one past the checkpoint at step 4, in the
    # middle of the first epoch; the rerun crosses into the second.
    monkeypatch.setenv("KB_FAULT_KILL_AT_STEP", "5")
    codes = _two_workers(tmp_path, files / "shards", "killed")
    assert codes == [-9, -9], (tmp_path / "killed-worker0.log").read_text()
    monkeypatch.delenv("KB_FAULT_KILL_AT_STEP")
    codes = _two_workers(tmp_path, files / "shards", "resumed")
    logs = [(tmp_path / f"resumed-worker{i}.log").read_text() for i in (0, 1)]
    assert codes == [0, 0], logs[0][-3000:]
    for log in logs:
        assert "resuming from ckpt-000000004 (step 4)" in log
    whole, _ = _final_weights(two_workers, "whole")
    for resumed in _final_weights(tmp_path, "resumed"):
        _assert_same_weights(whole, resumed)
    assert _figures(tmp_path / "run") == _figures(two_workers / "run")


def test_a_file_cache_killed_while_written_resumes_exactly(tmp_path):
    # 3360 training images: an epoch permutes blocks of 1024 of them and
    # reads up to a block ahead, so the cache is still being written
    # when the run is killed after step 6.
    folder = write_folder(tmp_path / "images", per_class=1400)
    args = [
        *TRAIN,
        "--batch_size=64",
        "--steps=52",  # an epoch: the cache gets finished
        f"--dataset=folder:{folder}",
    ]

    def train(name, env=None):
        cache = f"--cache={tmp_path / name / 'cache' / 'c'}"
        out = f"--out_dir={tmp_path / name / 'run'}"
        return run_tool("train", *args, cache, out, env=env)

    def cache_files(name):
        return sorted(os.listdir(tmp_path / name / "cache"))

    finished = [
        "c-train.data-00000-of-00001",
        "c-train.index",
        "c-val.data-00000-of-00001",
        "c-val.index",
    ]
    whole = train("whole")
    assert whole.returncode == 0, whole.stderr[-3000:]
    assert cache_files("whole") == finished
    history = json.loads(
        (tmp_path / "whole" / "run" / "metrics.json").read_text()
    )
    assert history["history"][-1]["val_accuracy"] >= 0.9, history
    killed = train("killed", env={"KB_FAULT_KILL_AT_STEP": "6"})
    assert killed.returncode == -9
    left = cache_files("killed")
    assert "c-train_0.lockfile" in left and "c-train.index" not in left
    resumed = train("killed")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from ckpt-000000004 (step 4)" in resumed.stdout
    assert cache_files("killed") == finished
    _same_runs(tmp_path / "whole" / "run", tmp_path / "killed" / "run")


def test_a_tfds_directory_trains_evaluates_and_exports(tmp_path):
    from tests.kerasblocks.test_data_tfds import KbTinyColours

    KbTinyColours(data_dir=str(tmp_path / "tfds")).download_and_prepare(
        download_dir=str(tmp_path / "downloads")
    )
    # 15 training images, 6 to validate (the builder's "test" split).
    args = [*TRAIN, "--batch_size=5", "--steps=12"]
    args.append("--dataset=tfds:kb_tiny_colours")
    run = tmp_path / "run"
    done = run_tool(
        "train", *args, f"--data_dir={tmp_path / 'tfds'}", f"--out_dir={run}"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    history = json.loads((run / "metrics.json").read_text())["history"]
    assert history[-1]["val_accuracy"] == 1.0, history
    evaluated = run_tool(
        "evaluate",
        f"--model_path={run / 'export' / 'model.keras'}",
        "--dataset=tfds:kb_tiny_colours",
        f"--data_dir={tmp_path / 'tfds'}",
        f"--out_dir={tmp_path / 'evaluation'}",
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert "tfds:kb_tiny_colours val (6 examples)" in evaluated.stdout
    result = json.loads(
        (tmp_path / "evaluation" / "evaluation.json").read_text()
    )
    assert result["accuracy"] == 1.0
    assert np.trace(result["confusion_matrix"]) == 6
    missing = tmp_path / "none"
    refused = run_tool(
        "train", *args, f"--data_dir={missing}", f"--out_dir={tmp_path / 'x'}"
    )
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert refused.stderr.strip().splitlines() == [
        f"kb-train: error: tfds:kb_tiny_colours: no such directory {missing}"
    ]
    assert not (tmp_path / "x").exists()
