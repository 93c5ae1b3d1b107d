"""`DropPath` and the drop-path schedule beyond the conformance spec."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasblocks as kb
from kerasblocks.layers.regularization import linear_drop_path_rates


def _kept(outputs: np.ndarray, inputs: np.ndarray, rate: float):
    """Per example: True if kept (scaled), False if dropped; asserts it
    is one or the other for the whole example."""
    kept = []
    for out, x in zip(outputs, inputs, strict=True):
        if np.all(out == 0):
            kept.append(False)
        else:
            np.testing.assert_allclose(out, x / (1 - rate), rtol=1e-6)
            kept.append(True)
    return np.array(kept)


def test_drop_path_drops_whole_examples_at_the_rate_and_scales_the_kept():
    rate, n = 0.3, 4000
    layer = kb.layers.DropPath(rate, seed=7)
    x = np.random.default_rng(0).uniform(1, 2, (n, 3, 2)).astype("float32")
    np.testing.assert_array_equal(layer(x), x)  # inference: identity
    np.testing.assert_array_equal(layer(x, training=False), x)
    kept = _kept(keras.ops.convert_to_numpy(layer(x, training=True)), x, rate)
    # Binomial(4000, 0.3): standard deviation 0.0072 of the fraction.
    assert abs((1 - kept.mean()) - rate) < 0.03
    # A new draw per call.
    again = _kept(keras.ops.convert_to_numpy(layer(x, training=True)), x, rate)
    assert (kept != again).any()


def test_drop_path_is_reproducible_from_its_seed_and_runs_under_xla():
    x = np.ones((64, 4), "float32")

    def draws(jit_compile):
        layer = kb.layers.DropPath(0.5, seed=3)
        step = tf.function(
            lambda t: layer(t, training=True), jit_compile=jit_compile
        )
        return [keras.ops.convert_to_numpy(step(x)) for _ in range(2)]

    xla, again = draws(True), draws(True)
    for first, second in zip(xla, again, strict=True):
        np.testing.assert_array_equal(first, second)
    assert set(np.unique(xla[0])) == {0.0, 2.0}
    _kept(xla[0], x, 0.5)  # whole examples under XLA too
    assert (xla[0] != xla[1]).any()  # the seed state advanced


def test_drop_path_gradient_is_the_mask_over_keep():
    layer = kb.layers.DropPath(0.5, seed=5)
    x = tf.Variable(np.ones((32, 3), "float32"))
    with tf.GradientTape() as tape:
        y = layer(x, training=True)
        loss = tf.reduce_sum(y)
    gradient = tape.gradient(loss, x).numpy()
    np.testing.assert_array_equal(gradient, keras.ops.convert_to_numpy(y))
    assert 0 < (gradient == 0).sum() < gradient.size


def test_drop_path_at_rate_zero_has_no_random_state():
    layer = kb.layers.DropPath(0.0)
    x = np.ones((2, 3), "float32")
    np.testing.assert_array_equal(layer(x, training=True), x)
    assert layer.seed_generator is None and not layer.variables


@pytest.mark.parametrize("rate", [-0.1, 1.0, True, "0.1"])
def test_drop_path_rejects_bad_rates(rate):
    with pytest.raises(ValueError, match="rate must be in"):
        kb.layers.DropPath(rate)


def test_linear_drop_path_rates_follow_timm():
    assert linear_drop_path_rates(0.2, 5) == [0.0, 0.05, 0.1, 0.15, 0.2]
    assert linear_drop_path_rates(0.2, 1) == [0.0]
    np.testing.assert_allclose(
        linear_drop_path_rates(0.1, 12), np.linspace(0, 0.1, 12)
    )
    with pytest.raises(ValueError, match="drop_path_rate must be in"):
        linear_drop_path_rates(1.5, 3)
