"""Residual blocks: the book's ResNet and ResNeXt blocks and the ImageNet
bottleneck blocks of keras.applications' ResNet (v1) and ResNetV2.

- `BasicBlock`: two 3x3 convolutions (the book's `Residual`).
- `BottleneckBlock`: 1x1, 3x3, 1x1 with 4x expansion, post-activation
  (ResNet v1) or pre-activation (ResNet v2), laid out exactly as
  keras.applications builds them so that their weights port one to one.
- `ResNeXtBlock` (in `kerasblocks.layers.resnext`): the bottleneck
  with a grouped 3x3 convolution.

Every block creates its sublayers with fixed names (`conv1`, `bn1`, ...,
`shortcut_conv`, `shortcut_bn`); the names are the weight-file contract.

Every block takes the two timm training options: `drop_path_rate`
(stochastic depth: a `DropPath` named `drop_path` at the end of the
residual branch, only when the rate is above 0, so the default adds no
layer) and `zero_init_last` (the branch's last batch-norm scale, or its
last convolution when no batch norm follows it, starts at zero, so the
block starts as its shortcut).
"""

from __future__ import annotations

import keras

from kerasblocks._config import CapturedConfig
from kerasblocks._registry import register
from kerasblocks._validation import positive_int as _positive_int
from kerasblocks.layers._checks import check_image_input
from kerasblocks.layers.regularization import DropPath, check_drop_path_rate

# keras.applications' ResNets use this batch-norm epsilon everywhere.
IMAGENET_EPSILON = 1.001e-5


def _bool(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be a bool. Received: {value!r}")
    return value


def _build_chain(shape, *layers):
    """Builds `layers` one after another from `shape`; returns the output
    shape of the last one."""
    for layer in layers:
        layer.build(shape)
        shape = layer.compute_output_shape(shape)
    return shape


def _conv(filters, kernel_size, name, *, strides=1, padding="valid", **kw):
    return keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        name=name,
        **kw,
    )


class _ResidualLayer(CapturedConfig, keras.layers.Layer):
    """Shared checks and training options of the residual blocks."""

    def _shape_options(self, filters, strides, use_projection) -> None:
        self.filters = _positive_int("filters", filters)
        self.strides = _positive_int("strides", strides)
        self.use_projection = _bool("use_projection", use_projection)

    def _training_options(self, drop_path_rate, zero_init_last) -> dict:
        """Sets `drop_path_rate`, `zero_init_last` and `drop_path`;
        returns the keywords that zero-initialize a batch norm's scale
        (empty without `zero_init_last`)."""
        self.drop_path_rate = check_drop_path_rate(drop_path_rate)
        self.zero_init_last = _bool("zero_init_last", zero_init_last)
        self.drop_path = None
        if self.drop_path_rate > 0:
            self.drop_path = DropPath(self.drop_path_rate, name="drop_path")
        return {"gamma_initializer": "zeros"} if self.zero_init_last else {}

    def _drop_branch(self, x, training):
        if self.drop_path is None:
            return x
        return self.drop_path(x, training=training)

    def _shortcut(self, inputs, training):
        """The identity, or the projection (`shortcut_conv`, then
        `shortcut_bn` when the block has one)."""
        if self.shortcut_conv is None:
            return inputs
        shortcut = self.shortcut_conv(inputs)
        if self.shortcut_bn is None:
            return shortcut
        return self.shortcut_bn(shortcut, training=training)

    def _build_shortcut(self, input_shape):
        layers = (self.shortcut_conv, self.shortcut_bn)
        _build_chain(input_shape, *[x for x in layers if x is not None])

    def _join(self, x, inputs, training):
        """ReLU of the branch `x` (after stochastic depth) plus the
        shortcut of `inputs`: the end of a post-activation block."""
        x = self._drop_branch(x, training)
        return keras.ops.relu(x + self._shortcut(inputs, training))

    def _check_identity(self, channels: int, out_channels: int, strides_ok):
        if not self.use_projection and (
            channels != out_channels or not strides_ok
        ):
            raise ValueError(
                f"{type(self).__name__} '{self.name}': an identity shortcut "
                f"needs {out_channels} input channels and strides=1, but the "
                f"input has {channels} channels and strides={self.strides}. "
                "Pass use_projection=True."
            )


@register()
class BasicBlock(_ResidualLayer):
    """Two 3x3 convolutions with a shortcut (the book's `Residual`).

    `relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`, where `conv1`
    has the stride and the shortcut is the identity or, with
    `use_projection`, a strided 1x1 convolution (`shortcut_conv`). As in
    the book's TensorFlow version the projection has no batch norm and
    every convolution has a bias; batch norm has Keras's defaults.

    Args:
        filters: output channels of both 3x3 convolutions.
        strides: stride of the first 3x3 convolution and the projection.
        use_projection: use a 1x1 convolution shortcut (the book's
            `use_1x1conv`); needed when `strides > 1` or the channels
            change.
        drop_path_rate: stochastic depth: probability of dropping the
            residual branch of an example in training.
        zero_init_last: start `bn2`'s scale (gamma) at zero, so that the
            block starts as its shortcut.

    Input shape: `(batch, height, width, channels)`. Output shape:
    `(batch, ceil(height / strides), ceil(width / strides), filters)`.

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> block = kerasblocks.layers.BasicBlock(6, strides=2,
    ...                                       use_projection=True)
    >>> block(tf.ones((4, 6, 6, 3))).shape
    TensorShape([4, 3, 3, 6])
    """

    def __init__(
        self,
        filters: int,
        *,
        strides: int = 1,
        use_projection: bool = False,
        drop_path_rate: float = 0.0,
        zero_init_last: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self._shape_options(filters, strides, use_projection)
        last = self._training_options(drop_path_rate, zero_init_last)
        self.conv1 = _conv(filters, 3, "conv1", strides=strides, padding="same")
        self.bn1 = keras.layers.BatchNormalization(name="bn1")
        self.conv2 = _conv(filters, 3, "conv2", padding="same")
        self.bn2 = keras.layers.BatchNormalization(name="bn2", **last)
        # The book's projection has no batch norm.
        self.shortcut_conv = self.shortcut_bn = None
        if use_projection:
            self.shortcut_conv = _conv(
                filters, 1, "shortcut_conv", strides=strides
            )

    def build(self, input_shape):
        channels = check_image_input(self, input_shape)
        self._check_identity(channels, self.filters, self.strides == 1)
        _build_chain(input_shape, self.conv1, self.bn1, self.conv2, self.bn2)
        self._build_shortcut(input_shape)

    def call(self, inputs, training=None):
        x = keras.ops.relu(self.bn1(self.conv1(inputs), training=training))
        x = self.bn2(self.conv2(x), training=training)
        return self._join(x, inputs, training)

    def compute_output_shape(self, input_shape):
        return self.conv1.compute_output_shape(input_shape)


@register()
class BottleneckBlock(_ResidualLayer):
    """The ImageNet ResNet bottleneck: 1x1, 3x3, 1x1 (`expansion` x wider).

    Post-activation (ResNet v1, `preact=False`), as keras.applications'
    ResNet50/101/152: the first 1x1 convolution has the stride,
    `relu(bn3(conv3(...)) + shortcut(x))` with the shortcut the identity
    or a strided 1x1 convolution and batch norm; every convolution has a
    bias.

    Pre-activation (ResNet v2, `preact=True`), as keras.applications'
    ResNet50V2/101V2/152V2: `preact_bn` and ReLU come first; the
    projection (a strided 1x1 convolution with a bias, no batch norm)
    reads the pre-activated input; without a projection a strided block
    subsamples the raw input (a 1x1 max pool). The 3x3 convolution has
    the stride and an explicit zero padding of 1; only `conv3` and the
    projection have biases, and nothing follows the addition.

    Batch norm uses keras.applications' epsilon 1.001e-5.

    Args:
        filters: channels of the 1x1 and 3x3 bottleneck convolutions; the
            block outputs `expansion * filters`.
        strides: the block's stride.
        use_projection: use a 1x1 convolution shortcut.
        preact: pre-activation (v2) instead of post-activation (v1).
        expansion: output channels per bottleneck channel (4 in ResNet).
        drop_path_rate: stochastic depth: probability of dropping the
            residual branch of an example in training.
        zero_init_last: start `bn3`'s scale (v1) or `conv3`'s kernel and
            bias (v2) at zero, so that the
            block starts as its shortcut.

    Input shape: `(batch, height, width, channels)`. Output shape:
    `(batch, ceil(height / strides), ceil(width / strides),
    expansion * filters)`.

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> block = kerasblocks.layers.BottleneckBlock(4, use_projection=True)
    >>> block(tf.ones((2, 8, 8, 3))).shape
    TensorShape([2, 8, 8, 16])
    """

    def __init__(
        self,
        filters: int,
        *,
        strides: int = 1,
        use_projection: bool = False,
        preact: bool = False,
        expansion: int = 4,
        drop_path_rate: float = 0.0,
        zero_init_last: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self._shape_options(filters, strides, use_projection)
        self.preact = _bool("preact", preact)
        self.expansion = _positive_int("expansion", expansion)
        last = self._training_options(drop_path_rate, zero_init_last)
        out = expansion * filters
        v1 = not preact

        def bn(name, **kw):
            return keras.layers.BatchNormalization(
                epsilon=IMAGENET_EPSILON, name=name, **kw
            )

        self.preact_bn = None if v1 else bn("preact_bn")
        self.conv1 = _conv(
            filters, 1, "conv1", strides=strides if v1 else 1, use_bias=v1
        )
        self.bn1 = bn("bn1")
        self.pad2 = None
        if v1:
            self.conv2 = _conv(filters, 3, "conv2", padding="same")
        else:
            self.pad2 = keras.layers.ZeroPadding2D(1, name="pad2")
            self.conv2 = _conv(
                filters, 3, "conv2", strides=strides, use_bias=False
            )
        self.bn2 = bn("bn2")
        # v2 has no batch norm after conv3: zero the convolution itself.
        zeros = {}
        if self.zero_init_last and not v1:
            zeros = {"kernel_initializer": "zeros", "bias_initializer": "zeros"}
        self.conv3 = _conv(out, 1, "conv3", **zeros)
        self.bn3 = bn("bn3", **last) if v1 else None
        self.shortcut_conv = self.shortcut_bn = self.shortcut_pool = None
        if use_projection:
            self.shortcut_conv = _conv(out, 1, "shortcut_conv", strides=strides)
            self.shortcut_bn = bn("shortcut_bn") if v1 else None
        elif preact and strides > 1:
            self.shortcut_pool = keras.layers.MaxPooling2D(
                1, strides=strides, name="shortcut_pool"
            )

    def build(self, input_shape):
        channels = check_image_input(self, input_shape)
        out = self.expansion * self.filters
        self._check_identity(channels, out, self.preact or self.strides == 1)
        if self.preact_bn is not None:
            self.preact_bn.build(input_shape)
        chain = [self.conv1, self.bn1, self.pad2, self.conv2, self.bn2]
        chain += [self.conv3, self.bn3]
        _build_chain(input_shape, *[x for x in chain if x is not None])
        self._build_shortcut(input_shape)

    def call(self, inputs, training=None):
        if self.preact:
            return self._call_v2(inputs, training)
        x = keras.ops.relu(self.bn1(self.conv1(inputs), training=training))
        x = keras.ops.relu(self.bn2(self.conv2(x), training=training))
        x = self.bn3(self.conv3(x), training=training)
        return self._join(x, inputs, training)

    def _call_v2(self, inputs, training):
        preact = keras.ops.relu(self.preact_bn(inputs, training=training))
        shortcut = inputs
        if self.shortcut_conv is not None:
            shortcut = self._shortcut(preact, training)
        elif self.shortcut_pool is not None:
            shortcut = self.shortcut_pool(inputs)
        x = keras.ops.relu(self.bn1(self.conv1(preact), training=training))
        x = self.conv2(self.pad2(x))
        x = keras.ops.relu(self.bn2(x, training=training))
        return shortcut + self._drop_branch(self.conv3(x), training)

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape

        def down(size):
            return None if size is None else -(-size // self.strides)

        out = self.expansion * self.filters
        return (batch, down(height), down(width), out)
