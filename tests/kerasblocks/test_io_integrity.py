"""Damaged files are detected in every format; failed saves lose nothing."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasblocks as kb


def _model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(16, name="a"),
            keras.layers.Dense(3, name="b"),
        ],
        name="small",
    )
    return model


def _save(kind, path):
    model = _model()
    if kind == "keras":
        kb.io.save_model(model, path)
        return lambda: kb.io.load_model(path)
    if kind == "h5":
        kb.io.save_model(model, path)
        return lambda: kb.io.load_model(path)
    if kind == "weights":
        kb.io.save_weights(model, path)
        return lambda: kb.io.load_weights(_model(), path)
    kb.io.save_tensors(path, {"w": model.weights[0].value, "n": [1, 2]})
    return lambda: kb.io.load_tensors(path)


KINDS = {
    "keras": "m.keras",
    "h5": "m.h5",
    "weights": "m.params",
    "tensors": "t",
}


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("fraction", [0.0, 0.5, 0.99])
def test_truncation_is_detected(tmp_path, kind, fraction):
    path = tmp_path / KINDS[kind]
    load = _save(kind, path)
    load()  # the intact file loads
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(kb.io.CorruptFileError) as info:
        load()
    assert str(path) in str(info.value)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_flipped_byte_is_detected(tmp_path, kind):
    """Flip bytes spread over the whole file (header, data, trailer)."""
    path = tmp_path / KINDS[kind]
    load = _save(kind, path)
    original = path.read_bytes()
    positions = np.linspace(0, len(original) - 1, 24).astype(int).tolist()
    for position in positions:
        damaged = bytearray(original)
        damaged[position] ^= 0x10
        path.write_bytes(bytes(damaged))
        with pytest.raises((kb.io.CorruptFileError, kb.io.UnsafeModelError)):
            load()
    path.write_bytes(original)
    load()


def test_flipped_byte_in_saved_model(tmp_path):
    directory = tmp_path / "export"
    kb.io.export_saved_model(_model(), directory)
    kb.io.load_model(directory)
    for name in (
        "saved_model.pb",
        "variables/variables.data-00000-of-00001",
        "assets/kerasblocks/model_config.json",
    ):
        target = directory / name
        original = target.read_bytes()
        damaged = bytearray(original)
        damaged[len(damaged) // 2] ^= 0x01
        target.write_bytes(bytes(damaged))
        with pytest.raises(
            kb.io.CorruptFileError, match=f"checksum mismatch in {name}"
        ):
            kb.io.load_model(directory)
        target.write_bytes(original)
    (directory / "variables" / "extra").write_bytes(b"x")
    with pytest.raises(
        kb.io.CorruptFileError, match="files not in the manifest"
    ):
        kb.io.load_model(directory)


def test_empty_file_is_truncated_not_missing(tmp_path):
    path = tmp_path / "m.keras"
    path.write_bytes(b"")
    with pytest.raises(kb.io.CorruptFileError, match="empty"):
        kb.io.load_model(path)


@pytest.mark.parametrize("kind", ["keras", "h5", "saved_model"])
def test_save_failing_halfway_keeps_the_old_file(tmp_path, kind, monkeypatch):
    path = (
        tmp_path / {"keras": "m.keras", "h5": "m.h5", "saved_model": "m"}[kind]
    )
    kb.io.save_model(_model(), path)
    before = _snapshot(path)

    def half_written(*args, **kwargs):
        target = next(a for a in args if isinstance(a, (str, os.PathLike)))
        if kind == "saved_model":
            target = os.path.join(target, "partial")
        with open(target, "wb") as f:
            f.write(b"half")
        raise OSError("disk full")

    if kind == "saved_model":

        def save(module, target, **kwargs):
            os.makedirs(target)
            half_written(target)

        monkeypatch.setattr(tf.saved_model, "save", save)
    elif kind == "keras":
        monkeypatch.setattr(
            "kerasblocks._keras_compat.saving_lib.save_model", half_written
        )
    else:
        monkeypatch.setattr("kerasblocks.io.h5_format.save", half_written)
    with pytest.raises(OSError, match="disk full"):
        kb.io.save_model(_model(), path)
    assert _snapshot(path) == before
    assert sorted(os.listdir(tmp_path)) == [path.name]


def _snapshot(path):
    if path.is_dir():
        return {
            str(p.relative_to(path)): p.read_bytes()
            for p in sorted(path.rglob("*"))
            if p.is_file()
        }
    return path.read_bytes()


def test_weights_file_from_plain_keras_still_loads_without_seal(tmp_path):
    """Files written by plain Keras carry no seal; they load with the
    structural checks only."""
    model = _model()
    model.save(tmp_path / "plain.keras")
    restored = kb.io.load_model(tmp_path / "plain.keras")
    x = np.ones((2, 6), "float32")
    np.testing.assert_allclose(restored(x), model(x), rtol=1e-6)


@pytest.mark.parametrize("fraction", [0.0, 0.5, 0.99])
def test_truncated_file_in_a_saved_model(tmp_path, fraction):
    directory = tmp_path / "export"
    kb.io.export_saved_model(_model(), directory)
    target = directory / "variables" / "variables.data-00000-of-00001"
    data = target.read_bytes()
    target.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(kb.io.CorruptFileError, match="checksum mismatch in"):
        kb.io.load_model(directory)
