"""A corpus of hostile files: each is refused before anything from it runs.

Every hostile payload, if it ran, would create a sentinel file; each test
asserts the right error and that the sentinel does not exist.
"""

import json
import re
import shutil
import zipfile

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf
from keras.src.saving import serialization_lib

import kerasblocks as kb


@pytest.fixture
def sentinel(tmp_path):
    path = tmp_path / "SENTINEL"
    yield path
    assert not path.exists(), "a payload from a hostile file ran"


def _good_keras(tmp_path):
    net = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(2, name="dense")], name="good"
    )
    path = tmp_path / "good.keras"
    net.save(path)
    return path


def _rewrite_keras(source, target, edit_config=None, extra=None):
    """Copies a .keras archive, editing its config and adding members."""
    with zipfile.ZipFile(source) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    if edit_config:
        config = json.loads(members["config.json"])
        edit_config(config)
        members["config.json"] = json.dumps(config).encode()
    members.update(extra or {})
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return target


def _layer_config(config):
    return config["config"]["layers"][1]


def _armed_lambda_model(tmp_path, sentinel):
    """A Lambda that creates the sentinel once `armed` exists, i.e. only
    if it runs after the file was written (on load)."""
    armed = tmp_path / "armed"
    payload = (
        f"(__import__('os').path.exists({str(armed)!r}) and "
        f"open({str(sentinel)!r}, 'w').close()) or t"
    )
    x = keras.Input((3,))
    model = keras.Model(x, keras.layers.Lambda(eval(f"lambda t: {payload}"))(x))
    return model, armed


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_lambda_payload(tmp_path, sentinel, suffix):
    model, armed = _armed_lambda_model(tmp_path, sentinel)
    model.save(tmp_path / f"lambda{suffix}")
    armed.touch()
    with pytest.raises(kb.io.UnsafeModelError, match="a Lambda layer"):
        kb.io.load_model(tmp_path / f"lambda{suffix}")


def _assert_edit_refused(tmp_path, edit, match, name="evil.keras"):
    """A good .keras file whose config `edit` changed is refused, with a
    message matching `match`."""
    path = _rewrite_keras(_good_keras(tmp_path), tmp_path / name, edit)
    with pytest.raises(kb.io.UnsafeModelError, match=match):
        kb.io.load_model(path)


@pytest.mark.parametrize(
    "module, name, expected",
    [
        ("os", "system", "function os.system"),
        ("builtins", "exec", "function builtins.exec"),
        ("builtins", "__import__", "function builtins.__import__"),
        (None, "eval", "function None.eval"),
        ("keras.activations", "deserialize", "keras.activations.deserialize"),
        ("subprocess", "Popen", "function subprocess.Popen"),
        ("keras.utils", "get_file", "function keras.utils.get_file"),
        (
            "keras.src.saving.saving_lib",
            "load_model",
            "function keras.src.saving",
        ),
    ],
)
def test_config_naming_code(tmp_path, sentinel, module, name, expected):
    def edit(config):
        _layer_config(config)["config"]["activation"] = {
            "module": module,
            "class_name": "function",
            "config": name,
            "registered_name": "function",
        }

    _assert_edit_refused(tmp_path, edit, re.escape(expected))


def test_class_from_a_foreign_module(tmp_path, sentinel):
    def edit(config):
        layer = _layer_config(config)
        layer["module"] = "subprocess"
        layer["class_name"] = "Popen"
        layer["registered_name"] = None
        layer["config"] = {"args": ["touch", str(sentinel)]}

    _assert_edit_refused(tmp_path, edit, "class subprocess.Popen")


def test_unregistered_custom_class(tmp_path, sentinel):
    def edit(config):
        _layer_config(config)["registered_name"] = "attacker>Payload"

    _assert_edit_refused(tmp_path, edit, "unregistered class attacker>Payload")


def test_external_vocabulary_file(tmp_path, sentinel):
    inputs = keras.Input((1,), dtype="string")
    lookup = keras.layers.StringLookup(vocabulary=["a", "b"], name="lookup")
    keras.Model(inputs, lookup(inputs)).save(tmp_path / "vocab.keras")
    secret = tmp_path / "secret.txt"
    secret.write_text("host secrets\n")

    def edit(config):
        _layer_config(config)["config"]["vocabulary"] = str(secret)

    path = _rewrite_keras(
        tmp_path / "vocab.keras", tmp_path / "evil.keras", edit
    )
    with pytest.raises(kb.io.UnsafeModelError, match="reference to file"):
        kb.io.load_model(path)


def test_tfsm_layer_gadget(tmp_path, sentinel):
    def edit(config):
        layer = _layer_config(config)
        layer["class_name"] = "TFSMLayer"
        layer["module"] = "keras.layers"
        layer["config"] = {"filepath": str(tmp_path / "elsewhere"), "name": "x"}

    _assert_edit_refused(tmp_path, edit, "a TFSMLayer layer")


def test_path_traversal_in_archive_and_names(tmp_path, sentinel):
    path = _rewrite_keras(
        _good_keras(tmp_path),
        tmp_path / "traversal.keras",
        extra={"../../SENTINEL": b"x", "/etc/evil": b"x"},
    )
    with pytest.raises(
        kb.io.UnsafeModelError, match="points outside the archive"
    ):
        kb.io.load_model(path)

    def edit(config):
        _layer_config(config)["config"]["name"] = "../../dense"

    _assert_edit_refused(tmp_path, edit, "a path in the name", "name.keras")


def _good_model():
    return keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(2, name="dense")], name="good"
    )


def test_hdf5_external_link(tmp_path, sentinel):
    path = tmp_path / "m.h5"
    _good_model().save(path)  # plain Keras: no checksum seal
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["data"] = np.zeros(3)
    with h5py.File(path, "a") as f:
        f["model_weights/link"] = h5py.ExternalLink(str(other), "/data")
    with pytest.raises(kb.io.UnsafeModelError, match="external link"):
        kb.io.load_model(path)


def test_hdf5_shape_bomb_in_weights(tmp_path, sentinel):
    net = kb.layers.MLP(hidden_units=4, units=2)
    kb.materialize(net, (None, 3))
    path = tmp_path / "bomb.weights"
    with h5py.File(path, "w") as f:  # a weights file without a seal
        f.attrs["format"] = "kerasblocks.weights"
        f.attrs["version"] = 1
        f.attrs["input_spec"] = "null"
        group = f.create_group("variables")
        dataset = group.create_dataset(
            "000000", shape=(10**10,), dtype="float32", chunks=(1024,)
        )
        dataset.attrs["path"] = "hidden/kernel"
    with pytest.raises(
        kb.io.UnsafeModelError, match="declares 40,000,000,000 bytes"
    ):
        kb.io.load_weights(net, path)


def test_oversized_layer_in_config(tmp_path, sentinel):
    def edit(config):
        _layer_config(config)["config"]["units"] = 10**12

    _assert_edit_refused(tmp_path, edit, "oversized units", "huge.keras")


class _Writer(tf.Module):
    def __init__(self, sentinel):
        super().__init__()
        self.sentinel = str(sentinel)
        self.v = tf.Variable(1.0)

    @tf.function(input_signature=[tf.TensorSpec((None, 3), tf.float32)])
    def serve(self, x):
        tf.io.write_file(self.sentinel, "ran")
        size = tf.strings.length(tf.io.read_file(self.sentinel))
        return {"y": x * self.v + tf.cast(size, tf.float32)}


def test_saved_model_that_reads_and_writes_files(tmp_path, sentinel):
    module = _Writer(sentinel)
    directory = tmp_path / "evil_sm"
    tf.saved_model.save(
        module, str(directory), signatures={"serving_default": module.serve}
    )
    problems = kb.io.check_saved_model(directory)
    assert any(p.startswith("op WriteFile") for p in problems)
    assert any(p.startswith("op ReadFile") for p in problems)
    with pytest.raises(
        kb.io.UnsafeModelError, match="op ReadFile|op WriteFile"
    ):
        kb.io.load_model(directory)


def test_clean_export_has_no_problems(tmp_path):
    model = _good_model()
    kb.io.export_saved_model(model, tmp_path / "clean")
    assert kb.io.check_saved_model(tmp_path / "clean") == []


def test_trusted_loads_what_is_refused_by_default(tmp_path):
    x = keras.Input((3,))
    model = keras.Model(x, keras.layers.Lambda(lambda t: t + 1.0)(x))
    kb.io.save_model(model, tmp_path / "lambda.keras")
    restored = kb.io.load_model(tmp_path / "lambda.keras", trusted=True)
    np.testing.assert_allclose(restored(np.zeros((1, 3))), np.ones((1, 3)))
    # trusted=True is scoped to that call: safe mode is not switched off.
    assert serialization_lib.in_safe_mode() is not False


def test_unsafe_error_lists_everything_once(tmp_path):
    def edit(config):
        layer = _layer_config(config)
        layer["config"]["activation"] = {
            "module": "os",
            "class_name": "function",
            "config": "system",
            "registered_name": "function",
        }
        layer["config"]["name"] = "a/b"

    path = _rewrite_keras(_good_keras(tmp_path), tmp_path / "two.keras", edit)
    with pytest.raises(kb.io.UnsafeModelError) as info:
        kb.io.load_model(path)
    assert len(info.value.refused) == 2
    assert str(path) in str(info.value)
    shutil.rmtree(tmp_path, ignore_errors=True)
