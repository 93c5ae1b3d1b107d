"""What the keras.applications twin tests share: statistics moved away
from their initial values, port-and-compare on one seeded batch, the
check that both gave the same outputs, impostors that a port must
refuse, and parameter counts split by trainability.

Test modules run under `--import-mode=importlib`, so they load this file
by its path, not as a package.
"""

import math
from collections.abc import Callable

import keras
import numpy as np
import pytest

import zoo
from kerasblocks._keras_compat import flatten_layers


def randomize_statistics(model: keras.Model, seed: int = 0) -> None:
    """Trained-like weights: every variable of `model` (each once),
    statistics included, moved away from its initial value, so that a
    port that misplaces or drops one shows in the outputs.

    Batch-norm statistics and affine weights, and an input
    Normalization's mean, variance and count, get plausible trained
    values; every other array is its fresh value scaled elementwise by
    0.5-1.5 plus a small offset. Asserts that no array is left equal to
    its fresh value.
    """
    rng = np.random.default_rng(seed)
    seen = set()
    for variable in model.weights:
        if id(variable) in seen:
            continue
        seen.add(id(variable))
        fresh = keras.ops.convert_to_numpy(variable)
        name = variable.path.rsplit("/", 1)[1]
        shape = variable.shape
        if name in ("gamma", "moving_variance"):
            value = rng.uniform(0.5, 1.5, shape)
        elif name in ("beta", "moving_mean"):
            value = rng.uniform(-0.3, 0.3, shape)
        elif name == "mean":  # an input Normalization's statistics
            value = rng.uniform(0.4, 0.5, shape)
        elif name == "variance":
            value = rng.uniform(0.04, 0.06, shape)
        elif np.issubdtype(fresh.dtype, np.integer):  # a count
            value = fresh + rng.integers(1, 1000, shape)
        else:
            scale = np.abs(fresh).mean() + 1e-2
            value = fresh * rng.uniform(0.5, 1.5, shape)
            value += rng.normal(0.0, 0.1 * scale, shape)
        value = np.asarray(value).astype(fresh.dtype)
        variable.assign(value)
        assert not np.array_equal(
            keras.ops.convert_to_numpy(variable), fresh
        ), f"{variable.path} kept its fresh value"
    # A Normalization computes with what it derived from its variables.
    for layer in flatten_layers(model):
        if isinstance(layer, keras.layers.Normalization):
            layer.finalize_state()


def ported_outputs(
    keras_model: keras.Model,
    seed: int = 0,
    *,
    batch: int = 1,
    pixels: tuple[float, float] = (-1.0, 1.0),
    randomize: Callable = randomize_statistics,
) -> tuple[keras.Model, np.ndarray, np.ndarray]:
    """`randomize(keras_model, seed)`, then its zoo twin by
    `zoo.from_keras_applications`, and both models' inference outputs
    on one seeded batch uniform in `pixels`: (twin, twin's outputs,
    keras_model's outputs)."""
    keras.utils.set_random_seed(seed)
    randomize(keras_model, seed)
    model = zoo.from_keras_applications(keras_model)
    # The twin's input shape: keras.applications' may leave the size
    # open (None), which the port fixes.
    shape = (batch, *model.input_shape[1:])
    x = np.random.default_rng(seed).uniform(*pixels, shape)
    x = x.astype("float32")
    expected = keras.ops.convert_to_numpy(keras_model(x, training=False))
    actual = keras.ops.convert_to_numpy(model(x, training=False))
    return model, actual, expected


def assert_same_outputs(actual, expected, shape, *, spread=None) -> None:
    """The twin's outputs `actual` equal keras.applications' `expected`
    (both of `shape`) within 1e-4; with `spread`, the expected outputs'
    standard deviation exceeds it, so they are not trivially equal."""
    assert actual.shape == expected.shape == shape
    if spread is not None:
        assert np.std(expected) > spread
    assert np.max(np.abs(actual - expected)) <= 1e-4


def truncated(keras_model: keras.Model, last: str, name: str) -> keras.Model:
    """`keras_model` ending at its layer `last`, under the name `name`:
    an impostor whose port misses the weights after it."""
    return keras.Model(
        keras_model.input, keras_model.get_layer(last).output, name=name
    )


def assert_port_refused(keras_model: keras.Model, match: str) -> None:
    """Porting `keras_model` raises a ValueError matching `match`."""
    with pytest.raises(ValueError, match=match):
        zoo.from_keras_applications(keras_model)


def trainable_and_not(model: keras.Model) -> tuple[int, int]:
    """(trainable, non-trainable) parameter counts of `model`."""
    return (
        sum(math.prod(v.shape) for v in model.trainable_weights),
        sum(math.prod(v.shape) for v in model.non_trainable_weights),
    )
