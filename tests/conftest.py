"""Shared pytest set-up: quiet TensorFlow, CPU only, seeded randomness."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
# Tests never touch the internet: weights="imagenet" may not download
# (tests/zoo/test_downloads.py serves files from 127.0.0.1 and says so).
os.environ.setdefault("ZOO_OFFLINE", "1")

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)
    yield
