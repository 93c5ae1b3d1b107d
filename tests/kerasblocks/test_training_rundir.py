"""The run directory in-process: one checkpoint per step, the lock,
changed settings on resume, a signal's safe stop."""

import json
import os
import signal

import pytest

import zoo  # noqa: F401  (registers the model source)
from kerasblocks.training import trainer
from kerasblocks.training.checkpoints import CheckpointManager
from kerasblocks.training.config import TrainConfig
from kerasblocks.training.errors import RunDirectoryError
from kerasblocks.training.interrupts import Interrupted, InterruptFlag
from kerasblocks.training.lock import RunLock, RunLockedError

# 1,437 training digits in batches of 64: 22 steps an epoch.
SMALL = dict(
    model="lenet",
    batch_size=64,
    steps=30,
    checkpoint_every=11,
    keep_checkpoints=10,
    jit_compile="false",
    deterministic=True,
    export=(),
)


class Outage(Exception):
    pass


def _outage_at(at):
    def after_step(step):
        if step == at:
            raise Outage

    return trainer.Hooks(after_step=after_step)


@pytest.fixture
def saves(monkeypatch):
    """The steps checkpointed, in order, however often."""
    steps = []
    save = CheckpointManager.save

    def counted(self, step, *args, **kwargs):
        steps.append(step)
        return save(self, step, *args, **kwargs)

    monkeypatch.setattr(CheckpointManager, "save", counted)
    return steps


def _listing(run):
    return sorted(
        n for n in os.listdir(run / "checkpoints") if n.startswith("ckpt-")
    )


def test_a_step_is_checkpointed_once(tmp_path, saves):
    config = TrainConfig(**SMALL, out_dir=str(tmp_path / "run"))
    # Killed after step 12: checkpoint 11 is the last.
    with pytest.raises(Outage):
        trainer.train(
            config, hooks=_outage_at(12), stream=open(os.devnull, "w")
        )
    assert saves == [11]
    result = trainer.train(config, stream=open(os.devnull, "w"))
    assert result.resumed_from == 11
    # Step 22 ends epoch 1 and is a multiple of 11; step 30 ends the run;
    # step 11 is not written again by the resume.
    assert saves == [11, 22, 30]
    assert _listing(tmp_path / "run") == [
        "ckpt-000000011",
        "ckpt-000000022",
        "ckpt-000000030",
    ]
    state = json.loads(
        (
            tmp_path / "run" / "checkpoints" / "ckpt-000000022" / "state.json"
        ).read_text()
    )
    # the one checkpoint of step 22 is the end of epoch 1, with its figures
    assert (state["epoch"], state["batch"], len(state["history"])) == (1, 0, 1)


def test_changed_settings_on_resume_are_refused_or_recorded(tmp_path):
    run = tmp_path / "run"
    config = TrainConfig(**SMALL, out_dir=str(run))
    quiet = open(os.devnull, "w")
    with pytest.raises(Outage):
        trainer.train(config, hooks=_outage_at(12), stream=quiet)
    recorded = (run / "flags.json").read_text()
    assert json.loads(recorded)["flag_history"] == []
    changed = TrainConfig(
        **{**SMALL, "steps": 33}, learning_rate=1e-3, out_dir=str(run)
    )
    with pytest.raises(RunDirectoryError) as refused:
        trainer.train(changed, stream=quiet)
    assert str(refused.value).startswith(
        f"--out_dir={run} holds a run with different settings "
        "(--learning_rate 0.003 -> 0.001); rerun with the recorded flags "
        "to resume, add --allow_flag_changes"
    )
    assert (run / "flags.json").read_text() == recorded
    assert _listing(run) == ["ckpt-000000011"]
    # A change of what a checkpoint holds is refused even when allowed.
    other_model = TrainConfig(
        **{**SMALL, "model": "lenet_bn"}, out_dir=str(run)
    )
    with pytest.raises(RunDirectoryError, match="cannot resume with"):
        trainer.train(other_model, stream=quiet, allow_flag_changes=True)
    result = trainer.train(changed, stream=quiet, allow_flag_changes=True)
    assert result.resumed_from == 11 and result.steps == 33
    flags = json.loads((run / "flags.json").read_text())
    assert flags["learning_rate"] == 1e-3 and flags["steps"] == 33
    assert flags["flag_history"] == [
        {"step": 11, "flag": "learning_rate", "old": 0.003, "new": 0.001},
        {"step": 11, "flag": "steps", "old": 30, "new": 33},
    ]


def test_a_run_length_change_under_a_constant_schedule_needs_no_flag(
    tmp_path,
):
    run = tmp_path / "run"
    quiet = open(os.devnull, "w")
    with pytest.raises(Outage):
        trainer.train(
            TrainConfig(**SMALL, out_dir=str(run)),
            hooks=_outage_at(12),
            stream=quiet,
        )
    longer = TrainConfig(**{**SMALL, "steps": 33}, out_dir=str(run))
    assert trainer.train(longer, stream=quiet).steps == 33
    flags = json.loads((run / "flags.json").read_text())
    assert flags["flag_history"] == [
        {"step": 11, "flag": "steps", "old": 30, "new": 33}
    ]
    # ... but under a schedule over the run, its horizon is what is trained
    cosine = {**SMALL, "schedule": "cosine"}
    with pytest.raises(Outage):
        trainer.train(
            TrainConfig(**cosine, out_dir=str(tmp_path / "cosine")),
            hooks=_outage_at(12),
            stream=quiet,
        )
    with pytest.raises(RunDirectoryError, match=r"\(--steps 30 -> 33\)"):
        trainer.train(
            TrainConfig(
                **{**cosine, "steps": 33}, out_dir=str(tmp_path / "cosine")
            ),
            stream=quiet,
        )


def test_a_locked_run_directory_is_refused_untouched(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "flags.json").write_text(TrainConfig(out_dir=str(run)).to_json())
    before = sorted(os.listdir(run))
    with RunLock(str(run)):
        holder = (run / ".lock").read_text().strip()
        assert holder == str(os.getpid())
        with pytest.raises(RunLockedError) as refused:
            trainer.train(TrainConfig(**SMALL, out_dir=str(run)))
        assert str(refused.value) == (
            f"--out_dir={run} is in use by another run (pid {holder}); wait "
            "for it to finish, pass --wait_for_lock to wait, or give another "
            "--out_dir."
        )
        assert sorted(os.listdir(run)) == [".lock", *before]
    # released: the lock file goes with it
    assert sorted(os.listdir(run)) == before


def test_a_lock_in_a_fresh_directory_leaves_nothing_on_release(tmp_path):
    with RunLock(str(tmp_path / "new")):
        assert os.listdir(tmp_path / "new") == [".lock"]
    assert not (tmp_path / "new").exists()


def test_a_stale_lock_file_does_not_block(tmp_path):
    # what a killed holder leaves: the file, with a dead pid, and no lock
    (tmp_path / ".lock").write_text("999999999\n")
    with RunLock(str(tmp_path)):
        assert (tmp_path / ".lock").read_text() == f"{os.getpid()}\n"


def test_a_signal_stops_after_the_step_with_a_checkpoint(tmp_path, saves):
    def after_step(step):
        if step == 5:
            os.kill(os.getpid(), signal.SIGTERM)

    config = TrainConfig(**SMALL, out_dir=str(tmp_path / "run"))
    with pytest.raises(Interrupted) as stopped:
        trainer.train(
            config,
            hooks=trainer.Hooks(after_step=after_step),
            stream=open(os.devnull, "w"),
        )
    assert str(stopped.value) == (
        "interrupted at step 5; rerun the same command to resume"
    )
    assert stopped.value.exit_code == 143
    assert saves == [5]
    # the handlers are put back when the run ends
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    result = trainer.train(config, stream=open(os.devnull, "w"))
    assert result.resumed_from == 5 and saves == [5, 11, 22, 30]


def test_a_second_signal_does_not_wait():
    with InterruptFlag() as flag:
        os.kill(os.getpid(), signal.SIGINT)
        assert flag.signum == signal.SIGINT
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_disk_full_is_recognised_from_what_tensorflow_and_os_say():
    from kerasblocks.training.errors import disk_full_path

    message = (
        "{{function_node __wrapped__SaveV2}} /r/checkpoints/.ckpt-000000022"
        ".kbtmp-123-0a1b2c3d4e5f/ckpt_temp/part-00000-of-00001.data; No "
        "space left on device [Op:SaveV2]"
    )
    assert disk_full_path(RuntimeError(message)) == (
        "/r/checkpoints/ckpt-000000022"
    )
    error = OSError(
        28, "No space left on device", "/r/.metrics.json.kbtmp-9-ab"
    )
    assert disk_full_path(error) == "/r/metrics.json"
    assert disk_full_path(OSError(13, "Permission denied", "/r/x")) is None
    try:
        try:
            raise OSError(28, "No space left on device", "/r/a")
        except OSError as inner:
            raise ValueError("wrapped") from inner
    except ValueError as outer:
        assert disk_full_path(outer) == "/r/a"


def test_an_out_dir_that_is_a_file_is_one_line_and_untouched(tmp_path):
    (tmp_path / "notes").write_text("mine")
    with pytest.raises(RunDirectoryError) as refused:
        trainer.train(TrainConfig(**SMALL, out_dir=str(tmp_path / "notes")))
    assert str(refused.value) == (
        f"--out_dir={tmp_path / 'notes'} is a file; give a directory."
    )
    assert (tmp_path / "notes").read_text() == "mine"
    assert os.listdir(tmp_path) == ["notes"]
