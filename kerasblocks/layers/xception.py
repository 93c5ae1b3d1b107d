"""Xception's residual block of separable convolutions, as
keras.applications builds it.

`XceptionBlock` is a few (ReLU, 3x3 separable convolution, batch norm)
steps added to a shortcut: the input itself, or, when the block
downsamples, a strided 1x1 convolution and batch norm of it (the main
path then ends with a 3x3 max pool of stride 2). Sublayer names
(`sepconv1`, `sepconv1_bn`, ..., `pool`, `shortcut`, `shortcut_bn`) are
the weight-file contract.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from kerasblocks._config import CapturedConfig
from kerasblocks._registry import register
from kerasblocks._validation import positive_int as _positive_int


@register()
class XceptionBlock(CapturedConfig, keras.layers.Layer):
    """One residual block of Xception's entry, middle or exit flow.

    For each entry of `filters`: ReLU (left out before the first
    separable convolution when `pre_activation` is False, as in the
    first block, whose input is already rectified), `sepconv{i}` (3x3
    separable convolution, "same" padding, no bias) and `sepconv{i}_bn`.
    With `strides=1` the input is added (it must have `filters[-1]`
    channels); with `strides=2` the main path ends with `pool` (3x3 max
    pool, stride 2, "same" padding) and the shortcut is `shortcut` (1x1
    convolution, stride 2, no bias) then `shortcut_bn`.

    Args:
        filters: output channels of each separable convolution.
        strides: 1 (identity shortcut) or 2 (downsampling).
        pre_activation: put ReLU before the first separable convolution.

    Output shape: `(batch, ceil(height / strides), ceil(width /
    strides), filters[-1])`.

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> block = kerasblocks.layers.XceptionBlock((8, 16), strides=2)
    >>> block(tf.ones((1, 7, 7, 4))).shape
    TensorShape([1, 4, 4, 16])
    """

    def __init__(
        self,
        filters: Sequence[int],
        *,
        strides: int = 1,
        pre_activation: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(filters, (tuple, list)) or not filters:
            raise ValueError(
                f"filters must be a non-empty sequence of positive ints. "
                f"Received: {filters=}"
            )
        self.filters = tuple(_positive_int("filters", f) for f in filters)
        if strides not in (1, 2) or isinstance(strides, bool):
            raise ValueError(f"strides must be 1 or 2. Received: {strides=}")
        self.strides = strides
        self.pre_activation = bool(pre_activation)
        self.sepconvs, self.batch_norms = [], []
        for index, width in enumerate(self.filters, start=1):
            self.sepconvs.append(
                keras.layers.SeparableConv2D(
                    width,
                    3,
                    padding="same",
                    use_bias=False,
                    name=f"sepconv{index}",
                )
            )
            self.batch_norms.append(
                keras.layers.BatchNormalization(name=f"sepconv{index}_bn")
            )
        self.pool = self.shortcut = self.shortcut_bn = None
        if strides == 2:
            self.pool = keras.layers.MaxPooling2D(
                3, strides=2, padding="same", name="pool"
            )
            self.shortcut = keras.layers.Conv2D(
                self.filters[-1],
                1,
                strides=2,
                padding="same",
                use_bias=False,
                name="shortcut",
            )
            self.shortcut_bn = keras.layers.BatchNormalization(
                name="shortcut_bn"
            )

    def build(self, input_shape):
        if len(input_shape) != 4 or input_shape[-1] is None:
            raise ValueError(
                f"XceptionBlock '{self.name}' takes (batch, height, width, "
                f"channels) inputs with known channels. Received: "
                f"{input_shape=}"
            )
        if self.strides == 1 and input_shape[-1] != self.filters[-1]:
            raise ValueError(
                f"XceptionBlock '{self.name}' with strides=1 adds its input, "
                f"which must have filters[-1]={self.filters[-1]} channels. "
                f"Received: {input_shape=}"
            )
        shape = tuple(input_shape)
        for sepconv, batch_norm in zip(
            self.sepconvs, self.batch_norms, strict=True
        ):
            sepconv.build(shape)
            shape = sepconv.compute_output_shape(shape)
            batch_norm.build(shape)
        if self.shortcut is not None:
            self.shortcut.build(tuple(input_shape))
            self.shortcut_bn.build(
                self.shortcut.compute_output_shape(tuple(input_shape))
            )

    def call(self, inputs, training=None):
        x = inputs
        for index, (sepconv, batch_norm) in enumerate(
            zip(self.sepconvs, self.batch_norms, strict=True)
        ):
            if index or self.pre_activation:
                x = keras.ops.relu(x)
            x = batch_norm(sepconv(x), training=training)
        if self.shortcut is None:
            return x + inputs
        shortcut = self.shortcut_bn(self.shortcut(inputs), training=training)
        return self.pool(x) + shortcut

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        if self.shortcut is not None:
            shape = self.shortcut.compute_output_shape(shape)
        return (*shape[:3], self.filters[-1])
