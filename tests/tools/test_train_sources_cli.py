"""The data-set flag of the tools before TensorFlow loads: source forms
checked, and --help listing the data sets and source forms."""

import pytest

from tests.tools._cli import run_tool


@pytest.mark.parametrize(
    "tool, args, message",
    [
        ("train", ["--dataset=folders:x"], "unknown source 'folders'"),
        (
            "train",
            ["--dataset=folder:"],
            "nothing after 'folder'; use folder:DIR",
        ),
        (
            "train",
            ["--dataset=tfrecord:,"],
            "use tfrecord:TRAIN_GLOB[,VAL_GLOB]",
        ),
        ("train", ["--dataset=digit"], "Did you mean: digits?"),
        (
            "train",
            ["--cache=memory"],
            "--cache applies to the folder:, tfrecord:",
        ),
        (
            "train",
            ["--image_size=32", "--dataset=mnist"],
            "--image_size applies to the folder:",
        ),
        (
            "train",
            ["--strict_data"],
            "--strict_data applies to the folder:, tfrecord: and tfds: sources,"
            " not --dataset=digits",
        ),
        (
            "train",
            ["--dataset=folder:x", "--image_size=0"],
            "--image_size must",
        ),
        (
            "train",
            ["--dataset=folder:x", "--image_size=a,b"],
            "--image_size must",
        ),
        (
            "train",
            ["--dataset=folder:x", "--data_dir=/tmp"],
            "--data_dir does not apply to --dataset=folder:...",
        ),
        (
            "evaluate",
            ["--model_path=m.keras", "--dataset=tfds:"],
            "nothing after 'tfds'; use tfds:NAME",
        ),
    ],
)
def test_source_forms_are_checked_before_tensorflow_loads(
    tool, args, message, no_tensorflow, tmp_path
):
    done = run_tool(
        tool, *args, f"--out_dir={tmp_path / 'x'}", env=no_tensorflow
    )
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"kb-{tool}: error:")
    assert message in lines[0], lines[0]
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "tool, flag",
    [("train", "--help"), ("evaluate", "--help"), ("export", "--helpfull")],
)
def test_help_lists_data_sets_and_source_forms(tool, flag, no_tensorflow):
    done = run_tool(tool, flag, env=no_tensorflow)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    text = " ".join(done.stdout.split())
    for form in ("folder:DIR", "tfrecord:TRAIN_GLOB[,VAL_GLOB]", "tfds:NAME"):
        assert form in text
    assert "cifar10" in text and "sequence_reversal" in text
