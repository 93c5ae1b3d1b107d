"""Shared pytest set-up: quiet TensorFlow, CPU only, seeded randomness,
and memory handed back between test files."""

import ctypes
import gc
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
# Tests never touch the internet: weights="imagenet" may not download
# (tests/zoo/test_downloads.py serves files from 127.0.0.1 and says so).
os.environ.setdefault("ZOO_OFFLINE", "1")
# TensorFlow's oneDNN kernels allocate through a pool that keeps its
# high-water mark for the life of the process: a test worker that ran a
# 224-px VGG keeps that memory through every later file, and two such
# workers were killed by the kernel at 12 GB each. The Eigen kernels
# free what they free. Run with TF_ENABLE_ONEDNN_OPTS=1 to test oneDNN.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import keras  # noqa: E402
import pytest  # noqa: E402


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
