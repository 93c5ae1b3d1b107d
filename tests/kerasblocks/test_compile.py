"""kerasblocks.compile: modes, retracing, diagnostics, train steps."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasblocks as kb
from kerasblocks.compile import (
    XlaCompilationError,
    compile_forward,
    compile_train_step,
)


class Histogram(keras.layers.Layer):
    """Uses HistogramFixedWidth, which has no XLA kernel."""

    def call(self, x):
        counts = tf.histogram_fixed_width(x, [0.0, 1.0], nbins=5)
        return x * tf.cast(tf.reduce_sum(counts), x.dtype)


def _histogram_model():
    x = keras.Input((4,))
    y = Histogram(name="hist")(keras.layers.Dense(4, name="d0")(x))
    return keras.Model(x, y, name="histnet")


def _mlp(seed=0):
    keras.utils.set_random_seed(seed)
    net = kb.layers.MLP(hidden_units=16, units=3, name="mlp")
    kb.materialize(net, (None, 5))
    return net


@pytest.mark.parametrize("mode", ["eager", "graph", "xla", "auto"])
def test_forward_modes_agree_and_never_retrace(mode):
    net = _mlp()
    forward = compile_forward(net, (None, 5), mode=mode)
    rng = np.random.default_rng(0)
    for n in (1, 7, 32):
        x = rng.uniform(size=(n, 5)).astype("float32")
        np.testing.assert_allclose(forward(x), net(x), rtol=1e-5, atol=1e-6)
    assert forward.mode in ("eager", "graph", "xla")
    if mode != "auto":
        assert forward.mode == mode
    assert forward.trace_count == (0 if forward.mode == "eager" else 1)


def test_auto_reports_measurements():
    forward = compile_forward(_mlp(), (None, 5), mode="auto")
    forward(np.ones((8, 5)))
    choice = forward.choice
    assert set(choice.median_ms) == {"graph", "xla"}
    assert set(choice.first_call_seconds) == {"graph", "xla"}
    assert choice.mode == min(choice.median_ms, key=choice.median_ms.get)
    assert str(choice).startswith(f"mode={choice.mode} (auto: XLA speed-up x")


def test_xla_failure_names_layer_and_op():
    forward = compile_forward(_histogram_model(), mode="xla")
    with pytest.raises(XlaCompilationError) as info:
        forward(np.ones((2, 4)))
    assert info.value.layer_path == "histnet/hist"
    assert info.value.op == "HistogramFixedWidth"
    assert "layer 'histnet/hist' uses op HistogramFixedWidth" in str(info.value)


def test_auto_falls_back_to_graph_with_a_warning():
    model = _histogram_model()
    forward = compile_forward(model, mode="auto")
    with pytest.warns(UserWarning, match="Falling back to mode='graph'"):
        y = forward(np.ones((2, 4), "float32"))
    assert forward.mode == "graph"
    np.testing.assert_allclose(y, model(np.ones((2, 4))), rtol=1e-6)


def test_bad_inputs_get_one_clear_error():
    forward = compile_forward(_mlp(), (None, 5), mode="graph")
    with pytest.raises(
        ValueError,
        match=r"expected shape=\(None, 5\) dtype=float32, "
        r"received shape=\(2, 4\) dtype=float32",
    ):
        forward(np.ones((2, 4)))
    with pytest.raises(
        ValueError, match="received shape=\\(2, 5\\) dtype=int32"
    ):
        forward(tf.ones((2, 5), tf.int32))
    with pytest.raises(ValueError, match="the batch is empty"):
        forward(np.ones((0, 5)))
    with pytest.raises(
        ValueError,
        match="Unknown mode 'fast'. Valid modes: eager, graph, xla, auto",
    ):
        compile_forward(_mlp(), (None, 5), mode="fast")
    with pytest.raises(ValueError, match="has no input spec"):
        compile_forward(kb.layers.MLP())


@pytest.mark.parametrize("mode", ["eager", "graph", "xla"])
def test_train_step_matches_a_hand_written_step(mode):
    x = np.random.default_rng(1).uniform(size=(8, 5)).astype("float32")
    y = np.random.default_rng(2).integers(0, 3, size=(8,)).astype("int32")
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    reference = _mlp(seed=3)
    optimizer = keras.optimizers.SGD(0.1)
    for _ in range(3):
        with tf.GradientTape() as tape:
            value = loss(y, reference(x, training=True))
        grads = tape.gradient(value, reference.trainable_variables)
        optimizer.apply(grads, reference.trainable_variables)
    net = _mlp(seed=3)
    step = compile_train_step(
        net, keras.optimizers.SGD(0.1), loss, (None, 5), mode=mode
    )
    for batch in (8, 3, 1):  # a different batch size must not retrace
        step(x[:batch], y[:batch])
    assert step.trace_count == (0 if mode == "eager" else 1)
    net2 = _mlp(seed=3)
    step2 = compile_train_step(
        net2, keras.optimizers.SGD(0.1), loss, (None, 5), mode=mode
    )
    for _ in range(3):
        step2(x, y)
    for a, b in zip(net2.weights, reference.weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


def test_auto_train_step_undoes_its_measurements():
    x = np.ones((4, 5), "float32")
    y = np.zeros((4, 3), "float32")

    def step(mode):
        return compile_train_step(
            _mlp(seed=4),
            keras.optimizers.Adam(0.01),
            "mse",
            mode=mode,
            input_spec=(None, 5),
        )

    auto, graph = step("auto"), step("graph")
    first_auto, first_graph = auto(x, y), graph(x, y)
    np.testing.assert_allclose(
        first_auto["loss"], first_graph["loss"], rtol=1e-6
    )
    assert auto.mode in ("graph", "xla")
    # Twins of one seed: the same weights after one step each.
    for a, b in zip(auto.model.weights, graph.model.weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
    assert int(auto.optimizer.iterations) == 1


def test_steps_per_execution_and_metrics():
    data = (
        tf.data.Dataset.from_tensor_slices(
            (np.ones((64, 5), "float32"), np.zeros((64,), "int32"))
        )
        .batch(8)
        .repeat()
    )
    accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    step = compile_train_step(
        _mlp(),
        keras.optimizers.Adam(0.05),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        (None, 5),
        mode="graph",
        steps_per_execution=4,
        metrics=[accuracy],
    )
    iterator = iter(data)
    first = step.run(iterator, 4)
    last = step.run(iterator, 8)
    assert int(step.optimizer.iterations) == 12
    assert last["loss"] < first["loss"]
    assert last["accuracy"] == 1.0
    with pytest.raises(
        ValueError, match="steps_per_execution must be a positive"
    ):
        compile_train_step(
            _mlp(), "sgd", "mse", (None, 5), steps_per_execution=0
        )


@pytest.mark.parametrize("name", ["mirrored", "one_device"])
def test_train_step_under_a_strategy(name):
    strategy = kb.devices.strategy(name)
    with strategy.scope():
        net = _mlp(seed=5)
        optimizer = keras.optimizers.SGD(0.1)
    step = compile_train_step(
        net,
        optimizer,
        "mse",
        (None, 5),
        mode="graph",
        strategy=strategy,
        steps_per_execution=2,
    )
    data = (
        tf.data.Dataset.from_tensor_slices(
            (np.ones((32, 5), "float32"), np.zeros((32, 3), "float32"))
        )
        .batch(8)
        .repeat()
    )
    iterator = iter(strategy.experimental_distribute_dataset(data))
    first = step.run(iterator, 2)
    last = step.run(iterator, 4)
    assert last["loss"] < first["loss"]


def test_model_outside_the_strategy_scope_is_refused():
    strategy = kb.devices.strategy("mirrored")
    with pytest.raises(ValueError, match="not created under the strategy"):
        compile_train_step(_mlp(), "sgd", "mse", (None, 5), strategy=strategy)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision(policy):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        net = kb.layers.MLP(hidden_units=16, units=3)
        kb.materialize(net, (None, 5))
    finally:
        keras.config.set_dtype_policy(previous)
    step = compile_train_step(
        net, keras.optimizers.SGD(0.1), "mse", (None, 5), mode="graph"
    )
    scaled = isinstance(step.optimizer, keras.optimizers.LossScaleOptimizer)
    assert scaled == (policy == "mixed_float16")
    x, y = np.ones((4, 5), "float32"), np.zeros((4, 3), "float32")
    losses = [step(x, y)["loss"] for _ in range(3)]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert net.hidden.kernel.dtype == "float32"
