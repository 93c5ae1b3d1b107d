"""kb-train --strategy=multi_worker with two worker processes on loopback."""

import json
import signal
import socket
import subprocess
import time

import numpy as np

from tests.tools._cli import SMALL, start_tool

FLAGS = [
    *SMALL,
    "--strategy=multi_worker",
    "--checkpoint_every=4",
    "--export=keras",
]


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _launch(tmp_path, ports, args, tag):
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    processes = []
    for index in range(len(ports)):
        env = {
            "TF_CONFIG": json.dumps(
                {"cluster": cluster, "task": {"type": "worker", "index": index}}
            ),
            "KB_FINAL_WEIGHTS_DIR": str(tmp_path / f"final-{tag}"),
            "KB_COLLECTIVE_TIMEOUT": "20",
        }
        log = open(tmp_path / f"{tag}-worker{index}.log", "w")
        processes.append(
            start_tool(
                "train",
                *FLAGS,
                *args,
                f"--out_dir={tmp_path / 'run'}",
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    return processes


def _log(tmp_path, tag, index):
    return (tmp_path / f"{tag}-worker{index}.log").read_text()


def _wait(processes, timeout):
    for process in processes:
        process.wait(timeout=timeout)
    return [p.returncode for p in processes]


def test_two_workers_train_to_identical_weights(tmp_path):
    ports = _free_ports(2)
    codes = _wait(_launch(tmp_path, ports, ["--steps=8"], "a"), timeout=300)
    assert codes == [0, 0], _log(tmp_path, "a", 0)[-3000:]
    from kerasblocks.io import weights

    a = tmp_path / "final-a" / "worker-0.weights"
    b = tmp_path / "final-a" / "worker-1.weights"
    import h5py

    with h5py.File(a) as fa, h5py.File(b) as fb:
        assert list(fa["variables"]) == list(fb["variables"])
        for name in fa["variables"]:
            np.testing.assert_array_equal(
                fa["variables"][name][()], fb["variables"][name][()]
            )
    assert weights.FORMAT == "kerasblocks.weights"
    completed = json.loads((tmp_path / "run" / "COMPLETED").read_text())
    assert completed["steps"] == 8


def test_a_lost_worker_stops_the_other_and_both_resume(tmp_path):
    ports = _free_ports(2)
    processes = _launch(tmp_path, ports, ["--steps=2000"], "b")
    checkpoints = tmp_path / "run" / "checkpoints"
    deadline = time.time() + 240
    while time.time() < deadline:
        if checkpoints.exists() and any(
            p.name.startswith("ckpt-") for p in checkpoints.iterdir()
        ):
            break
        if any(p.poll() is not None for p in processes):
            raise AssertionError(_log(tmp_path, "b", 0)[-3000:])
        time.sleep(0.5)
    else:
        raise AssertionError("no checkpoint was written in time")
    processes[1].send_signal(signal.SIGKILL)
    killed_at = time.time()
    processes[0].wait(timeout=120)
    waited = time.time() - killed_at
    assert processes[0].returncode == 4, _log(tmp_path, "b", 0)[-3000:]
    assert waited < 60
    last = _log(tmp_path, "b", 0).strip().splitlines()[-1]
    assert last.startswith(
        f"kb-train: error: lost contact with worker 1 (127.0.0.1:{ports[1]})"
    )
    saved = sorted(
        p.name for p in checkpoints.iterdir() if p.name.startswith("ckpt-")
    )
    resumed = _launch(tmp_path, _free_ports(2), ["--steps=24"], "c")
    codes = _wait(resumed, timeout=300)
    assert codes == [0, 0], _log(tmp_path, "c", 0)[-3000:]
    for index in (0, 1):
        assert f"resuming from {saved[-1]}" in _log(tmp_path, "c", index)
    assert (
        json.loads((tmp_path / "run" / "COMPLETED").read_text())["steps"] == 24
    )
