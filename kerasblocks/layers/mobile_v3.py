"""MobileNetV3's blocks, as keras.applications builds them.

`SqueezeExcite` (Hu et al., 2018) rescales each channel by a gate
computed from the globally pooled input: a 1x1 convolution down to
`squeeze_filters`, an activation, a 1x1 convolution back, and the gate
activation. `MobileNetV3Block` is MobileNetV2's inverted residual with a
choice of kernel size and activation (ReLU or hard-swish) and an
optional `SqueezeExcite` after the depthwise convolution.

Sublayers: `reduce_conv`, `expand_conv` (SqueezeExcite); `expand`,
`expand_bn`, `depthwise`, `depthwise_bn`, `squeeze_excite`, `project`,
`project_bn` (MobileNetV3Block). The names are the weight-file contract.
"""

from __future__ import annotations

from collections.abc import Callable

import keras

from kerasblocks._config import CapturedConfig
from kerasblocks._registry import register
from kerasblocks._validation import positive_int as _positive_int
from kerasblocks.layers._checks import check_image_input
from kerasblocks.layers.mobile import _InvertedBottleneck


def _activation(name, value):
    try:
        return keras.activations.get(value)
    except ValueError:
        raise ValueError(
            f"Unknown {name}. Received: {name}={value!r}"
        ) from None


@register()
class SqueezeExcite(CapturedConfig, keras.layers.Layer):
    """Squeeze-and-excitation: channels rescaled by a learned gate.

    `x * gate(expand_conv(act(reduce_conv(mean(x)))))`, where the mean is
    over height and width, `reduce_conv` is a 1x1 convolution (with
    bias) to `squeeze_filters` channels and `expand_conv` one back to the
    input's channels.

    Args:
        squeeze_filters: channels of the squeezed descriptor.
        activation: activation after `reduce_conv`.
        gate_activation: activation of the gate (MobileNetV3 uses
            "hard_sigmoid", the original paper "sigmoid").

    Input shape: `(batch, height, width, channels)`; the output has the
    same shape.

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> se = kerasblocks.layers.SqueezeExcite(2, name="se")
    >>> se(tf.ones((2, 5, 5, 8))).shape
    TensorShape([2, 5, 5, 8])
    >>> [tuple(v.shape) for v in se.weights]
    [(1, 1, 8, 2), (2,), (1, 1, 2, 8), (8,)]
    """

    def __init__(
        self,
        squeeze_filters: int,
        *,
        activation: str | Callable = "relu",
        gate_activation: str | Callable = "sigmoid",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.squeeze_filters = _positive_int("squeeze_filters", squeeze_filters)
        self.activation = _activation("activation", activation)
        self.gate_activation = _activation("gate_activation", gate_activation)
        self.reduce_conv = keras.layers.Conv2D(
            squeeze_filters, 1, name="reduce_conv"
        )
        # Its filters are the input's channels, set in `build`.
        self.expand_conv = keras.layers.Conv2D(1, 1, name="expand_conv")

    def build(self, input_shape):
        channels = check_image_input(self, input_shape)
        pooled = (input_shape[0], 1, 1, channels)
        self.reduce_conv.build(pooled)
        self.expand_conv.filters = channels
        self.expand_conv.build((input_shape[0], 1, 1, self.squeeze_filters))

    def call(self, inputs):
        x = keras.ops.mean(inputs, axis=(1, 2), keepdims=True)
        x = self.activation(self.reduce_conv(x))
        return inputs * self.gate_activation(self.expand_conv(x))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


@register()
class MobileNetV3Block(_InvertedBottleneck):
    """MobileNetV3's inverted residual block (paper's "bneck").

    In order: `expand` (1x1 convolution to `expanded_filters`, no bias),
    `expand_bn`, activation (these three are absent when
    `expanded_filters` is None); `depthwise` (`kernel_size` depthwise
    convolution, no bias; at stride 2 the input is zero-padded as
    keras.applications does and the convolution is "valid"),
    `depthwise_bn`, activation; `squeeze_excite` (a `SqueezeExcite` with
    ReLU and a hard-sigmoid gate, when `squeeze_filters` is set);
    `project` (1x1 convolution to `filters`, no bias), `project_bn`, no
    activation. The input is added to the output when `strides` is 1 and
    the channels are unchanged.

    Args:
        filters: output channels.
        expanded_filters: channels of the expanded layer; None to filter
            the input's channels directly.
        kernel_size: size of the depthwise kernel (odd).
        strides: stride of the depthwise convolution (1 or 2).
        squeeze_filters: squeeze-excite width; None for no squeeze-excite.
        activation: "relu", "hard_swish" or any activation.
        momentum: batch-norm momentum.
        epsilon: batch-norm epsilon.

    Input shape: `(batch, height, width, channels)`. Output shape:
    `(batch, ceil(height / strides), ceil(width / strides), filters)`.

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> block = kerasblocks.layers.MobileNetV3Block(
    ...     8, expanded_filters=24, kernel_size=5, strides=2,
    ...     squeeze_filters=8, activation="hard_swish", name="b")
    >>> block(tf.ones((2, 7, 7, 4))).shape
    TensorShape([2, 4, 4, 8])
    >>> [v.path for v in block.trainable_weights][6:8]
    ['b/squeeze_excite/reduce_conv/kernel', 'b/squeeze_excite/reduce_conv/bias']
    """

    def __init__(
        self,
        filters: int,
        *,
        expanded_filters: int | None = None,
        kernel_size: int = 3,
        strides: int = 1,
        squeeze_filters: int | None = None,
        activation: str | Callable = "relu",
        momentum: float = 0.999,
        epsilon: float = 1e-3,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self._check_arguments(filters, kernel_size, strides, momentum, epsilon)
        if expanded_filters is not None:
            _positive_int("expanded_filters", expanded_filters)
        self.expanded_filters = expanded_filters
        if squeeze_filters is not None:
            _positive_int("squeeze_filters", squeeze_filters)
        self.squeeze_filters = squeeze_filters
        self.activation = _activation("activation", activation)
        self.expand = self.expand_bn = None
        if expanded_filters is not None:
            self._make_expansion(expanded_filters)
        self._make_depthwise()
        self.squeeze_excite = None
        if squeeze_filters is not None:
            self.squeeze_excite = SqueezeExcite(
                squeeze_filters,
                gate_activation="hard_sigmoid",
                name="squeeze_excite",
            )
        self._make_projection()

    def _expanded_width(self, channels):
        return self.expanded_filters

    def _activate(self, x):
        return self.activation(x)
