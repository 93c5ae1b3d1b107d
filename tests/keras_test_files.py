"""Runs test files shipped in the keras wheel in a child pytest, with
our plugins, and reads back each test's outcome.

The plugin `tests.kerasblocks._keras_suites_plugin` writes one JSON line
per test to `KB_SUITES_REPORT`; the child runs with Keras's source as
its root and none of our pytest options.
"""

import json
import os
import subprocess
import sys
import tempfile

import keras

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KERAS_SRC = os.path.join(os.path.dirname(keras.__file__), "src")


def run_keras_tests(
    targets: list[str],
    *,
    plugins: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
    timeout: int = 1200,
) -> dict[str, dict]:
    """Runs `targets` (paths or node ids under Keras's source) with
    `tests.kerasblocks._keras_suites_plugin` and `plugins`; returns
    {test id: {"outcome", "message"}} ({} when the child reported
    nothing). `env` adds variables; Keras's temporary files stay in a
    scratch directory removed afterwards."""
    with tempfile.TemporaryDirectory() as scratch:
        report = os.path.join(scratch, "report.jsonl")
        child_env = dict(
            os.environ,
            KB_SUITES_REPORT=report,
            TF_CPP_MIN_LOG_LEVEL="2",
            CUDA_VISIBLE_DEVICES="",
            KERAS_BACKEND="tensorflow",
            TMPDIR=scratch,
            **(env or {}),
        )
        options = []
        for plugin in ("tests.kerasblocks._keras_suites_plugin", *plugins):
            options += ["-p", plugin]
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                *options,
                "-o",
                "addopts=",
                "--rootdir",
                KERAS_SRC,
                "--basetemp",
                os.path.join(scratch, "tmp"),
                *args,
                *targets,
            ],
            cwd=ROOT,
            env=child_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout,
            check=False,
        )
        results = {}
        if os.path.exists(report):
            with open(report) as f:
                for line in f:
                    entry = json.loads(line)
                    results[entry.pop("test")] = entry
    return results
