"""NASNet-A's separable block, the main operation of its cells
(`kerasblocks.layers.nasnet`), as keras.applications builds it.

Sublayer names are the weight-file contract.
"""

from __future__ import annotations

import keras

from kerasblocks._config import CapturedConfig
from kerasblocks._registry import register
from kerasblocks._validation import positive_int
from kerasblocks.layers._checks import check_image_input
from kerasblocks.layers.mobile import stride_two_padding


def check_nasnet_arguments(filters, strides, momentum, epsilon):
    """Raises a ValueError naming the first bad argument of a NASNet
    block or cell."""
    positive_int("filters", filters)
    if strides not in (1, 2) or isinstance(strides, bool):
        raise ValueError(f"strides must be 1 or 2. Received: {strides=}")
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must be in [0, 1). Received: {momentum=}")
    if epsilon <= 0:
        raise ValueError(f"epsilon must be positive. Received: {epsilon=}")


@register()
class NASNetSeparableBlock(CapturedConfig, keras.layers.Layer):
    """ReLU, separable convolution, batch norm, twice (NASNet-A).

    Sublayers: `separable_conv_1` (stride `strides`; at stride 2 the
    input is zero-padded explicitly as keras.applications does and the
    convolution is "valid"), `separable_conv_1_bn`, `separable_conv_2`,
    `separable_conv_2_bn`. No biases; batch norm uses NASNet's settings.

    Args:
        filters: output channels of both convolutions.
        kernel_size: square kernel size (odd).
        strides: stride of the first convolution (1 or 2).
        momentum: batch-norm momentum.
        epsilon: batch-norm epsilon.

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> block = kerasblocks.layers.NASNetSeparableBlock(8, 5, strides=2)
    >>> block(tf.ones((2, 9, 9, 4))).shape
    TensorShape([2, 5, 5, 8])
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int = 3,
        *,
        strides: int = 1,
        momentum: float = 0.9997,
        epsilon: float = 1e-3,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_nasnet_arguments(filters, strides, momentum, epsilon)
        if positive_int("kernel_size", kernel_size) % 2 == 0:
            raise ValueError(
                f"kernel_size must be odd. Received: {kernel_size=}"
            )
        self.filters, self.kernel_size = filters, kernel_size
        self.strides = strides
        self.momentum, self.epsilon = float(momentum), float(epsilon)
        self.separable_conv_1 = keras.layers.SeparableConv2D(
            filters,
            kernel_size,
            strides=strides,
            padding="same" if strides == 1 else "valid",
            use_bias=False,
            name="separable_conv_1",
        )
        self.separable_conv_1_bn = keras.layers.BatchNormalization(
            momentum=momentum, epsilon=epsilon, name="separable_conv_1_bn"
        )
        self.separable_conv_2 = keras.layers.SeparableConv2D(
            filters,
            kernel_size,
            padding="same",
            use_bias=False,
            name="separable_conv_2",
        )
        self.separable_conv_2_bn = keras.layers.BatchNormalization(
            momentum=momentum, epsilon=epsilon, name="separable_conv_2_bn"
        )

    def _padding(self, shape):
        return stride_two_padding(shape[1], shape[2], self.kernel_size)

    def _padded_shape(self, shape):
        if self.strides == 1:
            return tuple(shape)
        pads = self._padding(shape)
        size = [
            None if n is None else n + sum(p)
            for n, p in zip(shape[1:3], pads, strict=True)
        ]
        return (shape[0], *size, shape[3])

    def build(self, input_shape):
        check_image_input(self, input_shape)
        shape = self._padded_shape(input_shape)
        self.separable_conv_1.build(shape)
        shape = self.separable_conv_1.compute_output_shape(shape)
        self.separable_conv_1_bn.build(shape)
        self.separable_conv_2.build(shape)
        self.separable_conv_2_bn.build(shape)

    def call(self, inputs, training=None):
        x = keras.ops.relu(inputs)
        if self.strides == 2:
            x = keras.ops.pad(x, ((0, 0), *self._padding(inputs.shape), (0, 0)))
        x = self.separable_conv_1_bn(
            self.separable_conv_1(x), training=training
        )
        x = keras.ops.relu(x)
        return self.separable_conv_2_bn(
            self.separable_conv_2(x), training=training
        )

    def compute_output_shape(self, input_shape):
        shape = self._padded_shape(input_shape)
        shape = self.separable_conv_1.compute_output_shape(shape)
        return (*shape[:3], self.filters)
