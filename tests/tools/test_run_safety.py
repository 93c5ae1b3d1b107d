"""kb-train's run directory against a second process, a signal and a full
disk, done for real: child processes, real signals, a small tmpfs."""

import contextlib
import json
import os
import signal
import subprocess
import threading
import time

import numpy as np
import pytest

from tests.tools._cli import SMALL, run_tool, start_tool

# 22 steps an epoch; checkpoints at 11, 22 (the end of epoch 1) and 30.
COMMON = [
    *SMALL,
    "--steps=30",
    "--checkpoint_every=11",
    "--keep_checkpoints=10",
    "--deterministic",
    "--jit_compile=false",
    "--export=keras",
]


def _args(out, *extra):
    return [*COMMON, f"--out_dir={out}", *extra]


def _train(out, *extra, env=None):
    return run_tool("train", *_args(out, *extra), env=env)


def _paused(out, step, marker, *extra):
    """A kb-train child that stops after `step` until `marker` is removed
    or a signal comes (tools/train.py's KB_FAULT_PAUSE_AT_STEP)."""
    child = start_tool(
        "train",
        *_args(out, *extra),
        env={"KB_FAULT_PAUSE_AT_STEP": f"{step}:{marker}"},
    )
    _wait_for(lambda: os.path.exists(marker), child)
    return child


def _wait_for(condition, child, limit=600):
    deadline = time.monotonic() + limit
    while not condition():
        if child.poll() is not None:
            raise AssertionError(
                f"child ended ({child.returncode}): {child.stderr.read()}"
            )
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.05)


def _weights(out):
    import kerasblocks as kb

    model = kb.io.load_model(out / "export" / "model.keras", compile=False)
    return [v.numpy() for v in model.weights]


def _assert_same_weights(a, b):
    for x, y in zip(_weights(a), _weights(b), strict=True):
        np.testing.assert_array_equal(x, y)


def _checkpoints(out):
    return sorted(
        n for n in os.listdir(out / "checkpoints") if n.startswith("ckpt-")
    )


def _snapshot(out):
    """Every file of a run directory with its size and modification time."""
    found = {}
    for root, _, files in os.walk(out):
        for name in files:
            path = os.path.join(root, name)
            info = os.stat(path)
            found[os.path.relpath(path, out)] = (info.st_size, info.st_mtime_ns)
    return found


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """The uninterrupted run every stopped one must end equal to."""
    out = tmp_path_factory.mktemp("whole") / "run"
    done = _train(out)
    assert done.returncode == 0, done.stderr[-3000:]
    assert _checkpoints(out) == [
        "ckpt-000000011",
        "ckpt-000000022",
        "ckpt-000000030",
    ]
    return out


def test_ctrl_c_a_second_process_and_a_changed_flag(whole, tmp_path):
    out = tmp_path / "run"
    child = _paused(out, 7, tmp_path / "paused")
    before = _snapshot(out)
    pid = (out / ".lock").read_text().strip()
    assert pid == str(child.pid)
    # A second kb-train on the same directory: one line, exit 2, nothing
    # of the first run touched.
    second = _train(out)
    assert second.returncode == 2
    assert second.stderr.strip().splitlines() == [
        f"kb-train: error: --out_dir={out} is in use by another run (pid "
        f"{pid}); wait for it to finish, pass --wait_for_lock to wait, or "
        "give another --out_dir."
    ]
    assert _snapshot(out) == before
    child.send_signal(signal.SIGINT)
    stdout, stderr = child.communicate(timeout=300)
    assert child.returncode == 130, stderr[-3000:]
    assert stderr.strip().splitlines() == [
        "kb-train: interrupted at step 7; rerun the same command to resume"
    ]
    assert _checkpoints(out) == ["ckpt-000000007"]
    assert not (out / ".lock").exists()
    # Resuming with another learning rate is refused, naming it.
    recorded = (out / "flags.json").read_text()
    changed = _train(out, "--learning_rate=0.001")
    assert changed.returncode == 2
    assert changed.stderr.strip().splitlines() == [
        f"kb-train: error: --out_dir={out} holds a run with different "
        "settings (--learning_rate 0.003 -> 0.001); rerun with the recorded "
        "flags to resume, add --allow_flag_changes to train on with the new "
        "ones (recorded in flags.json), --overwrite to start afresh, or give "
        "another --out_dir."
    ]
    assert (out / "flags.json").read_text() == recorded
    assert _checkpoints(out) == ["ckpt-000000007"]
    # The same command resumes, exactly.
    resumed = _train(out)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from ckpt-000000007 (step 7)" in resumed.stdout
    _assert_same_weights(whole, out)
    assert _checkpoints(out) == [
        "ckpt-000000007",
        "ckpt-000000011",
        "ckpt-000000022",
        "ckpt-000000030",
    ]


def test_sigterm_hands_the_run_to_a_waiting_process(whole, tmp_path):
    out = tmp_path / "run"
    child = _paused(out, 11, tmp_path / "paused")
    waiter = start_tool("train", *_args(out, "--wait_for_lock"))
    lines = []
    reader = threading.Thread(
        target=lambda: lines.extend(waiter.stdout), daemon=True
    )
    reader.start()
    _wait_for(lambda: any("waiting for" in line for line in lines), waiter)
    assert lines[0] == f"waiting for pid {child.pid} to release {out} ...\n"
    child.send_signal(signal.SIGTERM)
    _, stderr = child.communicate(timeout=300)
    assert child.returncode == 143, stderr[-3000:]
    assert stderr.strip().splitlines() == [
        "kb-train: interrupted at step 11; rerun the same command to resume"
    ]
    # step 11 was a checkpoint step: it is not written twice
    assert waiter.wait(timeout=600) == 0, waiter.stderr.read()[-3000:]
    reader.join(timeout=60)
    assert "resuming from ckpt-000000011 (step 11)\n" in lines
    _assert_same_weights(whole, out)


@contextlib.contextmanager
def _tmpfs(path, size):
    os.makedirs(path)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def _fill(path, leave=0):
    """Writes zeros to `path` until the disk is full, then frees `leave`
    bytes (whole pages: tmpfs allocates by the page)."""
    with open(path, "wb", buffering=0) as f:
        with pytest.raises(OSError) as full:
            while True:
                f.write(b"\0" * 4096)
    assert full.value.errno == 28
    if leave:
        os.truncate(path, os.path.getsize(path) - leave)


def _one_line(done, code=28):
    assert done.returncode == code, done.stderr[-3000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def _files(path):
    """Every file under `path` (directories left out)."""
    return sorted(
        os.path.relpath(os.path.join(root, name), path)
        for root, _, names in os.walk(path)
        for name in names
    )


def test_a_full_disk_is_one_line_and_a_rerun_resumes(whole, tmp_path):
    with _tmpfs(tmp_path / "disk", "4m") as disk:
        out = disk / "run"
        # After step 21 the disk fills; step 22's checkpoint cannot be
        # written.
        child = _paused(out, 21, tmp_path / "paused")
        _fill(disk / "filler")
        os.remove(tmp_path / "paused")
        _, stderr = child.communicate(timeout=300)
        assert child.returncode == 28, stderr[-3000:]
        lines = stderr.strip().splitlines()
        assert len(lines) == 1
        assert lines[0].startswith(
            f"kb-train: error: disk full writing {out}/checkpoints/"
            "ckpt-000000022: it needs about 0."
        )
        assert lines[0].endswith(
            " MB, 0.0 MB free there. The checkpoints written before are "
            "intact: free space and rerun the same command to resume."
        )
        # the last good checkpoint is whole, and nothing half-written is
        # left beside it
        assert os.listdir(out / "checkpoints") == ["ckpt-000000011"]
        from kerasblocks.io import _integrity

        assert _integrity.verify_directory(
            str(out / "checkpoints" / "ckpt-000000011")
        )
        assert json.loads((out / "flags.json").read_text())["steps"] == 30
        os.remove(disk / "filler")
        resumed = _train(out)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert "resuming from ckpt-000000011 (step 11)" in resumed.stdout
        _assert_same_weights(whole, out)


def test_a_full_disk_at_the_start_leaves_nothing(tmp_path):
    with _tmpfs(tmp_path / "disk", "1m") as disk:
        # One page free: the lock file takes it, flags.json finds none.
        _fill(disk / "filler", leave=4096)
        out = disk / "run"
        line = _one_line(_train(out))
        assert line.startswith(
            f"kb-train: error: disk full writing {out}/flags.json: it needs "
            "about 0."
        ), line
        assert _files(out) == []


def test_a_full_disk_at_the_exports_then_kb_export(whole, tmp_path):
    with _tmpfs(tmp_path / "disk", "4m") as disk:
        out = disk / "run"
        marker = tmp_path / "paused"
        child = start_tool(
            "train",
            *_args(out),
            env={"KB_FAULT_PAUSE_BEFORE_EXPORT": str(marker)},
        )
        _wait_for(lambda: os.path.exists(marker), child)
        _fill(disk / "filler")
        os.remove(marker)
        _, stderr = child.communicate(timeout=300)
        assert child.returncode == 28, stderr[-3000:]
        (line,) = stderr.strip().splitlines()
        assert line.startswith(
            f"kb-train: error: disk full writing {out}/export/model.keras: "
            "it needs about 0."
        ), line
        assert line.endswith(
            " MB, 0.0 MB free there. The checkpoints "
            "written before are intact: free space and rerun the same "
            "command to resume."
        )
        # Every checkpoint is whole; no export, no temporary left.
        assert _checkpoints(out)[-1] == "ckpt-000000030"
        from kerasblocks.io import _integrity

        for name in _checkpoints(out):
            assert _integrity.verify_directory(str(out / "checkpoints" / name))
        assert not any(
            name.startswith("export/") or ".kbtmp-" in name
            for name in _files(out)
        ), _files(out)
        assert not (out / "COMPLETED").exists()
        # kb-export into the full disk: one line, nothing written.
        target = disk / "exports"
        line = _one_line(
            run_tool("export", f"--run_dir={whole}", f"--out_dir={target}")
        )
        assert line.startswith(
            f"kb-export: error: disk full writing {target}/export/"
            "saved_model/1, 0.0 MB free there; nothing half-written is left"
        ), line
        assert _files(target) == []
        os.remove(disk / "filler")
        resumed = _train(out)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert "resuming from ckpt-000000030 (step 30)" in resumed.stdout
        _assert_same_weights(whole, out)
