"""The blocks of the book's chapter "Modern Convolutional Neural Networks".

`VGGBlock` (the book's `vgg_block`), `NiNBlock` (`nin_block`) and
`Inception` (GoogLeNet's four-path block). The zoo's `vgg`, `nin` and
`googlenet` modules build their networks from them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras

from kerasblocks._config import CapturedConfig
from kerasblocks._registry import register
from kerasblocks._validation import positive_int as _positive_int

_PADDINGS = ("valid", "same")


def _positive_pair(name: str, value) -> tuple[int, int]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(
            f"{name} must be a pair of positive ints. Received: "
            f"{name}={value!r}"
        )
    return (
        _positive_int(f"{name}[0]", value[0]),
        _positive_int(f"{name}[1]", value[1]),
    )


@register()
class VGGBlock(CapturedConfig, keras.layers.Layer):
    """`num_convs` 3x3 "same" convolutions, then a 2x2 max pool of stride 2.

    The convolutions are named `conv1` ... `convN` and the pool `pool`, so
    that a block named `block1` holds the variables of keras.applications'
    `block1_conv1`, `block1_conv2`, ... in the same order.

    Args:
        num_convs: number of convolutions.
        filters: output channels of every convolution.
        activation: activation after each convolution.

    Input shape: `(batch, height, width, channels)`. Output shape:
    `(batch, height // 2, width // 2, filters)`.

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> block = kerasblocks.layers.VGGBlock(2, 16, name="block1")
    >>> block(tf.ones((1, 8, 8, 3))).shape
    TensorShape([1, 4, 4, 16])
    >>> [v.path for v in block.weights][:3]
    ['block1/conv1/kernel', 'block1/conv1/bias', 'block1/conv2/kernel']
    """

    def __init__(
        self,
        num_convs: int,
        filters: int,
        *,
        activation: str | Callable = "relu",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_convs = _positive_int("num_convs", num_convs)
        self.filters = _positive_int("filters", filters)
        self.activation = keras.activations.get(activation)
        self.convs = [
            keras.layers.Conv2D(
                filters,
                3,
                padding="same",
                activation=self.activation,
                name=f"conv{index}",
            )
            for index in range(1, num_convs + 1)
        ]
        self.pool = keras.layers.MaxPooling2D(2, strides=2, name="pool")

    def build(self, input_shape):
        shape = tuple(input_shape)
        for conv in self.convs:
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
        self.input_spec = keras.layers.InputSpec(
            ndim=4, axes={-1: input_shape[-1]}
        )

    def call(self, inputs):
        x = inputs
        for conv in self.convs:
            x = conv(x)
        return self.pool(x)

    def compute_output_shape(self, input_shape):
        shape = (*tuple(input_shape)[:-1], self.filters)
        return self.pool.compute_output_shape(shape)


@register()
class NiNBlock(CapturedConfig, keras.layers.Layer):
    """A network-in-network block: a `kernel_size` convolution, then two
    1x1 convolutions (a per-pixel MLP), each followed by ReLU.

    Args:
        filters: output channels of the three convolutions.
        kernel_size: size of the first (square) convolution.
        strides: stride of the first convolution.
        padding: "valid" or "same", of the first convolution.

    Input shape: `(batch, height, width, channels)`. Output shape:
    `(batch, new_height, new_width, filters)`, the first convolution's.

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> block = kerasblocks.layers.NiNBlock(8, 11, 4, "valid")
    >>> block(tf.ones((1, 224, 224, 1))).shape
    TensorShape([1, 54, 54, 8])
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int,
        strides: int = 1,
        padding: str = "valid",
        **kwargs,
    ):
        if padding not in _PADDINGS:
            raise ValueError(
                f"padding must be one of {_PADDINGS}. Received: {padding=}"
            )
        super().__init__(**kwargs)
        self.filters = _positive_int("filters", filters)
        self.kernel_size = _positive_int("kernel_size", kernel_size)
        self.strides = _positive_int("strides", strides)
        self.padding = padding
        self.conv1 = keras.layers.Conv2D(
            filters,
            kernel_size,
            strides=strides,
            padding=padding,
            activation="relu",
            name="conv1",
        )
        self.conv2 = keras.layers.Conv2D(
            filters, 1, activation="relu", name="conv2"
        )
        self.conv3 = keras.layers.Conv2D(
            filters, 1, activation="relu", name="conv3"
        )

    def build(self, input_shape):
        self.conv1.build(tuple(input_shape))
        shape = self.conv1.compute_output_shape(tuple(input_shape))
        self.conv2.build(shape)
        self.conv3.build(shape)
        self.input_spec = keras.layers.InputSpec(
            ndim=4, axes={-1: input_shape[-1]}
        )

    def call(self, inputs):
        return self.conv3(self.conv2(self.conv1(inputs)))

    def compute_output_shape(self, input_shape):
        return self.conv1.compute_output_shape(tuple(input_shape))


@register()
class Inception(CapturedConfig, keras.layers.Layer):
    """GoogLeNet's Inception block: four parallel paths, concatenated on
    the channel axis.

    Paths: a 1x1 convolution (`c1` channels); a 1x1 reduction to `c2[0]`
    then a 3x3 convolution (`c2[1]`); a 1x1 reduction to `c3[0]` then a
    5x5 convolution (`c3[1]`); a 3x3 max pool of stride 1 then a 1x1
    convolution (`c4`). Every convolution is followed by ReLU and keeps
    the spatial size.

    Args:
        c1: channels of path 1.
        c2: (reduction, output) channels of path 2.
        c3: (reduction, output) channels of path 3.
        c4: channels of path 4.

    Input shape: `(batch, height, width, channels)`. Output shape:
    `(batch, height, width, c1 + c2[1] + c3[1] + c4)`.

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> block = kerasblocks.layers.Inception(64, (96, 128), (16, 32), 32)
    >>> block(tf.ones((1, 12, 12, 192))).shape
    TensorShape([1, 12, 12, 256])
    """

    def __init__(
        self,
        c1: int,
        c2: Sequence[int],
        c3: Sequence[int],
        c4: int,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.c1 = _positive_int("c1", c1)
        self.c2 = _positive_pair("c2", c2)
        self.c3 = _positive_pair("c3", c3)
        self.c4 = _positive_int("c4", c4)

        def conv(filters, kernel_size, name):
            return keras.layers.Conv2D(
                filters,
                kernel_size,
                padding="same",
                activation="relu",
                name=name,
            )

        self.path1_conv = conv(self.c1, 1, "path1_conv")
        self.path2_reduce = conv(self.c2[0], 1, "path2_reduce")
        self.path2_conv = conv(self.c2[1], 3, "path2_conv")
        self.path3_reduce = conv(self.c3[0], 1, "path3_reduce")
        self.path3_conv = conv(self.c3[1], 5, "path3_conv")
        self.path4_pool = keras.layers.MaxPooling2D(
            3, strides=1, padding="same", name="path4_pool"
        )
        self.path4_conv = conv(self.c4, 1, "path4_conv")
        self.concat = keras.layers.Concatenate(axis=-1, name="concat")

    def build(self, input_shape):
        shape = tuple(input_shape)
        for conv in (self.path1_conv, self.path2_reduce, self.path3_reduce):
            conv.build(shape)
        self.path2_conv.build((*shape[:-1], self.c2[0]))
        self.path3_conv.build((*shape[:-1], self.c3[0]))
        self.path4_conv.build(shape)
        self.input_spec = keras.layers.InputSpec(
            ndim=4, axes={-1: input_shape[-1]}
        )

    def call(self, inputs):
        return self.concat(
            [
                self.path1_conv(inputs),
                self.path2_conv(self.path2_reduce(inputs)),
                self.path3_conv(self.path3_reduce(inputs)),
                self.path4_conv(self.path4_pool(inputs)),
            ]
        )

    def compute_output_shape(self, input_shape):
        channels = self.c1 + self.c2[1] + self.c3[1] + self.c4
        return (*tuple(input_shape)[:-1], channels)
