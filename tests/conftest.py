"""Shared pytest set-up: quiet TensorFlow, CPU only, seeded randomness."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)
    yield


# Modules whose tests share a module-scoped fixture (a finished run, one
# export) stay on one pytest-xdist worker, so the fixture is built once.
_ONE_WORKER = (
    "test_train.py",
    "test_train_sources.py",
    "test_multi_worker.py",
    "test_sequence_export.py",
    "test_saved_model.py",
    "test_image_serving.py",
    "test_transfer.py",
)


def pytest_collection_modifyitems(config, items):
    for item in items:
        module = item.path.name
        if module in _ONE_WORKER:
            item.add_marker(pytest.mark.xdist_group(module))
