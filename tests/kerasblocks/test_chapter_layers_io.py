"""The chapter's custom layers, file I/O and GPU sections on Keras 3.

Like `test_chapter.py` (sections 6.1 to 6.3): each test is one of the
book's TensorFlow examples written the way a Keras 3 user would, and the
`test_book_failure_*` tests are where the book's own code breaks on
TF 2.21 / Keras 3.15 and passes through kerasblocks.
"""

import pickle

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasblocks as kb


@pytest.fixture
def X():
    return tf.random.stateless_uniform((2, 20), seed=(1, 2))


# --- 6.5 Custom layers ------------------------------------------------


def test_centered_layer():
    layer = kb.layers.CenteredLayer()
    out = layer(tf.constant([1.0, 2.0, 3.0, 4.0, 5.0]))
    np.testing.assert_array_equal(out, [-2.0, -1.0, 0.0, 1.0, 2.0])
    net = keras.Sequential([keras.layers.Dense(128), kb.layers.CenteredLayer()])
    y = net(tf.random.stateless_uniform((4, 8), seed=(7, 8)))
    assert abs(float(tf.reduce_mean(y))) < 1e-6


def test_scratch_dense():
    dense = kb.layers.ScratchDense(3)
    x = tf.random.stateless_uniform((2, 5), seed=(9, 10))
    y = dense(x)
    weight, bias = dense.get_weights()
    assert weight.shape == (5, 3) and bias.shape == (3,)
    np.testing.assert_allclose(
        y, np.maximum(x.numpy() @ weight + bias, 0), rtol=1e-6
    )
    net = keras.Sequential(
        [kb.layers.ScratchDense(8), kb.layers.ScratchDense(1)]
    )
    assert net(tf.random.stateless_uniform((2, 64), seed=(1, 1))).shape == (
        2,
        1,
    )


def test_scratch_dense_rejects_wrong_last_dimension_and_rank():
    dense = kb.layers.ScratchDense(3)
    dense(tf.ones((2, 5)))
    with pytest.raises(
        ValueError, match="expected axis -1 of input shape to have value 5"
    ):
        dense(tf.ones((2, 4)))
    with pytest.raises(ValueError, match="expected min_ndim=2"):
        dense(tf.ones((5,)))


def test_mlp_rejects_wrong_last_dimension(X):
    net = kb.layers.MLP()
    net(X)
    with pytest.raises(
        ValueError, match="expected axis -1 of input shape to have value 20"
    ):
        net(tf.ones((2, 7)))


# --- 6.6 File I/O ------------------------------------------------------


def test_save_and_load_tensors_without_pickle(tmp_path, monkeypatch):
    x = tf.range(4)
    y = tf.zeros(4)
    kb.io.save_tensors(tmp_path / "x-file", x)
    kb.io.save_tensors(tmp_path / "x-files", [x, y])
    kb.io.save_tensors(tmp_path / "mydict", {"x": x, "y": y})

    def no_pickle(*args, **kwargs):
        raise AssertionError("pickle must not be used")

    monkeypatch.setattr(pickle, "loads", no_pickle)
    monkeypatch.setattr(pickle, "load", no_pickle)
    x2 = kb.io.load_tensors(tmp_path / "x-file")
    assert x2.dtype == tf.int32 and x2.numpy().tolist() == [0, 1, 2, 3]
    x2, y2 = kb.io.load_tensors(tmp_path / "x-files")
    assert y2.dtype == tf.float32 and y2.numpy().tolist() == [0.0] * 4
    mydict2 = kb.io.load_tensors(tmp_path / "mydict")
    assert list(mydict2) == ["x", "y"]
    assert mydict2["x"].numpy().tolist() == [0, 1, 2, 3]


def test_book_failure_save_weights_with_any_suffix_into_unbuilt_clone(tmp_path):
    net = kb.layers.MLP()
    X = tf.random.stateless_uniform((2, 20), seed=(11, 12))
    Y = net(X)
    kb.io.save_weights(net, tmp_path / "mlp.params")
    clone = kb.layers.MLP()
    assert not clone.built
    report = kb.io.load_weights(clone, tmp_path / "mlp.params")
    assert report.ok and len(report.loaded) == 4
    np.testing.assert_array_equal(clone(X), Y)


def test_plain_keras_refuses_params_suffix(tmp_path):
    """The Keras 3.15 behaviour kerasblocks.io.save_weights replaces."""
    net = kb.layers.MLP()
    net(tf.ones((1, 20)))
    with pytest.raises(ValueError, match="weights.h5"):
        net.save_weights(str(tmp_path / "mlp.params"))


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_book_failure_subclassed_model_with_arguments_saves_whole(
    tmp_path, suffix
):
    net = kb.layers.MLP(hidden_units=32, units=3, activation="tanh")
    X = tf.random.stateless_uniform((2, 20), seed=(1, 3))
    Y = net(X)
    assert net.get_config()["hidden_units"] == 32
    kb.io.save_model(net, tmp_path / f"mlp{suffix}")
    restored = kb.io.load_model(tmp_path / f"mlp{suffix}")
    assert type(restored) is kb.layers.MLP
    assert restored.hidden_units == 32 and restored.activation == "tanh"
    np.testing.assert_array_equal(restored(X), Y)


# --- 6.7 GPUs ----------------------------------------------------------


def test_devices_on_a_machine_without_gpu():
    assert kb.devices.cpu() == "/CPU:0"
    assert kb.devices.num_gpus() == len(tf.config.list_physical_devices("GPU"))
    if kb.devices.num_gpus() == 0:
        assert kb.devices.try_gpu() == "/CPU:0"
        assert kb.devices.try_gpu(10) == "/CPU:0"
        assert kb.devices.try_all_gpus() == ["/CPU:0"]
        with pytest.raises(ValueError, match="GPU 0 does not exist"):
            kb.devices.gpu(0)
    with kb.devices.try_gpu():
        x = tf.ones((2, 3))
    assert x.device.endswith(kb.devices.try_gpu()[1:])


def test_book_failure_variable_devices_replace_weight_device():
    net = keras.Sequential([keras.layers.Dense(1)])
    with pytest.raises(AttributeError):
        net.build((None, 3))
        net.layers[0].weights[0].device  # noqa: B018 - the removed API
    devices = kb.devices.variable_devices(net)
    assert list(devices) == [v.path for v in net.weights]
    assert all(d.endswith("CPU:0") for d in devices.values())


def test_model_under_mirrored_strategy_has_variables_on_cpu():
    strategy = kb.devices.strategy("mirrored")
    with strategy.scope():
        net = kb.layers.MLP(units=1)
        kb.materialize(net, (None, 3))
    devices = kb.devices.variable_devices(net)
    assert len(devices) == 4
    assert all("CPU:0" in d or "GPU" in d for d in devices.values())
