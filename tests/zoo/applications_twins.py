"""What the keras.applications twin tests share: statistics moved away
from their initial values, port-and-compare on one seeded batch, and
parameter counts split by trainability.

Test modules run under `--import-mode=importlib`, so they load this file
by its path, not as a package.
"""

import math
from collections.abc import Callable

import keras
import numpy as np

import zoo


def randomize_statistics(model: keras.Model, seed: int = 0) -> None:
    """Batch-norm statistics and affine weights (and an input
    normalization's mean and variance) away from their initial values,
    so that a port that misplaces one shows in the outputs."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        name = variable.path.rsplit("/", 1)[1]
        if name in ("gamma", "moving_variance"):
            value = rng.uniform(0.5, 1.5, variable.shape)
        elif name in ("beta", "moving_mean"):
            value = rng.uniform(-0.3, 0.3, variable.shape)
        elif name == "mean":  # EfficientNet's input normalization
            value = rng.uniform(0.4, 0.5, variable.shape)
        elif name == "variance":
            value = rng.uniform(0.04, 0.06, variable.shape)
        else:
            continue
        variable.assign(value.astype(variable.dtype))


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


def trainable_and_not(model: keras.Model) -> tuple[int, int]:
    """(trainable, non-trainable) parameter counts of `model`."""
    return (
        sum(math.prod(v.shape) for v in model.trainable_weights),
        sum(math.prod(v.shape) for v in model.non_trainable_weights),
    )
