"""MobileNet's blocks, as keras.applications builds them.

`DepthwiseSeparableBlock` is MobileNet (V1)'s factorized convolution: a
depthwise 3x3 convolution filters each channel, a 1x1 ("pointwise")
convolution mixes them; batch norm and ReLU6 follow each. Its sublayers
are `depthwise`, `depthwise_bn`, `pointwise`, `pointwise_bn`.

`InvertedResidual` (MobileNetV2) widens the input with a 1x1
convolution, filters each channel with a depthwise convolution, and
projects back with a linear 1x1 convolution (the "linear bottleneck");
the shortcut joins the narrow ends. Its sublayers are `expand`,
`expand_bn`, `depthwise`, `depthwise_bn`, `project`, `project_bn`.

The sublayer names are the weight-file contract.
"""

from __future__ import annotations

import keras

from kerasblocks._registry import register
from kerasblocks._validation import positive_int as _positive_int


def round_channels(value: float, divisor: int = 8) -> int:
    """Rounds a width to a multiple of `divisor`, never below `divisor`
    and never more than 10% below `value` (the rule of MobileNetV2 and
    V3 in keras.applications)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def _check_batch_norm(momentum, epsilon):
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must be in [0, 1). Received: {momentum=}")
    if epsilon <= 0:
        raise ValueError(f"epsilon must be positive. Received: {epsilon=}")
    return float(momentum), float(epsilon)


def _check_strides(strides):
    if strides not in (1, 2) or isinstance(strides, bool):
        raise ValueError(f"strides must be 1 or 2. Received: {strides=}")
    return strides


def stride_two_padding(height, width, kernel_size: int):
    """The zero padding keras.applications puts before a strided
    depthwise convolution: `kernel_size // 2` after, one less before an
    even (or unknown) size. For known sizes it equals TensorFlow's
    "same" padding at stride 2."""
    half = kernel_size // 2

    def before(size):
        return half - 1 if size is None or size % 2 == 0 else half

    return ((before(height), half), (before(width), half))


@register()
class InvertedResidual(keras.layers.Layer):
    """MobileNetV2's inverted residual block (linear bottleneck).

    In order: `expand` (1x1 convolution to `expansion * channels`, no
    bias), `expand_bn`, ReLU6 (these three are absent when `expansion`
    is 1); `depthwise` (`kernel_size` depthwise convolution, no bias;
    with `strides=2` the input is zero-padded explicitly as
    keras.applications does and the convolution is "valid"),
    `depthwise_bn`, ReLU6; `project` (1x1 convolution to `filters`, no
    bias), `project_bn`, no activation. The input is added to the output
    when `strides` is 1 and the channels are unchanged.

    Batch norm uses keras.applications' MobileNetV2 settings by default.

    Args:
        filters: output channels.
        expansion: width of the expanded layer per input channel.
        strides: stride of the depthwise convolution (1 or 2).
        kernel_size: size of the depthwise kernel (odd).
        momentum: batch-norm momentum.
        epsilon: batch-norm epsilon.

    Input shape: `(batch, height, width, channels)`. Output shape:
    `(batch, ceil(height / strides), ceil(width / strides), filters)`.

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> block = kerasblocks.layers.InvertedResidual(8, strides=2, name="b")
    >>> block(tf.ones((2, 7, 7, 4))).shape
    TensorShape([2, 4, 4, 8])
    >>> [v.path for v in block.weights][:2]
    ['b/expand/kernel', 'b/expand_bn/gamma']
    """

    def __init__(
        self,
        filters: int,
        *,
        expansion: int = 6,
        strides: int = 1,
        kernel_size: int = 3,
        momentum: float = 0.999,
        epsilon: float = 1e-3,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = _positive_int("filters", filters)
        self.expansion = _positive_int("expansion", expansion)
        self.strides = _check_strides(strides)
        if _positive_int("kernel_size", kernel_size) % 2 == 0:
            raise ValueError(
                f"kernel_size must be odd. Received: {kernel_size=}"
            )
        self.kernel_size = kernel_size
        self.momentum, self.epsilon = _check_batch_norm(momentum, epsilon)
        # The expanded width depends on the input's channels: `expand`
        # gets its filters in `build`. Creating it here keeps the
        # sublayers (and their variables) in the order they run.
        self.expand = None
        self.expand_bn = None
        if expansion != 1:
            self.expand = keras.layers.Conv2D(
                1, 1, use_bias=False, name="expand"
            )
            self.expand_bn = self._batch_norm("expand_bn")
        self.depthwise = keras.layers.DepthwiseConv2D(
            kernel_size,
            strides=strides,
            padding="same" if strides == 1 else "valid",
            use_bias=False,
            name="depthwise",
        )
        self.depthwise_bn = self._batch_norm("depthwise_bn")
        self.project = keras.layers.Conv2D(
            filters, 1, use_bias=False, name="project"
        )
        self.project_bn = self._batch_norm("project_bn")

    def _batch_norm(self, name):
        return keras.layers.BatchNormalization(
            momentum=self.momentum, epsilon=self.epsilon, name=name
        )

    def build(self, input_shape):
        if len(input_shape) != 4 or input_shape[-1] is None:
            raise ValueError(
                f"InvertedResidual '{self.name}' takes (batch, height, "
                "width, channels) inputs with known channels. Received: "
                f"{input_shape=}"
            )
        channels = int(input_shape[-1])
        shape = tuple(input_shape)
        if self.expand is not None:
            self.expand.filters = self.expansion * channels
            self.expand.build(shape)
            shape = self.expand.compute_output_shape(shape)
            self.expand_bn.build(shape)
        self.depthwise.build(self._padded_shape(shape))
        shape = self.depthwise.compute_output_shape(self._padded_shape(shape))
        self.depthwise_bn.build(shape)
        self.project.build(shape)
        self.project_bn.build(self.project.compute_output_shape(shape))

    def _padding(self, height, width):
        return stride_two_padding(height, width, self.kernel_size)

    def _padded_shape(self, shape):
        if self.strides == 1:
            return shape
        (top, bottom), (left, right) = self._padding(shape[1], shape[2])

        def grow(size, extra):
            return None if size is None else size + extra

        return (
            shape[0],
            grow(shape[1], top + bottom),
            grow(shape[2], left + right),
            shape[3],
        )

    def call(self, inputs, training=None):
        x = inputs
        if self.expand is not None:
            x = keras.ops.relu6(
                self.expand_bn(self.expand(x), training=training)
            )
        if self.strides == 2:
            height, width = inputs.shape[1], inputs.shape[2]
            x = keras.ops.pad(
                x, ((0, 0), *self._padding(height, width), (0, 0))
            )
        x = self.depthwise(x)
        x = keras.ops.relu6(self.depthwise_bn(x, training=training))
        x = self.project_bn(self.project(x), training=training)
        if self.strides == 1 and inputs.shape[-1] == self.filters:
            x = inputs + x
        return x

    def compute_output_shape(self, input_shape):
        shape = self._padded_shape(tuple(input_shape))
        shape = self.depthwise.compute_output_shape(shape)
        return (*shape[:3], self.filters)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "expansion": self.expansion,
            "strides": self.strides,
            "kernel_size": self.kernel_size,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
        }


@register()
class DepthwiseSeparableBlock(keras.layers.Layer):
    """MobileNet's depthwise separable convolution block.

    In order: `depthwise` (3x3 depthwise convolution with
    `depth_multiplier` outputs per channel, no bias), `depthwise_bn`,
    ReLU6, `pointwise` (1x1 convolution to `filters`, no bias),
    `pointwise_bn`, ReLU6. With `strides=2` the input gets one row and
    one column of zeros at the bottom and right, whatever its size, and
    the depthwise convolution is "valid", as keras.applications'
    MobileNet does (on odd sizes this is one pixel smaller than "same").

    Batch norm uses Keras's defaults, as keras.applications' MobileNet.

    Args:
        filters: output channels.
        strides: stride of the depthwise convolution (1 or 2).
        depth_multiplier: depthwise outputs per input channel.
        momentum: batch-norm momentum.
        epsilon: batch-norm epsilon.

    Input shape: `(batch, height, width, channels)`. Output shape:
    `(batch, height, width, filters)` at stride 1, `(batch, height // 2,
    width // 2, filters)` at stride 2.

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> block = kerasblocks.layers.DepthwiseSeparableBlock(
    ...     8, strides=2, depth_multiplier=2, name="b")
    >>> block(tf.ones((2, 7, 6, 4))).shape
    TensorShape([2, 3, 3, 8])
    >>> [tuple(v.shape) for v in block.trainable_weights][::3]
    [(3, 3, 4, 2), (1, 1, 8, 8)]
    """

    def __init__(
        self,
        filters: int,
        *,
        strides: int = 1,
        depth_multiplier: int = 1,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = _positive_int("filters", filters)
        self.strides = _check_strides(strides)
        self.depth_multiplier = _positive_int(
            "depth_multiplier", depth_multiplier
        )
        self.momentum, self.epsilon = _check_batch_norm(momentum, epsilon)
        self.depthwise = keras.layers.DepthwiseConv2D(
            3,
            strides=strides,
            padding="same" if strides == 1 else "valid",
            depth_multiplier=depth_multiplier,
            use_bias=False,
            name="depthwise",
        )
        self.depthwise_bn = self._batch_norm("depthwise_bn")
        self.pointwise = keras.layers.Conv2D(
            filters, 1, use_bias=False, name="pointwise"
        )
        self.pointwise_bn = self._batch_norm("pointwise_bn")

    def _batch_norm(self, name):
        return keras.layers.BatchNormalization(
            momentum=self.momentum, epsilon=self.epsilon, name=name
        )

    def _padded_shape(self, shape):
        if self.strides == 1:
            return shape
        return (
            shape[0],
            *(None if size is None else size + 1 for size in shape[1:3]),
            shape[3],
        )

    def build(self, input_shape):
        if len(input_shape) != 4 or input_shape[-1] is None:
            raise ValueError(
                f"DepthwiseSeparableBlock '{self.name}' takes (batch, "
                "height, width, channels) inputs with known channels. "
                f"Received: {input_shape=}"
            )
        shape = self._padded_shape(tuple(input_shape))
        self.depthwise.build(shape)
        shape = self.depthwise.compute_output_shape(shape)
        self.depthwise_bn.build(shape)
        self.pointwise.build(shape)
        self.pointwise_bn.build(self.pointwise.compute_output_shape(shape))

    def call(self, inputs, training=None):
        x = inputs
        if self.strides == 2:
            x = keras.ops.pad(x, ((0, 0), (0, 1), (0, 1), (0, 0)))
        x = self.depthwise_bn(self.depthwise(x), training=training)
        x = self.pointwise(keras.ops.relu6(x))
        return keras.ops.relu6(self.pointwise_bn(x, training=training))

    def compute_output_shape(self, input_shape):
        shape = self._padded_shape(tuple(input_shape))
        shape = self.depthwise.compute_output_shape(shape)
        return (*shape[:3], self.filters)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "strides": self.strides,
            "depth_multiplier": self.depth_multiplier,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
        }
