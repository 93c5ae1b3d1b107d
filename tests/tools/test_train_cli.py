"""kb-train's command line as a user meets it: bad flags and bugs end
in one line or keep their traceback, and --help, flag checks and
--flagfile work before TensorFlow is imported."""

import pytest

from tests.tools._cli import SMALL, run_python, run_tool


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model=resnet9000"], "Unknown model 'resnet9000'"),
        (["--dataset=imagenet"], "Unknown data set 'imagenet'"),
        (["--batch_size=0"], "--batch_size=0: 0 is not a positive integer"),
        (['--model_overrides={"input_shape": [4, 4, 1]}'], "is too small"),
        (["--model_overrides=[1"], "--model_overrides is not JSON"),
        (
            ['--model_overrides={"filters": 3}'],
            "lenet: LeNet got an unexpected keyword argument 'filters'",
        ),
        (
            ["--dataset=mnist", "--data_dir=/nonexistent"],
            "not found in /nonexistent",
        ),
        (
            ["--batch_size=5000"],
            "--batch_size=5000 is larger than the training split of digits "
            "(1438 examples); use --batch_size=1438 or less",
        ),
        (["--data_dir=/tmp"], "--data_dir does not apply to --dataset=digits"),
        (
            ["--dataset=sine_wave", "--augment"],
            "--augment applies to image data sets; sine_wave holds none",
        ),
    ],
)
def test_bad_flags_end_in_one_line(tmp_path, args, message):
    done = run_tool("train", *args, f"--out_dir={tmp_path / 'x'}")
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("kb-train: error:") and message in last
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "x").exists()  # nothing half-made


# A bug (ours or Keras's) inside a run: the hook raises it from the first
# step, as the code would.
_BUG = """
import sys
import tensorflow as tf
from kerasblocks.training import loop
from tools import train
errors = {{
    "value": ValueError("a bug, not the user's"),
    "internal": tf.errors.InternalError(None, None, "collective aborted"),
}}
def explode(self, *args):
    raise errors[{kind!r}]
loop.Loop._train_epoch = explode
sys.argv = ["kb-train", *{args!r}]
train.run()
"""


@pytest.mark.parametrize("kind", ["value", "internal"])
def test_a_bug_keeps_its_traceback_and_leaves_no_run(tmp_path, kind):
    args = [*SMALL, "--steps=2", f"--out_dir={tmp_path / 'x'}"]
    done = run_python("-c", _BUG.format(kind=kind, args=args), timeout=300)
    # Not a usage error (2) and not a lost peer (4): a traceback and 1.
    assert done.returncode == 1, done.stderr[-2000:]
    assert "Traceback" in done.stderr
    assert "kb-train: error" not in done.stderr
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "tool, own",
    [
        ("train", ["--model_overrides", "--[no]deterministic", "--strategy"]),
        ("evaluate", ["--run_dir", "--checkpoint", "--split"]),
        ("export", ["--run_dir", "--formats", "--quantize", "--calibration"]),
        ("inspect", ["--[no]list", "--model_overrides"]),
        ("benchmark", ["--batch_sizes", "--modes"]),
    ],
)
def test_help_lists_the_programs_own_flags_and_nothing_of_tensorflow(
    tool, own, no_tensorflow
):
    done = run_tool(tool, "--help", env=no_tensorflow)
    assert done.returncode == 0, done.stderr[-2000:]
    for flag in own:
        assert flag in done.stdout, (flag, done.stdout[-2000:])
    assert "tensorflow" not in done.stdout.lower()
    assert "Traceback" not in done.stderr
    if tool == "train":
        assert "(default: 'lenet')" in done.stdout
        assert "sequence_reversal" in done.stdout  # data set names


@pytest.mark.parametrize(
    "args, message",
    [
        (["--optimizer=adm"], "flag --optimizer=adm: value should be one of"),
        (["--epochs=0"], "flag --epochs=0: 0 is not a positive integer"),
        (["--nosuchflag"], "Unknown command line flag 'nosuchflag'"),
        (["--learning_rate=-1"], "--learning_rate must be positive"),
        # TrainConfig.validate's checks, run before TensorFlow too.
        (["--label_smoothing=1"], "--label_smoothing must be in [0, 1)"),
        (["--formats=h6"], "--formats takes saved_model, keras, h5,"),
        (
            ["--min_agreement=2"],
            "--min_agreement=2: 2.0 is not a number in the range [0.0, 1.0]",
        ),
        (["--unfreeze_at_epoch=3"], "--unfreeze_at_epoch needs a frozen"),
        (["--model_overrides=[3]"], "must be a JSON object. Received: [3]"),
    ],
)
def test_a_bad_flag_value_is_refused_before_tensorflow_loads(
    args, message, no_tensorflow
):
    done = run_tool("train", *args, env=no_tensorflow)
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("kb-train: error:") and message in last
    assert len(done.stderr.strip().splitlines()) == 1


def test_flagfile_is_read(tmp_path):
    flagfile = tmp_path / "flags.txt"
    flagfile.write_text("--model=lenet\n--batch_size=0\n")
    done = run_tool("train", f"--flagfile={flagfile}", f"--out_dir={tmp_path}")
    assert done.returncode == 2
    assert "--batch_size=0: 0 is not a positive integer" in done.stderr
