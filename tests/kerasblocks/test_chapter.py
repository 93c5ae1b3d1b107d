"""The "Deep Learning Computation" chapter, example by example, on Keras 3.

Each test is one of the book's TensorFlow examples written the way a
Keras 3 user would, asserting the values the book shows. The tests named
`test_book_failure_*` are the places where the book's own code breaks on
TF 2.21 / Keras 3.15; they pass through kerasblocks.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasblocks as kb


@pytest.fixture
def X():
    return tf.random.stateless_uniform((2, 20), seed=(1, 2))


# --- 6.1 Layers and modules -------------------------------------------


def test_sequential_mlp_output_shape(X):
    net = keras.Sequential(
        [keras.layers.Dense(256, activation="relu"), keras.layers.Dense(10)]
    )
    assert net(X).shape == (2, 10)


def test_mlp_block_output_and_parameter_count(X):
    net = kb.layers.MLP()
    assert net(X).shape == (2, 10)
    # 20*256 + 256 + 256*10 + 10
    assert kb.params.count_parameters(net) == 7946


def test_my_sequential_runs_layers_in_order(X):
    first = keras.layers.Dense(256, activation="relu")
    second = keras.layers.Dense(10)
    net = kb.SequentialBlock(first, second)
    expected = second(first(X))
    np.testing.assert_allclose(net(X), expected, rtol=1e-6)
    assert list(net.named_children()) == [first.name, second.name]


def _fixed_hidden_reference(net, x):
    """The book's FixedHiddenMLP computation, written out in NumPy."""
    x = np.asarray(x).reshape(x.shape[0], -1)
    h = np.maximum(x @ np.asarray(net.rand_weight) + 1.0, 0.0)
    h = np.maximum(h @ np.asarray(net.dense.kernel) + net.dense.bias, 0.0)
    while np.abs(h).sum() > 1.0:
        h = h / 2.0
    if h.sum() < 0.8:
        h = h * 10.0
    return h.sum()


def test_book_failure_fixed_hidden_mlp_runs_in_graph_xla(X):
    net = kb.layers.FixedHiddenMLP(seed=3)
    eager = net(X)
    reference = _fixed_hidden_reference(net, X)
    graph = tf.function(net)(X)
    xla = tf.function(net, jit_compile=True)(X)
    assert eager.shape == ()
    np.testing.assert_allclose(eager, reference, rtol=1e-5)
    np.testing.assert_allclose(graph, reference, rtol=1e-5)
    np.testing.assert_allclose(xla, reference, rtol=1e-5)


def test_book_failure_plain_keras_model_with_while_fails_in_graph(X):
    """Documents the Keras 3 behaviour kerasblocks.Block fixes."""

    class Book(keras.Model):
        def call(self, x):
            while tf.reduce_sum(tf.abs(x)) > 1:
                x = x / 2
            return x

    with pytest.raises(tf.errors.OperatorNotAllowedInGraphError):
        tf.function(Book())(X)


def test_book_failure_fixed_hidden_mlp_trains_with_fit():
    x = np.random.default_rng(0).uniform(size=(64, 20)).astype("float32")
    y = np.random.default_rng(1).uniform(size=(64, 20)).astype("float32")
    net = kb.layers.FixedHiddenMLP(reduce=None, seed=0)
    net.compile(optimizer="sgd", loss="mse")
    history = net.fit(x, y, batch_size=16, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2
    assert all(np.isfinite(history.history["loss"]))
    net.compile(optimizer="sgd", loss="mse", jit_compile=True)
    assert np.isfinite(net.fit(x, y, epochs=1, verbose=0).history["loss"][0])


def test_book_failure_chimera_runs_in_graph_and_xla(X):
    chimera = keras.Sequential(
        [
            kb.layers.NestMLP(),
            keras.layers.Dense(20),
            kb.layers.FixedHiddenMLP(seed=1),
        ]
    )
    eager = chimera(X)
    np.testing.assert_allclose(tf.function(chimera)(X), eager, rtol=1e-5)
    np.testing.assert_allclose(
        tf.function(chimera, jit_compile=True)(X), eager, rtol=1e-5
    )
    assert eager.shape == ()


def test_nest_mlp_shapes(X):
    net = kb.layers.NestMLP()
    assert net(X).shape == (2, 16)
    assert [tuple(v.shape) for v in net.net.weights] == [
        (20, 64),
        (64,),
        (64, 32),
        (32,),
    ]


# --- 6.2 Parameter management -----------------------------------------


@pytest.fixture
def small_net():
    net = keras.Sequential(
        [
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(4, activation="relu", name="hidden"),
            keras.layers.Dense(1, name="output"),
        ],
        name="net",
    )
    net(tf.random.stateless_uniform((2, 4), seed=(0, 1)))
    return net


def test_parameter_access_by_path(small_net):
    params = kb.params.named_parameters(small_net)
    assert list(params) == [
        "net/hidden/kernel",
        "net/hidden/bias",
        "net/output/kernel",
        "net/output/bias",
    ]
    assert params["net/output/bias"] is small_net.layers[2].bias
    assert tuple(params["net/hidden/kernel"].shape) == (4, 4)
    kernels = kb.params.named_parameters(small_net, "*/kernel")
    assert list(kernels) == ["net/hidden/kernel", "net/output/kernel"]


def test_nested_blocks_parameter_table():
    def block1(name):
        return keras.Sequential(
            [
                keras.layers.Flatten(),
                keras.layers.Dense(4, activation="relu", name="d0"),
            ],
            name=name,
        )

    def block2():
        return keras.Sequential([block1(f"block{i}") for i in range(4)])

    rgnet = keras.Sequential([block2(), keras.layers.Dense(1)])
    kb.materialize(rgnet, (None, 4))
    table = kb.params.parameter_table(rgnet)
    assert len(table) == 10
    assert [row.path for row in table][:2] == [
        f"{rgnet.name}/{rgnet.layers[0].name}/block0/d0/kernel",
        f"{rgnet.name}/{rgnet.layers[0].name}/block0/d0/bias",
    ]
    assert table.total == 4 * (4 * 4 + 4) + 4 + 1
    text = str(table)
    assert "block3/d0/kernel" in text and "total: 85 parameters" in text


def test_builtin_initialization(small_net):
    kb.params.apply_init(
        small_net,
        {
            "*/kernel": keras.initializers.RandomNormal(0.0, 0.01, seed=0),
            "*/bias": "zeros",
        },
    )
    kernel = np.asarray(small_net.layers[1].kernel)
    assert abs(kernel.std() - 0.01) < 0.008
    assert np.all(np.asarray(small_net.layers[1].bias) == 0)
    kb.params.apply_init(
        small_net, {"*/kernel": keras.initializers.Constant(1)}
    )
    assert np.all(np.asarray(small_net.layers[1].kernel) == 1)


def test_different_initializers_per_layer(small_net):
    changed = kb.params.apply_init(
        small_net,
        {
            "net/hidden/kernel": keras.initializers.GlorotUniform(seed=1),
            "net/output/kernel": keras.initializers.Constant(42),
        },
    )
    assert changed == ["net/hidden/kernel", "net/output/kernel"]
    assert np.all(np.asarray(small_net.layers[2].kernel) == 42)
    limit = np.sqrt(6 / (4 + 4))
    assert np.all(np.abs(np.asarray(small_net.layers[1].kernel)) <= limit)


def test_custom_initializer_my_init(small_net):
    kb.params.apply_init(
        small_net, {"*/kernel": kb.initializers.MyInit(seed=0)}
    )
    kernel = np.asarray(small_net.layers[1].kernel)
    assert np.all(
        (kernel == 0) | ((np.abs(kernel) >= 5) & (np.abs(kernel) <= 10))
    )
    assert np.any(kernel != 0)


def test_set_parameters_directly(small_net):
    kernel = small_net.layers[1].kernel
    kernel.assign(kernel + 1)
    kernel.value[0, 0].assign(42.0)
    assert float(np.asarray(kernel)[0, 0]) == 42.0


def test_tied_parameters_in_sequential():
    shared = keras.layers.Dense(8, activation="relu", name="shared")
    net = keras.Sequential(
        [
            keras.Input((20,)),
            keras.layers.Dense(8, name="first"),
            shared,
            shared,
            keras.layers.Dense(1, name="last"),
        ]
    )
    assert net.layers[1] is net.layers[2]
    assert net.layers[1].kernel is net.layers[2].kernel
    net.layers[1].kernel.value[0, 0].assign(100.0)
    assert float(np.asarray(net.layers[2].kernel)[0, 0]) == 100.0
    assert kb.params.tied_layers(net) == {"shared": 2}
    rows = {row.path: row for row in kb.params.parameter_table(net)}
    assert rows[shared.kernel.path].tie_group.startswith("tie0")
    assert rows[net.layers[0].kernel.path].tie_group == ""


def test_tied_gradients_accumulate_into_one_variable():
    x = tf.random.stateless_uniform((4, 8), seed=(3, 4))
    shared = keras.layers.Dense(8, activation="tanh", name="shared")
    tied = kb.SequentialBlock(shared, shared)
    tied(x)
    # Two independent copies holding the same values.
    a = keras.layers.Dense(8, activation="tanh")
    b = keras.layers.Dense(8, activation="tanh")
    untied = kb.SequentialBlock(a, b)
    untied(x)
    for layer in (a, b):
        layer.set_weights(shared.get_weights())
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tied(x) ** 2)
    (g_tied,) = tape.gradient(loss, [shared.kernel.value])
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(untied(x) ** 2)
    g_a, g_b = tape.gradient(loss, [a.kernel.value, b.kernel.value])
    assert len(tied.trainable_variables) == 2
    np.testing.assert_allclose(g_tied, g_a + g_b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("suffix", [".keras", ".h5", "unzipped"])
def test_book_failure_tied_sequential_reloads_tied(tmp_path, suffix):
    shared = keras.layers.Dense(8, activation="relu", name="shared")
    net = keras.Sequential(
        [
            keras.Input((20,)),
            keras.layers.Dense(8),
            shared,
            shared,
            keras.layers.Dense(1),
        ]
    )
    x = tf.random.stateless_uniform((3, 20), seed=(5, 6))
    expected = net(x)
    path = tmp_path / f"tied{suffix}"
    kb.io.save_model(net, path, zipped=suffix != "unzipped")
    restored = kb.io.load_model(path)
    np.testing.assert_allclose(restored(x), expected, rtol=1e-6)
    assert restored.layers[1] is restored.layers[2]
    assert len(restored.weights) == 6
    assert kb.params.tied_layers(restored) == {"shared": 2}


def test_plain_keras_cannot_reload_tied_sequential(tmp_path):
    """The Keras 3.15 bug kerasblocks.io works around."""
    shared = keras.layers.Dense(4, name="shared")
    net = keras.Sequential([keras.Input((4,)), shared, shared])
    net.save(tmp_path / "tied.keras")
    # Keras silently drops the second use of the layer...
    assert len(keras.saving.load_model(tmp_path / "tied.keras").layers) == 1
    # ...and fails outright when other layers follow it.
    net = keras.Sequential(
        [keras.Input((4,)), shared, shared, keras.layers.Dense(2)]
    )
    net.save(tmp_path / "tied2.keras")
    with pytest.raises(ValueError, match="expected 2 variables"):
        keras.saving.load_model(tmp_path / "tied2.keras")
    kb.io.save_model(net, tmp_path / "tied3.keras")
    assert len(kb.io.load_model(tmp_path / "tied3.keras").layers) == 3


# --- 6.3 Lazy initialization ------------------------------------------


def test_deferred_initialization():
    net = keras.Sequential(
        [keras.layers.Dense(256, activation="relu"), keras.layers.Dense(10)]
    )
    assert [layer.get_weights() for layer in net.layers] == [[], []]
    with pytest.raises(kb.NotBuiltError, match="materialize"):
        kb.params.parameter_table(net)
    spec = kb.materialize(net, (None, 20))
    assert spec == tf.TensorSpec((None, 10), tf.float32)
    shapes = [row.shape for row in kb.params.parameter_table(net)]
    assert shapes == [(20, 256), (256,), (256, 10), (10,)]
