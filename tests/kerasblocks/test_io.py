"""kerasblocks.io: tensors, weights, models; atomic writes; bad input."""

import os

import keras
import ml_dtypes
import numpy as np
import pytest
import tensorflow as tf

import kerasblocks as kb
from kerasblocks.io import _atomic, keras_weights


def test_tensors_keep_structure_dtypes_and_values(tmp_path):
    obj = {
        "a": tf.constant([[1.5, -2.0]], tf.float32),
        "b": [
            tf.range(3, dtype=tf.int64),
            (np.arange(4, dtype=np.uint8), None),
        ],
        "c": tf.constant([1.0, 2.5], tf.bfloat16),
        "d": np.array([0.25], dtype=ml_dtypes.bfloat16),
        "e": tf.constant(["x", "yz"]),
        "f": 3,
        "g": 2.5,
        "h": "text",
        "i": True,
        "j": np.float32(1.25),
        "k": tf.Variable([7.0]),
    }
    kb.io.save_tensors(tmp_path / "t", obj)
    out = kb.io.load_tensors(tmp_path / "t")
    assert list(out) == list(obj)
    assert out["a"].dtype == tf.float32 and out["a"].numpy().tolist() == [
        [1.5, -2.0]
    ]
    assert out["b"][0].dtype == tf.int64 and isinstance(out["b"][1], tuple)
    assert out["b"][1][0].dtype == np.uint8 and out["b"][1][1] is None
    assert out["c"].dtype == tf.bfloat16
    assert out["c"].numpy().astype(np.float32).tolist() == [1.0, 2.5]
    assert out["d"].dtype == ml_dtypes.bfloat16
    assert out["e"].numpy().tolist() == [b"x", b"yz"]
    assert (out["f"], out["g"], out["h"], out["i"]) == (3, 2.5, "text", True)
    assert out["j"] == np.float32(1.25) and out["j"].dtype == np.float32
    assert out["k"].numpy().tolist() == [7.0]


def test_tensors_refuse_unsavable_values(tmp_path):
    with pytest.raises(TypeError, match=r"obj\['x'\]: cannot save a set"):
        kb.io.save_tensors(tmp_path / "t", {"x": {1, 2}})
    with pytest.raises(TypeError, match="dict keys must be strings"):
        kb.io.save_tensors(tmp_path / "t", {1: tf.ones(1)})
    with pytest.raises(TypeError, match="object arrays"):
        kb.io.save_tensors(tmp_path / "t", np.array([object()]))
    assert not os.path.exists(tmp_path / "t")


def test_tensors_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        kb.io.load_tensors(tmp_path / "missing")
    (tmp_path / "junk").write_bytes(b"not a zip at all")
    with pytest.raises(kb.io.CorruptFileError, match="junk: not a zip archive"):
        kb.io.load_tensors(tmp_path / "junk")
    kb.io.save_tensors(tmp_path / "t", [tf.range(100)])
    data = bytearray((tmp_path / "t").read_bytes())
    position = data.rfind(b"\x00\x00\x00\x00", 0, len(data) // 2)
    data[position] ^= 0x01
    (tmp_path / "t").write_bytes(bytes(data))
    with pytest.raises(kb.io.CorruptFileError):
        kb.io.load_tensors(tmp_path / "t")
    kb.io.save_tensors(tmp_path / "t2", [tf.range(100)])
    whole = (tmp_path / "t2").read_bytes()
    (tmp_path / "t2").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(kb.io.CorruptFileError):
        kb.io.load_tensors(tmp_path / "t2")


def _mlp(seed=0):
    keras.utils.set_random_seed(seed)
    net = kb.layers.MLP(hidden_units=8, units=3)
    kb.materialize(net, (None, 5))
    return net


def test_weights_round_trip_with_report(tmp_path):
    net = _mlp()
    x = tf.random.stateless_uniform((2, 5), seed=(3, 3))
    kb.io.save_weights(net, tmp_path / "w.anything")
    clone = _mlp(seed=1)
    report = kb.io.load_weights(clone, tmp_path / "w.anything")
    assert report.ok and report.loaded == [
        "hidden/kernel",
        "hidden/bias",
        "out/kernel",
        "out/bias",
    ]
    assert str(report) == "all 4 loaded"
    np.testing.assert_array_equal(clone(x), net(x))


def test_weights_strict_mismatch_lists_paths_and_changes_nothing(tmp_path):
    kb.io.save_weights(_mlp(), tmp_path / "w")
    other = kb.layers.MLP(hidden_units=9, units=3)
    kb.materialize(other, (None, 5))
    before = [v.numpy().copy() for v in other.weights]
    with pytest.raises(kb.io.WeightsMismatchError) as info:
        kb.io.load_weights(other, tmp_path / "w")
    message = str(info.value)
    assert "shape mismatch 3" in message
    assert "hidden/kernel file (5, 8) vs model (5, 9)" in message
    assert len(message) < 400
    for old, variable in zip(before, other.weights, strict=True):
        np.testing.assert_array_equal(old, variable.numpy())
    report = kb.io.load_weights(other, tmp_path / "w", strict=False)
    assert report.loaded == ["out/bias"]
    assert [m[0] for m in report.mismatched] == [
        "hidden/kernel",
        "hidden/bias",
        "out/kernel",
    ]


def test_weights_for_another_architecture(tmp_path):
    kb.io.save_weights(_mlp(), tmp_path / "w")
    other = keras.Sequential(
        [
            keras.layers.Dense(8, name="a"),
            keras.layers.Dense(3, name="b"),
            keras.layers.Dense(2, name="c"),
        ]
    )
    kb.materialize(other, (None, 5))
    with pytest.raises(kb.io.WeightsMismatchError) as info:
        kb.io.load_weights(other, tmp_path / "w")
    report = info.value.report
    assert report.missing and report.unexpected
    assert "hidden/kernel" in report.unexpected


def test_weights_of_auto_named_layers_load_into_a_fresh_instance(tmp_path):
    def make():
        return keras.Sequential(
            [keras.layers.Dense(4, activation="relu"), keras.layers.Dense(2)]
        )

    net = make()
    x = tf.random.stateless_uniform((2, 3), seed=(4, 4))
    y = net(x)
    kb.io.save_weights(net, tmp_path / "w")
    clone = make()  # layers are now dense_2 / dense_3 or similar
    assert clone.layers[0].name != net.layers[0].name
    kb.io.load_weights(clone, tmp_path / "w")
    np.testing.assert_array_equal(clone(x), y)


def test_weights_bad_files(tmp_path):
    net = _mlp()
    with pytest.raises(FileNotFoundError, match="no such file"):
        kb.io.load_weights(net, tmp_path / "missing")
    (tmp_path / "junk").write_bytes(b"\x89HDF junk")
    with pytest.raises(kb.io.CorruptFileError, match="junk"):
        kb.io.load_weights(net, tmp_path / "junk")
    kb.io.save_weights(net, tmp_path / "w.h5")
    raw = bytearray((tmp_path / "w.h5").read_bytes())
    kernel = net.hidden.kernel.numpy().astype(np.float32).tobytes()
    position = raw.find(kernel)
    assert position > 0
    raw[position + 1] ^= 0xFF
    (tmp_path / "w.h5").write_bytes(bytes(raw))
    with pytest.raises(kb.io.CorruptFileError, match="w.h5: checksum mismatch"):
        kb.io.load_weights(_mlp(), tmp_path / "w.h5")


def test_weights_unbuilt_model_without_spec(tmp_path):
    layer = keras.layers.Dense(2)
    layer.build((None, 3))
    kb.io.save_weights(layer, tmp_path / "w")
    fresh = kb.layers.MLP()
    with pytest.raises(kb.io.WeightsMismatchError):
        kb.io.load_weights(fresh, tmp_path / "w")


def test_save_model_validates(tmp_path):
    net = _mlp()
    with pytest.raises(ValueError, match="unknown model format"):
        kb.io.save_model(net, tmp_path / "model.pkl")
    with pytest.raises(ValueError, match="is not built"):
        kb.io.save_model(kb.layers.MLP(), tmp_path / "m.h5")
    with pytest.raises(FileNotFoundError, match="no such file"):
        kb.io.load_model(tmp_path / "missing.keras")


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_failed_save_leaves_the_old_file_intact(tmp_path, suffix, monkeypatch):
    path = tmp_path / f"m{suffix}"
    kb.io.save_model(_mlp(), path)
    original = path.read_bytes()

    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(
        "kerasblocks._keras_compat.saving_lib.save_model", explode
    )
    monkeypatch.setattr(
        "kerasblocks._keras_compat.legacy_h5_format.save_weights_to_hdf5_group",
        explode,
    )
    with pytest.raises(RuntimeError, match="disk full"):
        kb.io.save_model(_mlp(seed=5), path)
    assert path.read_bytes() == original
    assert os.listdir(tmp_path) == [path.name]


def test_atomic_path_cleans_stale_temporaries_of_dead_processes(tmp_path):
    target = tmp_path / "file.bin"
    stale = tmp_path / ".file.bin.kbtmp-999999999-abcdef012345.bin"
    stale.write_bytes(b"left by a killed writer")
    with _atomic.atomic_path(target) as temporary:
        with open(temporary, "wb") as f:
            f.write(b"new")
    assert target.read_bytes() == b"new"
    assert sorted(os.listdir(tmp_path)) == ["file.bin"]


def test_atomic_path_replaces_directories(tmp_path):
    target = tmp_path / "export"
    for content in (b"one", b"two"):
        with _atomic.atomic_path(target) as temporary:
            os.makedirs(temporary)
            (tmp_path / temporary / "f").write_bytes(content)
        assert (target / "f").read_bytes() == content
    assert sorted(os.listdir(tmp_path)) == ["export"]


def test_atomic_path_flushes_what_it_wrote_and_nothing_else(
    tmp_path, monkeypatch
):
    """The parent's other files (a run's checkpoints, which another writer
    may be replacing) are never opened: only the new file or tree, and
    the parent directory's entries."""
    (tmp_path / "ckpt-1").mkdir()
    (tmp_path / "ckpt-1" / "weights").write_bytes(b"w")
    flushed = []
    real_open = os.open

    def recording_open(path, flags, *args, **kwargs):
        flushed.append(os.path.relpath(os.fspath(path), tmp_path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(_atomic.os, "open", recording_open)
    with _atomic.atomic_path(tmp_path / "file.bin") as temporary:
        with open(temporary, "wb") as f:
            f.write(b"new")
    assert len(flushed) == 2 and flushed[1] == "."
    assert flushed[0].startswith(".file.bin.kbtmp-")
    flushed.clear()
    with _atomic.atomic_path(tmp_path / "export") as temporary:
        os.makedirs(os.path.join(temporary, "variables"))
        with open(os.path.join(temporary, "variables", "v"), "wb") as f:
            f.write(b"v")
    assert flushed[-1] == "." and flushed[0].startswith(".export.kbtmp-")
    assert [os.path.basename(p) for p in flushed[1:-1]] == ["v", "variables"]
    assert not any("ckpt-1" in p for p in flushed)


def test_load_model_refuses_lambda_unless_trusted(tmp_path):
    x = keras.Input((3,))
    model = keras.Model(x, keras.layers.Lambda(lambda t: t * 2)(x))
    model.save(tmp_path / "lambda.keras")
    with pytest.raises(kb.io.UnsafeModelError, match="a Lambda layer"):
        kb.io.load_model(tmp_path / "lambda.keras")
    restored = kb.io.load_model(tmp_path / "lambda.keras", trusted=True)
    np.testing.assert_allclose(restored(np.ones((1, 3))), 2 * np.ones((1, 3)))


def test_load_model_corrupt_archive(tmp_path):
    path = tmp_path / "m.keras"
    kb.io.save_model(_mlp(), path)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(kb.io.CorruptFileError, match="m.keras"):
        kb.io.load_model(path)


def test_compiled_model_round_trips_with_optimizer(tmp_path):
    net = _mlp()
    net.compile(optimizer="adam", loss="mse")
    x = np.ones((4, 5), "float32")
    net.fit(x, np.zeros((4, 3), "float32"), epochs=1, verbose=0)
    for suffix in (".keras", ".h5"):
        kb.io.save_model(net, tmp_path / f"m{suffix}")
        restored = kb.io.load_model(tmp_path / f"m{suffix}")
        assert restored.optimizer.__class__.__name__ == "Adam"
        np.testing.assert_allclose(restored(x), net(x), rtol=1e-6)
        restored.fit(x, np.zeros((4, 3), "float32"), epochs=1, verbose=0)


def test_weights_of_a_functional_zoo_model_into_an_unbuilt_twin(tmp_path):
    import zoo

    model = zoo.create_model("lenet", num_classes=3)
    kb.io.save_weights(model, tmp_path / "lenet.weights")
    twin = zoo.create_model("lenet", num_classes=3)
    report = kb.io.load_weights(twin, tmp_path / "lenet.weights")
    assert report.ok and len(report.loaded) == 10
    x = np.ones((1, 28, 28, 1), "float32")
    np.testing.assert_array_equal(twin(x), model(x))


@pytest.mark.parametrize("kind", ["m.keras", "m.h5", "saved"])
def test_load_weights_from_every_model_format(tmp_path, kind):
    import zoo

    keras.utils.set_random_seed(3)
    source = zoo.create_model("lenet_bn", num_classes=4)
    kb.io.save_model(source, tmp_path / kind)
    twin = zoo.create_model("lenet_bn", num_classes=4)
    report = kb.io.load_weights(twin, tmp_path / kind)
    assert report.ok and len(report.loaded) == len(twin.weights)
    x = np.ones((2, 28, 28, 1), "float32")
    np.testing.assert_array_equal(twin(x), source(x))
    other = zoo.create_model("lenet_bn", num_classes=5)
    with pytest.raises(kb.io.WeightsMismatchError) as info:
        kb.io.load_weights(other, tmp_path / kind)
    assert info.value.report.mismatched == [
        ("predictions/kernel", (84, 4), (84, 5)),
        ("predictions/bias", (4,), (5,)),
    ]
    partial = kb.io.load_weights(other, tmp_path / kind, strict=False)
    assert len(partial.loaded) == len(other.weights) - 2


def test_tie_holds_through_a_weights_file(tmp_path):
    def tied():
        shared = keras.layers.Dense(4, activation="tanh", name="shared")
        return kb.SequentialBlock(shared, shared, keras.layers.Dense(2))

    net = tied()
    x = tf.random.stateless_uniform((3, 4), seed=(8, 8))
    y = net(x)
    kb.io.save_weights(net, tmp_path / "tied.weights")
    twin = tied()
    report = kb.io.load_weights(twin, tmp_path / "tied.weights")
    assert report.ok and len(report.loaded) == 4  # the shared pair once
    np.testing.assert_array_equal(twin(x), y)
    assert twin[0] is twin[1] and len(twin.weights) == 4


def test_failed_sharded_save_leaves_the_previous_files(tmp_path, monkeypatch):
    def build():
        dense = [keras.layers.Dense(32) for _ in range(3)]
        return keras.Sequential([keras.Input((4,)), *dense])

    keras.utils.set_random_seed(3)
    model = build()
    path = tmp_path / "m.weights.json"
    shard_size = 0.000005  # GB: about 5 kB, so several shards
    kb.io.save_weights(model, path, max_shard_size=shard_size)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert len(before) >= 3
    expected = model.get_weights()
    for variable in model.weights:
        variable.assign(keras.ops.ones_like(variable))

    def fail_at_the_index(source, target):
        if target.endswith(".weights.json"):
            raise OSError("disk full")
        os.replace(source, target)

    monkeypatch.setattr(keras_weights, "_move", fail_at_the_index)
    with pytest.raises(OSError, match="disk full"):
        kb.io.save_weights(model, path, max_shard_size=shard_size)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    twin = build()
    kb.io.load_weights(twin, path)
    for value, want in zip(twin.get_weights(), expected, strict=True):
        np.testing.assert_array_equal(value, want)
    # A kill at any point of the swap (no rollback runs, the scratch of
    # the dead process stays): the next load puts the previous set back.
    moves = 2 * len(before)  # the old set aside, the new set in

    class Killed(BaseException):
        pass

    for kill_at in range(moves):
        calls = []

        def killed_at(source, target, kill_at=kill_at, calls=calls):
            if len(calls) == kill_at:
                raise Killed
            calls.append(target)
            os.replace(source, target)

        monkeypatch.setattr(keras_weights, "_move", killed_at)
        monkeypatch.setattr(keras_weights, "_roll_back", lambda *a: None)
        monkeypatch.setattr(keras_weights, "_discard", lambda scratch: None)
        with pytest.raises(Killed):
            kb.io.save_weights(model, path, max_shard_size=shard_size)
        monkeypatch.undo()
        (scratch,) = [p for p in tmp_path.iterdir() if p.is_dir()]
        dead = scratch.name.replace(f"-{os.getpid()}-", "-999999999-")
        scratch.rename(tmp_path / dead)
        twin = build()
        kb.io.load_weights(twin, path)
        assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
        for value, want in zip(twin.get_weights(), expected, strict=True):
            np.testing.assert_array_equal(value, want)
    # A save that succeeds replaces the whole set (none of the old
    # shards is left behind when the new set has fewer); killed after
    # its last move, its scratch is only cleared by the next load.
    monkeypatch.setattr(keras_weights, "_discard", lambda scratch: None)
    kb.io.save_weights(model, path, max_shard_size=1)
    monkeypatch.undo()
    (scratch,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    scratch.rename(tmp_path / scratch.name.replace(f"-{os.getpid()}-", "-1-"))
    kb.io.load_weights(twin, path)  # pid 1 is alive: not a dead writer's
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 1
    (scratch,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    scratch.rename(tmp_path / scratch.name.replace("-1-", "-999999999-"))
    kb.io.load_weights(twin, path)
    after = {p.name for p in tmp_path.iterdir()}
    assert after == {"m.weights.json", "m_00000.weights.h5"}
    kb.io.load_weights(twin, path)
    assert all(np.all(value == 1) for value in twin.get_weights())
