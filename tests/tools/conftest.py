"""Fixtures of the tools' tests."""

import pytest


@pytest.fixture(scope="module")
def no_tensorflow(tmp_path_factory):
    """An environment where importing TensorFlow fails loudly: what
    answers in it answered before TensorFlow was imported."""
    root = tmp_path_factory.mktemp("no_tf")
    (root / "tensorflow").mkdir()
    (root / "tensorflow" / "__init__.py").write_text(
        "raise SystemExit('tensorflow was imported')\n"
    )
    return {"PYTHONPATH": str(root)}
