"""Batch normalization from scratch (the book's `BatchNorm` layer).

Training mode normalizes with the batch's mean and (biased) variance and
moves the running statistics towards them; inference mode uses the
running statistics. With `momentum=0.9, epsilon=1e-5` it matches
`keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5)`.
"""

from __future__ import annotations

import keras

from kerasblocks._config import CapturedConfig
from kerasblocks._registry import register
from kerasblocks.layers._checks import known_last_dim


@register()
class BatchNorm(CapturedConfig, keras.layers.Layer):
    """Batch normalization over every axis but the last, from scratch.

    Args:
        momentum: weight of the old running statistic in each update
            (`new = momentum * old + (1 - momentum) * batch`); the book's
            0.9.
        epsilon: added to the variance (the book's 1e-5).

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> bn = kerasblocks.layers.BatchNorm()
    >>> y = bn(tf.constant([[1.0], [3.0]]), training=True)
    >>> [round(v, 3) for v in y.numpy()[:, 0].tolist()]
    [-1.0, 1.0]
    >>> round(float(bn.moving_mean.numpy()[0]), 3)
    0.2
    """

    def __init__(self, momentum: float = 0.9, epsilon: float = 1e-5, **kwargs):
        if not 0.0 <= momentum < 1.0:
            raise ValueError(
                f"momentum must be in [0, 1). Received: {momentum=}"
            )
        if epsilon <= 0:
            raise ValueError(f"epsilon must be positive. Received: {epsilon=}")
        super().__init__(**kwargs)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        channels = known_last_dim("BatchNorm", input_shape)
        shape = (channels,)
        self.gamma = self.add_weight(
            name="gamma", shape=shape, initializer="ones"
        )
        self.beta = self.add_weight(
            name="beta", shape=shape, initializer="zeros"
        )
        self.moving_mean = self.add_weight(
            name="moving_mean",
            shape=shape,
            initializer="zeros",
            trainable=False,
        )
        self.moving_variance = self.add_weight(
            name="moving_variance",
            shape=shape,
            initializer="ones",
            trainable=False,
        )
        self.input_spec = keras.layers.InputSpec(
            min_ndim=2, axes={-1: channels}
        )

    def call(self, inputs, training=None):
        if training:
            axes = list(range(len(inputs.shape) - 1))
            mean = keras.ops.mean(inputs, axis=axes)
            variance = keras.ops.mean(
                keras.ops.square(inputs - keras.ops.stop_gradient(mean)),
                axis=axes,
            )
            for variable, value in (
                (self.moving_mean, mean),
                (self.moving_variance, variance),
            ):
                variable.assign(
                    self.momentum * variable + (1.0 - self.momentum) * value
                )
        else:
            mean, variance = self.moving_mean, self.moving_variance
        scale = self.gamma * keras.ops.rsqrt(variance + self.epsilon)
        return (inputs - mean) * scale + self.beta

    def compute_output_shape(self, input_shape):
        return input_shape
