"""Shared pytest set-up: quiet TensorFlow, CPU only, seeded randomness,
and memory handed back between test files."""

import ctypes
import gc
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
# Tests never touch the internet: weights="imagenet" may not download
# (tests/zoo/test_downloads.py serves files from 127.0.0.1 and says so).
os.environ.setdefault("ZOO_OFFLINE", "1")
# TensorFlow's oneDNN kernels allocate through a pool that keeps its
# high-water mark for the life of the process: a test worker that ran a
# 224-px VGG keeps that memory through every later file, and two such
# workers were killed by the kernel at 12 GB each. The Eigen kernels
# free what they free, so the long-lived test processes use them; the
# programs the tests start (kb-train, converters, Keras's suites) live
# briefly and keep TensorFlow's default, oneDNN, which trains convolutions
# several times faster. TF_ENABLE_ONEDNN_OPTS=1 runs the tests on oneDNN.
_ONEDNN = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
os.environ["TF_ENABLE_ONEDNN_OPTS"] = _ONEDNN or "0"

import keras  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# TensorFlow reads the setting once: at import, and (for its graph
# rewrites) when it first optimizes a graph; both happen before it goes.
tf.function(tf.nn.conv2d)(
    tf.zeros((1, 4, 4, 1)), tf.zeros((3, 3, 1, 1)), 1, "SAME"
)
if _ONEDNN is None:
    del os.environ["TF_ENABLE_ONEDNN_OPTS"]
ON_EIGEN = _ONEDNN != "1"


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "onednn: needs TensorFlow's oneDNN kernels (the CPU's only NCHW "
        "convolutions); run in a child process on oneDNN when this "
        "process runs Eigen's",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """A test marked `onednn`, in a process on Eigen's kernels, runs in
    a child pytest on oneDNN's and fails with the child's report."""
    if not ON_EIGEN or pyfuncitem.get_closest_marker("onednn") is None:
        return None
    with tempfile.TemporaryDirectory() as base:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-n",
                "0",
                "-p",
                "no:cacheprovider",
                f"--basetemp={base}/tmp",
                pyfuncitem.nodeid,
            ],
            capture_output=True,
            text=True,
            timeout=900,
            cwd=str(pyfuncitem.config.rootpath),
            env={**os.environ, "TF_ENABLE_ONEDNN_OPTS": "1"},
        )
    if done.returncode != 0 or " 1 passed" not in done.stdout:
        pytest.fail(
            f"on oneDNN, in a child process:\n{done.stdout[-4000:]}",
            pytrace=False,
        )
    return True


def _malloc_trim():
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


@pytest.fixture(scope="module", autouse=True)
def _free_memory_after_each_file():
    """Frees what a test file left behind (Keras's global state, cycles,
    the C heap's free pages) before the worker takes the next file."""
    yield
    keras.backend.clear_session()
    gc.collect()
    _malloc_trim()


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)
    yield
