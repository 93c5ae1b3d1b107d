"""SequentialBlock, Parallel, Residual, repeat, Function and Block."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasblocks as kb
from kerasblocks.layers.function import function_from_name, function_name


@pytest.fixture
def x():
    return tf.random.stateless_uniform((3, 4), seed=(1, 1))


def test_sequential_block_holds_layers_and_callables(x):
    dense = keras.layers.Dense(5, name="d")
    net = kb.SequentialBlock(dense, tf.nn.relu, keras.activations.gelu)
    expected = keras.activations.gelu(tf.nn.relu(dense(x)))
    np.testing.assert_allclose(net(x), expected, rtol=1e-6)
    assert [layer.get_config().get("function") for layer in net][1:] == [
        "tf.nn.relu",
        "gelu",
    ]
    assert len(net) == 3 and net[0] is dense


def test_sequential_block_config_round_trip_keeps_ties(x):
    shared = keras.layers.Dense(4, name="shared")
    net = kb.SequentialBlock(shared, tf.nn.tanh, shared)
    y = net(x)
    config = net.get_config()
    assert config["items"][2] == {"shared_with": 0}
    clone = kb.SequentialBlock.from_config(config)
    assert clone[0] is clone[2]
    clone(x)
    clone.set_weights(net.get_weights())
    np.testing.assert_allclose(clone(x), y, rtol=1e-6)
    assert len(clone.weights) == 2


def test_sequential_block_rejects_non_callables():
    with pytest.raises(
        TypeError, match="takes Keras layers, callables or function names"
    ):
        kb.SequentialBlock(keras.layers.Dense(2), 3)


def test_unregistered_callable_works_but_refuses_config(x):
    net = kb.SequentialBlock(lambda t: t * 2.0)
    np.testing.assert_allclose(net(x), x * 2.0)
    with pytest.raises(ValueError, match="Cannot serialize the callable"):
        net.get_config()


def test_registered_function_serializes(x):
    @kb.register(package="test_composition")
    def double(t):
        return t * 2.0

    net = kb.SequentialBlock(double)
    config = net.get_config()
    assert config["items"][0]["config"]["function"] == "test_composition>double"
    clone = kb.SequentialBlock.from_config(config)
    np.testing.assert_allclose(clone(x), x * 2.0)


def test_function_names_round_trip():
    for fn in (tf.nn.relu, tf.nn.gelu, keras.activations.silu, tf.identity):
        assert function_from_name(function_name(fn)) is fn
    with pytest.raises(ValueError, match="Unknown function 'os.system'"):
        function_from_name("os.system")
    with pytest.raises(ValueError, match="not registered"):
        function_from_name("evil>payload")


@pytest.mark.parametrize(
    "merge, shape", [("concat", (3, 5)), ("add", (3, 2)), ("stack", (3, 2, 2))]
)
def test_parallel_merges(x, merge, shape):
    a, b = keras.layers.Dense(2), keras.layers.Dense(2)
    block = kb.Parallel(a, b, merge=merge) if merge != "concat" else None
    if merge == "concat":
        block = kb.Parallel(a, keras.layers.Dense(3), merge=merge)
    y = block(x)
    assert tuple(y.shape) == shape
    if merge == "add":
        np.testing.assert_allclose(y, a(x) + b(x), rtol=1e-6)
    if merge == "stack":
        np.testing.assert_allclose(y[:, 1], b(x), rtol=1e-6)


def test_parallel_validates(x):
    with pytest.raises(ValueError, match="merge must be one of"):
        kb.Parallel(keras.layers.Dense(2), merge="mul")
    with pytest.raises(ValueError, match="at least one branch"):
        kb.Parallel()
    block = kb.Parallel(
        keras.layers.Dense(2), keras.layers.Dense(3), merge="add"
    )
    with pytest.raises(ValueError, match="needs branches of one shape"):
        block(x)


def test_residual_adds_and_projects(x):
    inner = keras.layers.Dense(4)
    block = kb.Residual(inner, activation="relu")
    np.testing.assert_allclose(block(x), tf.nn.relu(inner(x) + x), rtol=1e-6)
    projected = kb.Residual(
        keras.layers.Dense(6), shortcut=keras.layers.Dense(6)
    )
    assert tuple(projected(x).shape) == (3, 6)


def test_residual_shape_mismatch_is_a_clear_error(x):
    block = kb.Residual(keras.layers.Dense(6))
    with pytest.raises(ValueError, match="pass a shortcut that projects"):
        block(x)


def test_repeat_makes_independent_copies(x):
    stack = kb.repeat(keras.layers.Dense(4, activation="tanh", name="fc"), 3)
    stack(x)
    kernels = [layer.kernel for layer in stack]
    assert [layer.name for layer in stack] == ["fc_0", "fc_1", "fc_2"]
    assert len({id(k) for k in kernels}) == 3
    assert all(layer.activation is keras.activations.tanh for layer in stack)
    with pytest.raises(ValueError, match="n must be a positive int"):
        kb.repeat(keras.layers.Dense(2), 0)


@kb.register(package="test_composition")
class Gate(kb.Block):
    """A block with data-dependent control flow and constructor arguments."""

    def __init__(self, inner, threshold: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        self.inner = inner
        self.threshold = threshold

    def call(self, x):
        y = self.inner(x)
        if tf.reduce_mean(y) > self.threshold:
            y = y - 1.0
        else:
            y = y + 1.0
        return y


def test_block_captures_layer_arguments_and_runs_in_graph(x):
    gate = Gate(keras.layers.Dense(3, name="inner"), threshold=0.0)
    eager = gate(x)
    np.testing.assert_allclose(tf.function(gate)(x), eager, rtol=1e-6)
    np.testing.assert_allclose(
        tf.function(gate, jit_compile=True)(x), eager, rtol=1e-5
    )
    config = gate.get_config()
    assert config["threshold"] == 0.0
    assert config["inner"]["class_name"] == "Dense"
    clone = Gate.from_config(config)
    assert isinstance(clone.inner, keras.layers.Dense)
    assert clone.threshold == 0.0 and clone.name == gate.name


@kb.register(package="test_composition")
class NoKwargs(kb.Block):
    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(2)

    def call(self, x):
        return self.dense(x)


def test_block_without_kwargs_keeps_its_name_through_from_config(x):
    block = NoKwargs()
    block(x)
    clone = NoKwargs.from_config(block.get_config())
    assert clone.name == block.name


def test_block_build_creates_variables_from_a_shape():
    block = Gate(keras.layers.Dense(3))
    block.build((None, 4))
    assert block.built and tuple(block.inner.kernel.shape) == (4, 3)
