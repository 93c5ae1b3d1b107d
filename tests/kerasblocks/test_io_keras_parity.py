"""`kerasblocks.io` keeps what Keras keeps: state, dtypes, compile
settings, file objects; and refuses resource bombs before inflating."""

from __future__ import annotations

import io
import os
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasblocks as kb


def _stateful_model():
    """String lookup (a vocabulary asset) and an adapted Normalization,
    behind dict inputs whose keys are not in sorted order."""
    lookup = keras.layers.StringLookup(name="lookup")
    lookup.adapt(np.array(["cat", "dog", "emu", "cat"]))
    norm = keras.layers.Normalization(name="norm")
    norm.adapt(np.array([[10.0, 200.0], [30.0, 400.0], [50.0, 900.0]]))
    words = keras.Input((1,), dtype="string", name="zwords")
    values = keras.Input((2,), name="avalues")
    ids = keras.ops.cast(lookup(words), "float32")
    merged = keras.layers.Concatenate()([ids, norm(values)])
    out = keras.layers.Dense(1, name="head")(merged)
    return keras.Model({"zwords": words, "avalues": values}, out)


def _inputs():
    return {
        "zwords": np.array([["dog"], ["yak"], ["emu"]]),
        "avalues": np.array(
            [[20.0, 300.0], [0.0, 0.0], [50.0, 100.0]], "float32"
        ),
    }


def test_state_survives_every_format(tmp_path):
    model = _stateful_model()
    expected = keras.ops.convert_to_numpy(model(_inputs()))
    kb.io.save_model(model, tmp_path / "m.keras")
    restored = kb.io.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(restored(_inputs()), expected)
    with open(tmp_path / "m.keras", "rb") as f:  # a file object
        restored = kb.io.load_model(f)
    np.testing.assert_array_equal(restored(_inputs()), expected)
    kb.io.save_model(model, tmp_path / "unzipped", zipped=False)
    restored = kb.io.load_model(tmp_path / "unzipped")
    np.testing.assert_array_equal(restored(_inputs()), expected)
    # SavedModel: serves like model.export, and reloads as Keras.
    kb.io.export_saved_model(model, tmp_path / "saved")
    served = tf.saved_model.load(str(tmp_path / "saved"))
    np.testing.assert_allclose(served.serve(_inputs()), expected, rtol=1e-6)
    named = served.signatures["serving_default"](
        **{k: tf.constant(v) for k, v in _inputs().items()}
    )
    np.testing.assert_allclose(named["head"], expected, rtol=1e-6)
    restored = kb.io.load_model(tmp_path / "saved")
    np.testing.assert_allclose(restored(_inputs()), expected, rtol=1e-6)
    # A variables-only file cannot hold the vocabulary: refused, named.
    with pytest.raises(ValueError, match="layer 'lookup' keeps a vocab"):
        kb.io.save_weights(model, tmp_path / "m.params")


def test_weights_keep_normalization_and_bfloat16(tmp_path):
    def build():
        norm = keras.layers.Normalization()
        dense = keras.layers.Dense(2, dtype="bfloat16")
        return keras.Sequential([keras.Input((2,)), norm, dense]), norm

    model, norm = build()
    norm.adapt(np.array([[1.0, 10.0], [3.0, 30.0], [8.0, 50.0]]))
    x = np.array([[2.0, 20.0], [5.0, 5.0]], "float32")
    kb.io.save_weights(model, tmp_path / "w.params")
    kb.io.save_weights(model, tmp_path / "w.weights.h5")  # Keras's format
    for name in ("w.params", "w.weights.h5"):
        twin, _ = build()
        kb.io.load_weights(twin, tmp_path / name)
        assert twin.layers[1].kernel.dtype == "bfloat16"
        np.testing.assert_array_equal(twin(x), model(x))
    twin, _ = build()  # Keras itself reads our sealed Keras-format file
    keras.saving.load_weights(twin, tmp_path / "w.weights.h5")
    np.testing.assert_array_equal(twin(x), model(x))
    data = bytearray((tmp_path / "w.weights.h5").read_bytes())
    data[-64] ^= 1
    (tmp_path / "w.weights.h5").write_bytes(bytes(data))
    with pytest.raises(kb.io.CorruptFileError, match="checksum mismatch"):
        kb.io.load_weights(twin, tmp_path / "w.weights.h5")


def test_h5_compile_settings_and_loss_objects(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(
        optimizer="adam",
        loss=keras.losses.MeanSquaredError(),
        metrics=[keras.metrics.MeanAbsoluteError()],
    )
    kb.io.save_model(model, tmp_path / "m.h5")
    assert kb.io.load_model(tmp_path / "m.h5").compiled
    kb.io.save_model(model, tmp_path / "m.keras")
    for name in ("m.h5", "m.keras"):
        assert not kb.io.load_model(tmp_path / name, compile=False).compiled


def test_export_does_not_change_the_model(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.GaussianNoise(0.5, seed=1),
            keras.layers.Dense(2),
        ]
    )
    before = [keras.ops.convert_to_numpy(v) for v in model.variables]
    kb.io.export_saved_model(model, tmp_path / "saved")
    after = [keras.ops.convert_to_numpy(v) for v in model.variables]
    for a, b in zip(before, after, strict=True):
        np.testing.assert_array_equal(a, b)
    # The noise layer's RNG state is one of the variables compared.
    assert any("seed_generator" in v.path for v in model.variables)
    served = tf.saved_model.load(str(tmp_path / "saved"))
    assert served.serve(tf.ones((2, 4))).shape == (2, 2)


def _bomb(path, members):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def test_resource_bombs_are_refused_before_inflating(tmp_path):
    small = kb.io.Limits(max_bytes=1 << 20, max_members=8)
    path = tmp_path / "bomb.keras"
    _bomb(path, {"config.json": b"{}", "model.weights.h5": bytes(2 << 20)})
    assert os.path.getsize(path) < 10_000
    with pytest.raises(kb.io.ResourceLimitError, match="max_bytes"):
        kb.io.load_model(path, limits=small)
    many = {f"assets/{i}": b"" for i in range(9)}
    _bomb(path, {"config.json": b"{}", **many})
    with pytest.raises(kb.io.ResourceLimitError, match="10 archive members"):
        kb.io.load_model(path, limits=small)
    buffer = io.BytesIO()  # a file object meets the same checks
    _bomb(buffer, {"config.json": b"{}", "model.weights.h5": bytes(2 << 20)})
    buffer.seek(0)
    with pytest.raises(kb.io.ResourceLimitError, match="max_bytes"):
        kb.io.load_model(buffer, limits=small)


@pytest.mark.parametrize(
    "policy", ["float32", "mixed_float16", "mixed_bfloat16", "bfloat16"]
)
def test_dtype_policies_masking_and_optimizer_state(tmp_path, policy):
    def build():
        tokens = keras.Input((5,), dtype="int32")
        x = keras.layers.Embedding(9, 4, mask_zero=True, dtype=policy)(tokens)
        x = keras.layers.GlobalAveragePooling1D(dtype=policy)(x)
        out = keras.layers.Dense(2, dtype=policy)(x)
        model = keras.Model(tokens, out)
        model.compile(optimizer="adam", loss="mse")
        return model

    model = build()
    x = np.array([[1, 2, 0, 0, 0], [3, 4, 5, 6, 7]], "int32")
    model.fit(x, np.ones((2, 2), "float32"), epochs=1, verbose=0)
    expected = keras.ops.convert_to_numpy(model(x))
    # (Keras's own .h5 cannot hold a mask: it fails on 'NotEqual'.)
    kb.io.save_model(model, tmp_path / "m.keras")
    restored = kb.io.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(restored(x), expected)
    assert restored.layers[1].dtype_policy.name == policy
    assert int(restored.optimizer.iterations) == 1
    kb.io.save_weights(model, tmp_path / "w.params")
    twin = build()
    kb.io.load_weights(twin, tmp_path / "w.params")
    np.testing.assert_array_equal(twin(x), expected)
    kb.io.export_saved_model(model, tmp_path / "saved")
    restored = kb.io.load_model(tmp_path / "saved")
    np.testing.assert_array_equal(restored(x), expected)
    assert int(restored.optimizer.iterations) == 1
    moments = [v for v in restored.optimizer.variables if "momentum" in v.path]
    assert moments and all(
        np.any(keras.ops.convert_to_numpy(v)) for v in moments
    )
