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

from kerasblocks._config import CapturedConfig
from kerasblocks._registry import register
from kerasblocks._validation import positive_int as _positive_int
from kerasblocks.layers._checks import check_image_input


def round_channels(value: float, divisor: int = 8) -> int:
    """Rounds a width to a multiple of `divisor`, never below `divisor`
    and never more than 10% below `value` (the rule of MobileNetV2 and
    V3 in keras.applications)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def check_batch_norm(momentum: float, epsilon: float) -> tuple[float, float]:
    """Batch-norm `momentum` in [0, 1) and a positive `epsilon`, as
    floats; else a ValueError."""
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must be in [0, 1). Received: {momentum=}")
    if epsilon <= 0:
        raise ValueError(f"epsilon must be positive. Received: {epsilon=}")
    return float(momentum), float(epsilon)


def check_strides(strides: int) -> int:
    """`strides` if it is 1 or 2; else a ValueError."""
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


def check_odd_kernel(kernel_size: int) -> int:
    """`kernel_size` if it is a positive odd int; else a ValueError."""
    if _positive_int("kernel_size", kernel_size) % 2 == 0:
        raise ValueError(f"kernel_size must be odd. Received: {kernel_size=}")
    return kernel_size


class _MobileBlock(CapturedConfig, keras.layers.Layer):
    """Batch norms with the block's `momentum` and `epsilon`."""

    def _batch_norm(self, name):
        return keras.layers.BatchNormalization(
            momentum=self.momentum, epsilon=self.epsilon, name=name
        )


class _InvertedBottleneck(_MobileBlock):
    """What MobileNetV2's and V3's inverted residuals share: an optional
    1x1 expansion, a depthwise convolution padded as keras.applications
    pads it, an optional squeeze-excite, a linear 1x1 projection and the
    shortcut. Subclasses set `expand` (or None), `squeeze_excite` (or
    None) and say the expanded width and the activation."""

    def _check_arguments(
        self, filters, kernel_size, strides, momentum, epsilon
    ):
        self.filters = _positive_int("filters", filters)
        self.kernel_size = check_odd_kernel(kernel_size)
        self.strides = check_strides(strides)
        self.momentum, self.epsilon = check_batch_norm(momentum, epsilon)

    def _make_expansion(self, filters):
        # `expand` and `expand_bn` are created first so that the
        # sublayers (and their variables) stay in the order they run.
        self.expand = keras.layers.Conv2D(
            filters, 1, use_bias=False, name="expand"
        )
        self.expand_bn = self._batch_norm("expand_bn")

    def _make_depthwise(self):
        self.depthwise = keras.layers.DepthwiseConv2D(
            self.kernel_size,
            strides=self.strides,
            padding="same" if self.strides == 1 else "valid",
            use_bias=False,
            name="depthwise",
        )
        self.depthwise_bn = self._batch_norm("depthwise_bn")

    def _make_projection(self):
        self.project = keras.layers.Conv2D(
            self.filters, 1, use_bias=False, name="project"
        )
        self.project_bn = self._batch_norm("project_bn")

    def _expanded_width(self, channels: int) -> int:
        raise NotImplementedError

    def _activate(self, x):
        raise NotImplementedError

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

    def build(self, input_shape):
        channels = check_image_input(self, input_shape)
        shape = tuple(input_shape)
        if self.expand is not None:
            self.expand.filters = self._expanded_width(channels)
            self.expand.build(shape)
            shape = self.expand.compute_output_shape(shape)
            self.expand_bn.build(shape)
        shape = self._padded_shape(shape)
        self.depthwise.build(shape)
        shape = self.depthwise.compute_output_shape(shape)
        self.depthwise_bn.build(shape)
        if self.squeeze_excite is not None:
            self.squeeze_excite.build(shape)
        self.project.build(shape)
        self.project_bn.build(self.project.compute_output_shape(shape))

    def call(self, inputs, training=None):
        x = inputs
        if self.expand is not None:
            x = self._activate(
                self.expand_bn(self.expand(x), training=training)
            )
        if self.strides == 2:
            height, width = inputs.shape[1], inputs.shape[2]
            x = keras.ops.pad(
                x, ((0, 0), *self._padding(height, width), (0, 0))
            )
        x = self.depthwise_bn(self.depthwise(x), training=training)
        x = self._activate(x)
        if self.squeeze_excite is not None:
            x = self.squeeze_excite(x)
        x = self.project_bn(self.project(x), training=training)
        if self.strides == 1 and inputs.shape[-1] == self.filters:
            x = inputs + x
        return x

    def compute_output_shape(self, input_shape):
        shape = self._padded_shape(tuple(input_shape))
        shape = self.depthwise.compute_output_shape(shape)
        return (*shape[:3], self.filters)


@register()
class InvertedResidual(_InvertedBottleneck):
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
        self._check_arguments(filters, kernel_size, strides, momentum, epsilon)
        self.expansion = _positive_int("expansion", expansion)
        # The expanded width depends on the input's channels: `expand`
        # gets its filters in `build`.
        self.expand = self.expand_bn = None
        if expansion != 1:
            self._make_expansion(1)
        self._make_depthwise()
        self.squeeze_excite = None
        self._make_projection()

    def _expanded_width(self, channels):
        return self.expansion * channels

    def _activate(self, x):
        return keras.ops.relu6(x)


@register()
class DepthwiseSeparableBlock(_MobileBlock):
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
        self.strides = check_strides(strides)
        self.depth_multiplier = _positive_int(
            "depth_multiplier", depth_multiplier
        )
        self.momentum, self.epsilon = check_batch_norm(momentum, epsilon)
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

    def _padded_shape(self, shape):
        if self.strides == 1:
            return shape
        return (
            shape[0],
            *(None if size is None else size + 1 for size in shape[1:3]),
            shape[3],
        )

    def build(self, input_shape):
        check_image_input(self, input_shape)
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
