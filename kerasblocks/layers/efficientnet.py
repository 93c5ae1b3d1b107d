"""EfficientNet's inverted bottleneck blocks, as keras.applications
builds them for EfficientNet (V1) and EfficientNetV2.

`MBConv` is the mobile inverted bottleneck: a 1x1 expansion, a
depthwise convolution, squeeze-and-excitation, and a linear 1x1
projection. `FusedMBConv` (EfficientNetV2) fuses the expansion and the
depthwise convolution into one full convolution. Both add the input to
the output when the shapes allow it, with stochastic depth on the
branch. Their sublayers have fixed names (`expand_conv`, `expand_bn`,
`depthwise_conv`, `depthwise_bn`, `se_reduce`, `se_expand`,
`project_conv`, `project_bn`, `drop`); the names are the weight-file
contract.
"""

from __future__ import annotations

from collections.abc import Callable

import keras

from kerasblocks._config import CapturedConfig
from kerasblocks._registry import register
from kerasblocks._validation import positive_int as _positive_int
from kerasblocks._validation import rate
from kerasblocks.layers._checks import check_image_input
from kerasblocks.layers.mobile import (
    check_batch_norm,
    check_odd_kernel,
    check_strides,
)


def conv_initializer() -> keras.initializers.Initializer:
    """keras.applications' EfficientNet convolution initializer: a
    truncated normal of variance 2 / fan-out."""
    return keras.initializers.VarianceScaling(
        2.0, mode="fan_out", distribution="truncated_normal"
    )


class _EfficientBlock(CapturedConfig, keras.layers.Layer):
    """What `MBConv` and `FusedMBConv` share: arguments, the
    squeeze-and-excitation, the projection and the residual join."""

    def __init__(
        self,
        filters: int,
        *,
        expansion: int,
        kernel_size: int,
        strides: int,
        se_ratio: float,
        activation: str | Callable,
        drop_path_rate: float,
        momentum: float,
        epsilon: float,
        zero_init_last: bool,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = _positive_int("filters", filters)
        self.expansion = _positive_int("expansion", expansion)
        self.kernel_size = check_odd_kernel(kernel_size)
        self.strides = check_strides(strides)
        if isinstance(se_ratio, bool) or not (
            isinstance(se_ratio, (int, float)) and 0.0 <= se_ratio <= 1.0
        ):
            raise ValueError(
                f"se_ratio must be in [0, 1]. Received: {se_ratio=}"
            )
        self.se_ratio = float(se_ratio)
        self.activation = keras.activations.get(activation)
        self.drop_path_rate = rate("drop_path_rate", drop_path_rate)
        self.momentum, self.epsilon = check_batch_norm(momentum, epsilon)
        if not isinstance(zero_init_last, bool):
            raise ValueError(
                f"zero_init_last must be a bool. Received: {zero_init_last=}"
            )
        self.zero_init_last = zero_init_last

    # Widths that depend on the input's channels (the expansion and the
    # squeeze-and-excitation) are set in `build`; the sublayers are made
    # in the constructor so that they (and their variables) keep the
    # order in which they run.
    def _conv(self, kernel_size, name, *, strides=1, filters=1, **kwargs):
        return keras.layers.Conv2D(
            filters,
            kernel_size,
            strides=strides,
            padding="same",
            kernel_initializer=conv_initializer(),
            name=name,
            **kwargs,
        )

    def _batch_norm(self, name):
        return keras.layers.BatchNormalization(
            momentum=self.momentum, epsilon=self.epsilon, name=name
        )

    def _make_expansion(self, kernel_size, strides):
        self.expand_conv = self.expand_bn = None
        if self.expansion != 1:
            self.expand_conv = self._conv(
                kernel_size, "expand_conv", strides=strides, use_bias=False
            )
            self.expand_bn = self._batch_norm("expand_bn")

    def _make_excitation(self):
        self.se_reduce = self.se_expand = None
        if self.se_ratio > 0:
            self.se_reduce = self._conv(
                1, "se_reduce", activation=self.activation
            )
            self.se_expand = self._conv(1, "se_expand", activation="sigmoid")

    def _make_projection(self, kernel_size, strides):
        self.project_conv = self._conv(
            kernel_size,
            "project_conv",
            strides=strides,
            filters=self.filters,
            use_bias=False,
        )
        self.project_bn = self._batch_norm("project_bn")
        # keras.applications' stochastic depth: Dropout whose mask is one
        # number per example, so the whole branch is dropped (and the
        # kept ones scaled by 1 / (1 - rate)).
        self.drop = None
        if self.drop_path_rate > 0:
            self.drop = keras.layers.Dropout(
                self.drop_path_rate, noise_shape=(None, 1, 1, 1), name="drop"
            )

    def _build_expansion(self, shape, channels):
        """Builds `expand_conv` and `expand_bn` (when there are) for
        `channels` input channels; returns the expanded shape."""
        if self.expand_conv is None:
            return shape
        self.expand_conv.filters = self.expansion * channels
        self.expand_conv.build(shape)
        shape = self.expand_conv.compute_output_shape(shape)
        self.expand_bn.build(shape)
        return shape

    def _expand(self, x, training):
        if self.expand_conv is None:
            return x
        x = self.expand_bn(self.expand_conv(x), training=training)
        return self.activation(x)

    def _build_excitation(self, shape, channels):
        if self.se_reduce is None:
            return
        self.se_reduce.filters = max(1, int(channels * self.se_ratio))
        self.se_expand.filters = int(shape[-1])
        pooled = (shape[0], 1, 1, shape[-1])
        self.se_reduce.build(pooled)
        self.se_expand.build(self.se_reduce.compute_output_shape(pooled))

    def _has_identity(self, channels):
        return self.strides == 1 and channels == self.filters

    def _build_projection(self, shape, channels):
        # Only a block that adds its input starts as the identity; the
        # others keep Keras's initialization.
        if self.zero_init_last and self._has_identity(channels):
            self.project_bn.gamma_initializer = keras.initializers.get("zeros")
        self.project_conv.build(shape)
        self.project_bn.build(self.project_conv.compute_output_shape(shape))

    def _excite(self, x):
        if self.se_reduce is None:
            return x
        scale = keras.ops.mean(x, axis=(1, 2), keepdims=True)
        return x * self.se_expand(self.se_reduce(scale))

    def _join(self, inputs, x, training):
        if not self._has_identity(inputs.shape[-1]):
            return x
        if self.drop is not None:
            x = self.drop(x, training=training)
        return x + inputs

    def compute_output_shape(self, input_shape):
        def reduce(size):
            return None if size is None else -(-size // self.strides)

        batch, height, width, _ = input_shape
        return (batch, reduce(height), reduce(width), self.filters)


@register()
class MBConv(_EfficientBlock):
    """The mobile inverted bottleneck of EfficientNet (MBConv).

    In order: `expand_conv` (1x1 convolution to `expansion * channels`,
    no bias), `expand_bn` and the activation (these three are absent when
    `expansion` is 1); `depthwise_conv` (`kernel_size` depthwise
    convolution, no bias, "same" padding, `strides`), `depthwise_bn`,
    the activation; squeeze-and-excitation when `se_ratio` > 0 (a global
    mean, `se_reduce`: 1x1 convolution with a bias to
    `max(1, int(channels * se_ratio))` channels and the activation,
    `se_expand`: 1x1 convolution with a bias back to the expanded width
    and a sigmoid, which scales the expanded map); `project_conv` (1x1
    convolution to `filters`, no bias) and `project_bn`, no activation.
    When `strides` is 1 and the channels are unchanged the input is added
    to the output, after stochastic depth (`drop`).

    keras.applications' EfficientNet (V1) zero-pads explicitly before a
    stride-2 depthwise convolution and convolves "valid"; for a known
    input size that padding is exactly TensorFlow's "same" padding, used
    here. Batch norm defaults to V1's settings (momentum 0.99); V2 uses
    0.9.

    Args:
        filters: output channels.
        expansion: width of the expanded map per input channel.
        kernel_size: size of the depthwise kernel (odd).
        strides: stride of the depthwise convolution (1 or 2).
        se_ratio: squeeze width per input channel; 0 for none.
        activation: activation of the block (swish in EfficientNet).
        drop_path_rate: probability of dropping the residual branch of
            an example during training (stochastic depth), in [0, 1).
        momentum: batch-norm momentum.
        epsilon: batch-norm epsilon.
        zero_init_last: start `project_bn`'s scale (gamma) at zero when
            the block adds its input, so that it starts as the identity.

    Input shape: `(batch, height, width, channels)`. Output shape:
    `(batch, ceil(height / strides), ceil(width / strides), filters)`.

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> block = kerasblocks.layers.MBConv(8, strides=2, name="b")
    >>> block(tf.ones((2, 7, 7, 4))).shape
    TensorShape([2, 4, 4, 8])
    >>> tuple(block.se_reduce.kernel.shape)  # 4 channels * 0.25 -> 1
    (1, 1, 24, 1)
    """

    def __init__(
        self,
        filters: int,
        *,
        expansion: int = 6,
        kernel_size: int = 3,
        strides: int = 1,
        se_ratio: float = 0.25,
        activation: str | Callable = "swish",
        drop_path_rate: float = 0.0,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        zero_init_last: bool = False,
        **kwargs,
    ):
        super().__init__(
            filters,
            expansion=expansion,
            kernel_size=kernel_size,
            strides=strides,
            se_ratio=se_ratio,
            activation=activation,
            drop_path_rate=drop_path_rate,
            momentum=momentum,
            epsilon=epsilon,
            zero_init_last=zero_init_last,
            **kwargs,
        )
        self._make_expansion(1, 1)
        self.depthwise_conv = keras.layers.DepthwiseConv2D(
            kernel_size,
            strides=strides,
            padding="same",
            use_bias=False,
            depthwise_initializer=conv_initializer(),
            name="depthwise_conv",
        )
        self.depthwise_bn = self._batch_norm("depthwise_bn")
        self._make_excitation()
        self._make_projection(1, 1)

    def build(self, input_shape):
        channels = check_image_input(self, input_shape)
        shape = self._build_expansion(tuple(input_shape), channels)
        self.depthwise_conv.build(shape)
        shape = self.depthwise_conv.compute_output_shape(shape)
        self.depthwise_bn.build(shape)
        self._build_excitation(shape, channels)
        self._build_projection(shape, channels)

    def call(self, inputs, training=None):
        x = self._expand(inputs, training)
        x = self.depthwise_bn(self.depthwise_conv(x), training=training)
        x = self._excite(self.activation(x))
        x = self.project_bn(self.project_conv(x), training=training)
        return self._join(inputs, x, training)


@register()
class FusedMBConv(_EfficientBlock):
    """EfficientNetV2's fused inverted bottleneck (Fused-MBConv).

    With an expansion: `expand_conv` (`kernel_size` convolution with
    `strides` to `expansion * channels`, no bias), `expand_bn` and the
    activation, then `project_conv` (1x1, no bias) and `project_bn`
    without activation. Without one (`expansion` 1): only `project_conv`
    (`kernel_size` with `strides`), `project_bn` and the activation.
    Squeeze-and-excitation (as in `MBConv`) acts before the projection
    when `se_ratio` > 0 (keras.applications' V2 tables never use it
    here). When `strides` is 1 and the channels are unchanged the input
    is added to the output, after stochastic depth (`drop`). Padding is
    "same" everywhere, as in keras.applications.

    Args:
        filters: output channels.
        expansion: width of the expanded map per input channel.
        kernel_size: size of the full convolution (odd).
        strides: stride of the full convolution (1 or 2).
        se_ratio: squeeze width per input channel; 0 for none.
        activation: activation of the block (swish in EfficientNetV2).
        drop_path_rate: probability of dropping the residual branch of
            an example during training (stochastic depth), in [0, 1).
        momentum: batch-norm momentum.
        epsilon: batch-norm epsilon.
        zero_init_last: start `project_bn`'s scale (gamma) at zero when
            the block adds its input, so that it starts as the identity.

    Input shape: `(batch, height, width, channels)`. Output shape:
    `(batch, ceil(height / strides), ceil(width / strides), filters)`.

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> block = kerasblocks.layers.FusedMBConv(8, strides=2, name="b")
    >>> block(tf.ones((2, 7, 7, 4))).shape
    TensorShape([2, 4, 4, 8])
    >>> [v.path for v in block.weights][:2]
    ['b/expand_conv/kernel', 'b/expand_bn/gamma']
    """

    def __init__(
        self,
        filters: int,
        *,
        expansion: int = 4,
        kernel_size: int = 3,
        strides: int = 1,
        se_ratio: float = 0.0,
        activation: str | Callable = "swish",
        drop_path_rate: float = 0.0,
        momentum: float = 0.9,
        epsilon: float = 1e-3,
        zero_init_last: bool = False,
        **kwargs,
    ):
        super().__init__(
            filters,
            expansion=expansion,
            kernel_size=kernel_size,
            strides=strides,
            se_ratio=se_ratio,
            activation=activation,
            drop_path_rate=drop_path_rate,
            momentum=momentum,
            epsilon=epsilon,
            zero_init_last=zero_init_last,
            **kwargs,
        )
        # Without an expansion the projection is the full convolution.
        self._make_expansion(kernel_size, strides)
        self._make_excitation()
        if self.expand_conv is not None:
            self._make_projection(1, 1)
        else:
            self._make_projection(kernel_size, strides)

    def build(self, input_shape):
        channels = check_image_input(self, input_shape)
        shape = self._build_expansion(tuple(input_shape), channels)
        self._build_excitation(shape, channels)
        self._build_projection(shape, channels)

    def call(self, inputs, training=None):
        x = self._expand(inputs, training)
        x = self._excite(x)
        x = self.project_bn(self.project_conv(x), training=training)
        if self.expand_conv is None:
            x = self.activation(x)
        return self._join(inputs, x, training)
