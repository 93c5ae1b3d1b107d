"""The ConvNeXt block, as keras.applications' ConvNeXt computes it.

`ConvNeXtBlock` is a depthwise 7x7 convolution, layer normalization and
an inverted bottleneck of two pointwise (`Dense`) layers with GELU,
scaled per channel ("layer scale"), randomly skipped per example during
training ("stochastic depth") and added to the input. Its sublayers
have fixed names (`depthwise_conv`, `layernorm`, `pointwise_conv_1`,
`pointwise_conv_2`) and its scale is the variable `layer_scale`; the
names are the weight-file contract.
"""

from __future__ import annotations

import keras

from kerasblocks._config import CapturedConfig
from kerasblocks._registry import register
from kerasblocks.layers.regularization import DropPath, check_drop_path_rate


@register()
class ConvNeXtBlock(CapturedConfig, keras.layers.Layer):
    """One ConvNeXt block: `x + drop_path(scale * mlp(norm(dwconv(x))))`.

    In order: `depthwise_conv` (7x7 depthwise convolution with a bias,
    "same" padding), `layernorm` (epsilon 1e-6), `pointwise_conv_1`
    (`Dense(4 * filters)`), exact GELU, `pointwise_conv_2`
    (`Dense(filters)`), multiplication by the per-channel `layer_scale`
    (initialized to `layer_scale_init_value`), stochastic depth, and the
    residual addition.

    keras.applications writes the depthwise convolution as a `Conv2D`
    with `groups=filters` (kernel `(7, 7, 1, filters)`); this block uses
    `DepthwiseConv2D` (kernel `(7, 7, filters, 1)`), the same function
    and parameters, because TensorFlow's CPU kernels run it about 100x
    faster than a grouped convolution.

    Stochastic depth (training only, a `DropPath` named `drop_path` when
    `drop_path_rate > 0`) zeroes the residual branch of each example
    with probability `drop_path_rate` and divides the kept branches by
    `1 - drop_path_rate`; at inference it is the identity.

    Args:
        filters: channels of the input and output.
        drop_path_rate: probability of dropping the residual branch of
            an example during training, in [0, 1).
        layer_scale_init_value: initial value of the per-channel scale;
            None leaves the branch unscaled (no `layer_scale` variable).
        zero_init_last: start the layer scale at zero (without a layer
            scale: `pointwise_conv_2`'s kernel and bias), so that the
            block starts as the identity.

    Input shape: `(batch, height, width, filters)`; the output has the
    same shape.

    Example:

    >>> import tensorflow as tf, kerasblocks
    >>> block = kerasblocks.layers.ConvNeXtBlock(8, name="b")
    >>> block(tf.ones((2, 5, 5, 8))).shape
    TensorShape([2, 5, 5, 8])
    >>> [v.path for v in block.weights][:2]
    ['b/layer_scale', 'b/depthwise_conv/kernel']
    """

    def __init__(
        self,
        filters: int,
        *,
        drop_path_rate: float = 0.0,
        layer_scale_init_value: float | None = 1e-6,
        zero_init_last: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(filters, bool) or not isinstance(filters, int):
            raise ValueError(
                f"filters must be a positive int. Received: {filters=}"
            )
        if filters < 1:
            raise ValueError(
                f"filters must be a positive int. Received: {filters=}"
            )
        check_drop_path_rate(drop_path_rate)
        if not isinstance(zero_init_last, bool):
            raise ValueError(
                f"zero_init_last must be a bool. Received: {zero_init_last=}"
            )
        if layer_scale_init_value is not None and (
            isinstance(layer_scale_init_value, bool)
            or not isinstance(layer_scale_init_value, (int, float))
        ):
            raise ValueError(
                "layer_scale_init_value must be a float or None. Received: "
                f"{layer_scale_init_value=}"
            )
        self.filters = filters
        self.drop_path_rate = float(drop_path_rate)
        self.zero_init_last = zero_init_last
        self.layer_scale_init_value = (
            None
            if layer_scale_init_value is None
            else float(layer_scale_init_value)
        )
        self.depthwise_conv = keras.layers.DepthwiseConv2D(
            7, padding="same", name="depthwise_conv"
        )
        self.layernorm = keras.layers.LayerNormalization(
            epsilon=1e-6, name="layernorm"
        )
        self.pointwise_conv_1 = keras.layers.Dense(
            4 * filters, name="pointwise_conv_1"
        )
        zeros = {}
        if zero_init_last and self.layer_scale_init_value is None:
            zeros = {"kernel_initializer": "zeros", "bias_initializer": "zeros"}
        self.pointwise_conv_2 = keras.layers.Dense(
            filters, name="pointwise_conv_2", **zeros
        )
        self.drop_path = None
        if self.drop_path_rate > 0:
            self.drop_path = DropPath(self.drop_path_rate, name="drop_path")

    def build(self, input_shape):
        if len(input_shape) != 4 or input_shape[-1] != self.filters:
            raise ValueError(
                f"ConvNeXtBlock '{self.name}' takes (batch, height, width, "
                f"{self.filters}) inputs (the residual needs filters input "
                f"channels). Received: {input_shape=}"
            )
        if self.layer_scale_init_value is not None:
            self.layer_scale = self.add_weight(
                name="layer_scale",
                shape=(self.filters,),
                initializer=keras.initializers.Constant(
                    0.0 if self.zero_init_last else self.layer_scale_init_value
                ),
            )
        shape = tuple(input_shape)
        self.depthwise_conv.build(shape)
        self.layernorm.build(shape)
        self.pointwise_conv_1.build(shape)
        self.pointwise_conv_2.build((*shape[:3], 4 * self.filters))

    def call(self, inputs, training=None):
        x = self.layernorm(self.depthwise_conv(inputs))
        x = keras.activations.gelu(self.pointwise_conv_1(x), approximate=False)
        x = self.pointwise_conv_2(x)
        if self.layer_scale_init_value is not None:
            x = x * self.layer_scale
        if self.drop_path is not None:
            x = self.drop_path(x, training=training)
        return inputs + x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)
