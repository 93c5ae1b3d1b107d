"""`DepthwiseSeparableBlock`, `SqueezeExcite` and `MobileNetV3Block`
beyond the conformance specs: keras.applications' padding, the paths
without expansion or squeeze-excite, the gate's value and argument
errors."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasblocks as kb
from kerasblocks.testing import random_inputs


def _zero(*variables):
    for variable in variables:
        variable.assign(tf.zeros_like(variable))


def test_depthwise_separable_pads_bottom_right_whatever_the_size():
    block = kb.layers.DepthwiseSeparableBlock(5, strides=2, name="b")
    x = random_inputs((2, 7, 8, 3), seed=0)
    y = block(x, training=False)
    # One row and column of zeros, then "valid": 7 -> 3 (not "same"'s 4).
    assert y.shape == (2, 3, 4, 5)
    assert block.compute_output_shape((None, 7, 8, 3)) == (None, 3, 4, 5)
    assert [v.path for v in block.trainable_weights] == [
        "b/depthwise/kernel",
        "b/depthwise_bn/gamma",
        "b/depthwise_bn/beta",
        "b/pointwise/kernel",
        "b/pointwise_bn/gamma",
        "b/pointwise_bn/beta",
    ]
    # The same function from Keras's layers, padding included.
    padded = keras.layers.ZeroPadding2D(((0, 1), (0, 1)))(x)
    depthwise = keras.ops.depthwise_conv(
        padded, block.depthwise.kernel, strides=2, padding="valid"
    )
    z = keras.ops.relu6(block.depthwise_bn(depthwise, training=False))
    z = block.pointwise_bn(block.pointwise(z), training=False)
    np.testing.assert_allclose(y, keras.ops.relu6(z), atol=1e-6)


def test_squeeze_excite_gate_of_zero_weights_halves_the_input():
    se = kb.layers.SqueezeExcite(3, gate_activation="hard_sigmoid")
    x = random_inputs((2, 4, 4, 6), seed=1)
    se(x)
    _zero(*se.weights)
    np.testing.assert_allclose(se(x), 0.5 * np.asarray(x), atol=1e-7)
    se.expand_conv.bias.assign(np.full(6, 3.0, "float32"))
    np.testing.assert_allclose(se(x), x, atol=1e-7)


def test_v3_block_adds_the_input_at_stride_one_same_width():
    block = kb.layers.MobileNetV3Block(
        4, expanded_filters=8, squeeze_filters=8, activation="hard_swish"
    )
    x = random_inputs((2, 5, 5, 4), seed=2)
    block(x)
    assert tuple(block.expand.kernel.shape) == (1, 1, 4, 8)
    _zero(block.project_bn.gamma, block.project_bn.beta)
    np.testing.assert_array_equal(block(x, training=False), x)


def test_v3_block_without_expansion_or_squeeze_excite():
    block = kb.layers.MobileNetV3Block(6, kernel_size=5, strides=2, name="b")
    x = random_inputs((2, 9, 8, 4), seed=3)
    assert block(x).shape == (2, 5, 4, 6)
    assert block.expand is None and block.squeeze_excite is None
    assert sorted({v.path.split("/")[1] for v in block.weights}) == [
        "depthwise",
        "depthwise_bn",
        "project",
        "project_bn",
    ]
    assert tuple(block.depthwise.kernel.shape) == (5, 5, 4, 1)
    config = block.get_config()
    assert (config["expanded_filters"], config["squeeze_filters"]) == (
        None,
        None,
    )
    assert config["activation"] == "relu"


@pytest.mark.parametrize(
    "factory, message",
    [
        (
            lambda: kb.layers.DepthwiseSeparableBlock(8, strides=3),
            "strides must be 1 or 2",
        ),
        (
            lambda: kb.layers.DepthwiseSeparableBlock(8, depth_multiplier=0),
            "depth_multiplier must be a positive int",
        ),
        (
            lambda: kb.layers.SqueezeExcite(0),
            "squeeze_filters must be a positive int",
        ),
        (
            lambda: kb.layers.SqueezeExcite(4, gate_activation="nope"),
            "Unknown gate_activation",
        ),
        (
            lambda: kb.layers.MobileNetV3Block(8, kernel_size=4),
            "kernel_size must be odd",
        ),
        (
            lambda: kb.layers.MobileNetV3Block(8, expanded_filters=0),
            "expanded_filters must be a positive int",
        ),
        (
            lambda: kb.layers.MobileNetV3Block(8, momentum=1.0),
            r"momentum must be in \[0, 1\)",
        ),
    ],
)
def test_bad_arguments_raise(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()
