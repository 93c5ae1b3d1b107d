"""The ResNeXt block (the book's `ResNeXtBlock`; Xie et al., 2017): a
bottleneck whose 3x3 convolution is grouped, optionally with
squeeze-and-excitation as in RegNetY (Radosavovic et al., 2020). It
shares the residual blocks' checks and training options
(`kerasblocks.layers.residual`); its sublayer names (`conv1`, `bn1`, ...,
`se_reduce`, `se_expand`, `shortcut_conv`, `shortcut_bn`) are the
weight-file contract.
"""

from __future__ import annotations

import keras

from kerasblocks._registry import register
from kerasblocks._validation import positive_int as _positive_int
from kerasblocks.layers._checks import check_image_input
from kerasblocks.layers.residual import (
    _bool,
    _build_chain,
    _conv,
    _ResidualLayer,
)


@register()
class ResNeXtBlock(_ResidualLayer):
    """The ResNeXt block: a bottleneck whose 3x3 convolution is grouped
    (the book's `ResNeXtBlock`), with optional squeeze-and-excitation.

    `conv1` (1x1) maps to `round(filters * bottleneck_ratio)` channels,
    `conv2` (3x3, strided) convolves them in groups of `group_width`
    channels, `conv3` (1x1) maps to `filters`; each is followed by batch
    norm, the first two by ReLU. The shortcut is the identity or a
    strided 1x1 convolution with batch norm; ReLU follows the addition.
    As in the book every convolution has a bias and batch norm has
    Keras's defaults.

    With `se_ratio > 0`, a squeeze-and-excitation module rescales the
    grouped convolution's output channels (as in RegNetY): global
    average pool, a 1x1 convolution to `round(se_ratio * input
    channels)` channels with ReLU, a 1x1 convolution back with sigmoid.

    Args:
        filters: output channels.
        group_width: channels per group of the 3x3 convolution (the
            book's `groups` argument): it has `bottleneck channels //
            group_width` groups.
        bottleneck_ratio: bottleneck channels per output channel (the
            book's `bot_mul`).
        strides: stride of the 3x3 convolution and of the projection.
        use_projection: use a 1x1 convolution shortcut (the book's
            `use_1x1conv`).
        se_ratio: squeeze-and-excitation width per input channel; 0
            turns it off.
        drop_path_rate: stochastic depth: probability of dropping the
            residual branch of an example in training.
        zero_init_last: start `bn3`'s scale (gamma) at zero, so that the
            block starts as its shortcut.

    Input shape: `(batch, height, width, channels)`. Output shape:
    `(batch, ceil(height / strides), ceil(width / strides), filters)`.

    `use_bias=False, epsilon=1e-5, momentum=0.9` give the RegNet paper's
    convolutions and batch norms; the defaults are the book's.

    Example (the book's `ResNeXtBlock(32, 16, 1)`):

    >>> import tensorflow as tf, kerasblocks
    >>> block = kerasblocks.layers.ResNeXtBlock(32, 16, 1)
    >>> block(tf.ones((4, 96, 96, 32))).shape
    TensorShape([4, 96, 96, 32])
    >>> block.conv2.groups
    2
    """

    def __init__(
        self,
        filters: int,
        group_width: int,
        bottleneck_ratio: float = 1.0,
        *,
        strides: int = 1,
        use_projection: bool = False,
        se_ratio: float = 0.0,
        use_bias: bool = True,
        epsilon: float = 1e-3,
        momentum: float = 0.99,
        drop_path_rate: float = 0.0,
        zero_init_last: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = _positive_int("filters", filters)
        self.group_width = _positive_int("group_width", group_width)
        self.use_bias = _bool("use_bias", use_bias)
        self.epsilon = float(epsilon)
        self.momentum = float(momentum)
        self.bottleneck_ratio = _positive_ratio(bottleneck_ratio)
        self.se_ratio = _se_ratio(se_ratio)
        self.strides = _positive_int("strides", strides)
        self.use_projection = _bool("use_projection", use_projection)
        bottleneck, groups = _grouping(filters, group_width, bottleneck_ratio)
        bias = {"use_bias": self.use_bias}
        last = self._training_options(drop_path_rate, zero_init_last)

        def norm(name, **kw):
            return keras.layers.BatchNormalization(
                epsilon=self.epsilon, momentum=self.momentum, name=name, **kw
            )

        self.conv1 = _conv(bottleneck, 1, "conv1", **bias)
        self.bn1 = norm("bn1")
        self.conv2 = _conv(
            bottleneck,
            3,
            "conv2",
            strides=strides,
            padding="same",
            groups=groups,
            **bias,
        )
        self.bn2 = norm("bn2")
        self.conv3 = _conv(filters, 1, "conv3", **bias)
        self.bn3 = norm("bn3", **last)
        self.shortcut_conv = self.shortcut_bn = None
        if use_projection:
            self.shortcut_conv = _conv(
                filters, 1, "shortcut_conv", strides=strides, **bias
            )
            self.shortcut_bn = norm("shortcut_bn")
        # The squeeze width depends on the input channels: made in build.
        self.se_reduce = self.se_expand = None

    def build(self, input_shape):
        channels = check_image_input(self, input_shape)
        self._check_identity(channels, self.filters, self.strides == 1)
        shape = _build_chain(input_shape, self.conv1, self.bn1, self.conv2)
        shape = _build_chain(shape, self.bn2)
        if self.se_ratio > 0:
            squeezed = max(1, int(round(self.se_ratio * channels)))
            self.se_reduce = _conv(squeezed, 1, "se_reduce")
            self.se_expand = _conv(shape[-1], 1, "se_expand")
            pooled = (shape[0], 1, 1, shape[-1])
            _build_chain(pooled, self.se_reduce, self.se_expand)
        _build_chain(shape, self.conv3, self.bn3)
        self._build_shortcut(input_shape)

    def call(self, inputs, training=None):
        x = keras.ops.relu(self.bn1(self.conv1(inputs), training=training))
        x = keras.ops.relu(self.bn2(self.conv2(x), training=training))
        if self.se_reduce is not None:
            scale = keras.ops.mean(x, axis=(1, 2), keepdims=True)
            scale = keras.ops.relu(self.se_reduce(scale))
            x = x * keras.ops.sigmoid(self.se_expand(scale))
        x = self.bn3(self.conv3(x), training=training)
        return self._join(x, inputs, training)

    def compute_output_shape(self, input_shape):
        shape = self.conv2.compute_output_shape(input_shape)
        return (*shape[:-1], self.filters)


def _positive_ratio(bottleneck_ratio) -> float:
    if isinstance(bottleneck_ratio, bool) or not (
        isinstance(bottleneck_ratio, (int, float)) and bottleneck_ratio > 0
    ):
        raise ValueError(
            "bottleneck_ratio must be a positive number. Received: "
            f"{bottleneck_ratio=}"
        )
    return float(bottleneck_ratio)


def _se_ratio(se_ratio) -> float:
    if isinstance(se_ratio, bool) or not (
        isinstance(se_ratio, (int, float)) and 0 <= se_ratio <= 1
    ):
        raise ValueError(
            f"se_ratio must be a number in [0, 1]. Received: {se_ratio=}"
        )
    return float(se_ratio)


def _grouping(filters, group_width, bottleneck_ratio) -> tuple[int, int]:
    """(bottleneck channels, groups of the 3x3 convolution); they must
    split evenly."""
    bottleneck = int(round(filters * bottleneck_ratio))
    groups = bottleneck // group_width
    if groups < 1:
        raise ValueError(
            f"group_width must be at most the {bottleneck} bottleneck "
            f"channels (round(filters * bottleneck_ratio)). Received: "
            f"{filters=}, {group_width=}, {bottleneck_ratio=}"
        )
    if bottleneck % groups:
        raise ValueError(
            f"The {bottleneck} bottleneck channels (round(filters * "
            f"bottleneck_ratio)) must split into {groups} groups "
            f"(bottleneck channels // group_width). Received: "
            f"{filters=}, {group_width=}, {bottleneck_ratio=}"
        )
    return bottleneck, groups
