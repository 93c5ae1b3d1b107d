"""Stochastic depth (Huang et al., 2016, "Deep Networks with Stochastic
Depth"), as "drop path" in timm: a residual block's branch is dropped
for a whole example at a time.

`DropPath` is the layer the residual blocks put at the end of their
branch; `linear_drop_path_rates` is the usual schedule, a rate growing
linearly with depth from 0 to the model's `drop_path_rate`.
"""

from __future__ import annotations

import keras

from kerasblocks._config import CapturedConfig
from kerasblocks._registry import register


def check_drop_path_rate(value) -> float:
    """`value` as a float, after checking it is a rate in [0, 1)."""
    if isinstance(value, bool) or not (
        isinstance(value, (int, float)) and 0.0 <= value < 1.0
    ):
        raise ValueError(
            f"drop_path_rate must be in [0, 1). Received: drop_path_rate="
            f"{value!r}"
        )
    return float(value)


def linear_drop_path_rates(drop_path_rate: float, num_blocks: int) -> list:
    """timm's schedule: block `i` of `num_blocks` drops its branch with
    probability `drop_path_rate * i / (num_blocks - 1)`.

    Example:

    >>> from kerasblocks.layers.regularization import linear_drop_path_rates
    >>> linear_drop_path_rates(0.3, 4)
    [0.0, 0.1, 0.2, 0.3]
    """
    rate = check_drop_path_rate(drop_path_rate)
    if num_blocks == 1:
        return [0.0]
    # Rounded so that a rate prints as written (0.1, not 0.1000000001).
    return [round(rate * i / (num_blocks - 1), 12) for i in range(num_blocks)]


@register()
class DropPath(CapturedConfig, keras.layers.Layer):
    """Drops the whole input of each example with probability `rate`.

    In training, each example (index on the first axis) is zeroed with
    probability `rate` and kept, multiplied by `1 / (1 - rate)`, with
    probability `1 - rate`, so the expected output equals the input. At
    inference it is the identity. Put on a residual branch,
    `x + DropPath(rate)(f(x))` skips the block for a random subset of
    the batch (stochastic depth).

    The random draws come from a `keras.random.SeedGenerator`, whose
    state advances on every training call: runs are reproducible from
    `seed` and the layer compiles under XLA. Like `keras.layers.Dropout`
    it has no seed state when `rate` is 0.

    Args:
        rate: probability of dropping an example's input, in [0, 1).
        seed: seed of the random draws (None: a random one).

    Input shape: any, with the batch first; the output has the same
    shape.

    Example:

    >>> import numpy as np, kerasblocks
    >>> layer = kerasblocks.layers.DropPath(0.5, seed=0)
    >>> x = np.ones((6, 2), "float32")
    >>> bool((layer(x) == x).numpy().all())  # inference: identity
    True
    >>> sorted(set(layer(x, training=True).numpy().ravel().tolist()))
    [0.0, 2.0]
    """

    def __init__(self, rate: float, *, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(rate, bool) or not (
            isinstance(rate, (int, float)) and 0.0 <= rate < 1.0
        ):
            raise ValueError(f"rate must be in [0, 1). Received: {rate=}")
        if seed is not None and (
            isinstance(seed, bool) or not isinstance(seed, int)
        ):
            raise ValueError(f"seed must be an int or None. Received: {seed=}")
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = None
        if self.rate > 0:
            self.seed_generator = keras.random.SeedGenerator(
                seed, name="seed_generator"
            )
        self.built = True

    def call(self, inputs, training=None):
        if not training or self.seed_generator is None:
            return inputs
        keep = 1.0 - self.rate
        rank = len(inputs.shape)
        shape = (keras.ops.shape(inputs)[0],) + (1,) * (rank - 1)
        noise = keras.random.uniform(
            shape, seed=self.seed_generator, dtype=inputs.dtype
        )
        # floor(keep + u) is 1 with probability keep, else 0.
        mask = keras.ops.floor(keep + noise)
        return inputs * (mask / keep)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)
