"""DenseNet's blocks: `DenseBlock` and `TransitionBlock`.

Both come in the book's form (section "Densely Connected Networks":
pre-activation 3x3 convolutions with bias, Keras's default batch-norm
epsilon) and in keras.applications' DenseNet-BC form (a 1x1 bottleneck
of 4 x growth rate before each 3x3 convolution, no bias, epsilon
1.001e-5), chosen by arguments. Sublayer names follow keras.applications
(`block1_0_bn`, `block1_1_conv`, ...), so that a block named `conv2` holds
the variables keras.applications names `conv2_block1_0_bn/...`.
"""

from __future__ import annotations

import keras

from kerasblocks._config import CapturedConfig
from kerasblocks._registry import register
from kerasblocks._validation import positive_int as _positive_int

# The DenseNet-BC paper's bottleneck: 4 x growth rate 1x1 filters.
_BOTTLENECK_FACTOR = 4


def _positive_float(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(
            f"{name} must be a positive float. Received: {name}={value!r}"
        )
    if value <= 0:
        raise ValueError(
            f"{name} must be a positive float. Received: {name}={value!r}"
        )
    return float(value)


def _channels(owner: str, input_shape) -> int:
    if len(input_shape) != 4 or input_shape[-1] is None:
        raise ValueError(
            f"{owner} needs (batch, height, width, channels) inputs with "
            f"known channels. Received: {input_shape=}"
        )
    return int(input_shape[-1])


def _build_chain(layers, shape) -> tuple:
    """Builds each layer for the shape the previous one outputs."""
    for layer in layers:
        if not layer.built:
            layer.build(shape)
        shape = layer.compute_output_shape(shape)
    return shape


def _apply_chain(layers, x, training):
    for layer in layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            x = layer(x, training=training)
        else:
            x = layer(x)
    return x


@register()
class DenseBlock(CapturedConfig, keras.layers.Layer):
    """`num_convs` conv blocks, each concatenating its input and output.

    Conv block `i` (from 1) is batch norm, ReLU and a 3x3 "same"
    convolution of `growth_rate` filters; with `bottleneck=True` a 1x1
    convolution of `4 * growth_rate` filters, batch norm and ReLU come
    before the 3x3 convolution (DenseNet-BC). Its output is concatenated
    to its input on the channel axis, so the block adds
    `num_convs * growth_rate` channels.

    The book's block is `DenseBlock(num_convs, growth_rate)`;
    keras.applications' is `DenseBlock(num_convs, 32, bottleneck=True,
    use_bias=False, epsilon=1.001e-5)`.

    Args:
        num_convs: number of conv blocks.
        growth_rate: channels each conv block adds.
        bottleneck: put a 1x1 bottleneck before each 3x3 convolution.
        use_bias: give the convolutions a bias.
        epsilon: batch-norm epsilon.

    Shapes:
        `(batch, height, width, c)` -> `(batch, height, width,
        c + num_convs * growth_rate)`.

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> block = kerasblocks.layers.DenseBlock(2, 10)
    >>> block(tf.zeros((4, 8, 8, 3))).shape
    TensorShape([4, 8, 8, 23])
    """

    def __init__(
        self,
        num_convs: int,
        growth_rate: int,
        *,
        bottleneck: bool = False,
        use_bias: bool = True,
        epsilon: float = 1e-3,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_convs = _positive_int("num_convs", num_convs)
        self.growth_rate = _positive_int("growth_rate", growth_rate)
        self.bottleneck = bool(bottleneck)
        self.use_bias = bool(use_bias)
        self.epsilon = _positive_float("epsilon", epsilon)
        self.conv_blocks = [
            self._conv_block(f"block{i}") for i in range(1, num_convs + 1)
        ]

    def _conv_block(self, prefix: str) -> list[keras.layers.Layer]:
        layers = [
            keras.layers.BatchNormalization(
                epsilon=self.epsilon, name=f"{prefix}_0_bn"
            ),
            keras.layers.Activation("relu", name=f"{prefix}_0_relu"),
        ]
        if self.bottleneck:
            layers += [
                keras.layers.Conv2D(
                    _BOTTLENECK_FACTOR * self.growth_rate,
                    1,
                    use_bias=self.use_bias,
                    name=f"{prefix}_1_conv",
                ),
                keras.layers.BatchNormalization(
                    epsilon=self.epsilon, name=f"{prefix}_1_bn"
                ),
                keras.layers.Activation("relu", name=f"{prefix}_1_relu"),
            ]
        last = 2 if self.bottleneck else 1
        layers.append(
            keras.layers.Conv2D(
                self.growth_rate,
                3,
                padding="same",
                use_bias=self.use_bias,
                name=f"{prefix}_{last}_conv",
            )
        )
        return layers

    def build(self, input_shape):
        channels = _channels("DenseBlock", input_shape)
        shape = tuple(input_shape)
        for layers in self.conv_blocks:
            _build_chain(layers, shape)
            channels += self.growth_rate
            shape = (*shape[:-1], channels)
        self.built = True

    def call(self, inputs, training=None):
        x = inputs
        for layers in self.conv_blocks:
            y = _apply_chain(layers, x, training)
            x = keras.ops.concatenate([x, y], axis=-1)
        return x

    def compute_output_shape(self, input_shape):
        channels = _channels("DenseBlock", input_shape)
        return (
            *input_shape[:-1],
            channels + self.num_convs * self.growth_rate,
        )


@register()
class TransitionBlock(CapturedConfig, keras.layers.Layer):
    """Batch norm, ReLU, a 1x1 convolution, then 2x2 average pooling.

    Between dense blocks it sets the channels (the book halves them;
    keras.applications multiplies them by a reduction of 0.5) and halves
    the height and width. The book's block is `TransitionBlock(filters)`;
    keras.applications' is `TransitionBlock(filters, use_bias=False,
    epsilon=1.001e-5)`.

    Args:
        filters: output channels of the 1x1 convolution.
        use_bias: give the convolution a bias.
        epsilon: batch-norm epsilon.

    Shapes:
        `(batch, height, width, c)` -> `(batch, height // 2, width // 2,
        filters)`.

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> block = kerasblocks.layers.TransitionBlock(10)
    >>> block(tf.zeros((4, 9, 8, 23))).shape
    TensorShape([4, 4, 4, 10])
    """

    def __init__(
        self,
        filters: int,
        *,
        use_bias: bool = True,
        epsilon: float = 1e-3,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = _positive_int("filters", filters)
        self.use_bias = bool(use_bias)
        self.epsilon = _positive_float("epsilon", epsilon)
        self.bn = keras.layers.BatchNormalization(epsilon=epsilon, name="bn")
        self.relu = keras.layers.Activation("relu", name="relu")
        self.conv = keras.layers.Conv2D(
            filters, 1, use_bias=use_bias, name="conv"
        )
        self.pool = keras.layers.AveragePooling2D(2, strides=2, name="pool")

    def _chain(self):
        return [self.bn, self.relu, self.conv, self.pool]

    def build(self, input_shape):
        _channels("TransitionBlock", input_shape)
        _build_chain(self._chain(), tuple(input_shape))
        self.built = True

    def call(self, inputs, training=None):
        return _apply_chain(self._chain(), inputs, training)

    def compute_output_shape(self, input_shape):
        _channels("TransitionBlock", input_shape)
        shape = tuple(input_shape)
        for layer in self._chain():
            shape = layer.compute_output_shape(shape)
        return shape
