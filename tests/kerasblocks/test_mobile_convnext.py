"""`InvertedResidual` and `ConvNeXtBlock` beyond the conformance specs:
shortcut and expansion paths, keras.applications' stride-2 padding,
layer scale, stochastic depth and argument errors."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasblocks as kb
from kerasblocks.layers.mobile import stride_two_padding
from kerasblocks.testing import random_inputs


def _zero(*variables):
    for variable in variables:
        variable.assign(tf.zeros_like(variable))


def test_inverted_residual_adds_the_input_at_stride_one_same_width():
    block = kb.layers.InvertedResidual(4, name="block")
    x = random_inputs((2, 5, 5, 4), seed=0)
    block(x)
    assert [v.path for v in block.weights][:2] == [
        "block/expand/kernel",
        "block/expand_bn/gamma",
    ]
    assert tuple(block.expand.kernel.shape) == (1, 1, 4, 24)
    _zero(block.project_bn.gamma, block.project_bn.beta)
    np.testing.assert_array_equal(block(x, training=False), x)


def test_inverted_residual_without_shortcut_when_the_width_changes():
    block = kb.layers.InvertedResidual(6, expansion=1)
    x = random_inputs((2, 5, 5, 4), seed=0)
    assert block(x).shape == (2, 5, 5, 6)
    assert block.expand is None
    assert sorted({v.path.split("/")[1] for v in block.weights}) == [
        "depthwise",
        "depthwise_bn",
        "project",
        "project_bn",
    ]
    _zero(block.project_bn.gamma, block.project_bn.beta)
    np.testing.assert_array_equal(block(x, training=False), 0.0)


@pytest.mark.parametrize(
    "height, width, kernel_size, expected",
    [
        (6, 6, 3, ((0, 1), (0, 1))),
        (7, 4, 3, ((1, 1), (0, 1))),
        (None, None, 3, ((0, 1), (0, 1))),
        (9, 8, 5, ((2, 2), (1, 2))),
    ],
)
def test_stride_two_padding_is_keras_applications(
    height, width, kernel_size, expected
):
    assert stride_two_padding(height, width, kernel_size) == expected


@pytest.mark.parametrize("size", [6, 7])
def test_strided_inverted_residual_equals_explicit_keras_layers(size):
    block = kb.layers.InvertedResidual(8, expansion=1, strides=2)
    x = random_inputs((2, size, size, 4), seed=1)
    y = block(x, training=False)
    # keras.applications: ZeroPadding2D(correct_pad) then a "valid"
    # DepthwiseConv2D.
    pad = keras.layers.ZeroPadding2D(stride_two_padding(size, size, 3))
    depthwise = keras.layers.DepthwiseConv2D(
        3, strides=2, padding="valid", use_bias=False
    )
    depthwise.build((2, size + 2, size + 2, 4))
    depthwise.kernel.assign(block.depthwise.kernel)
    z = block.depthwise_bn(depthwise(pad(x)), training=False)
    z = block.project_bn(block.project(keras.ops.relu6(z)), training=False)
    assert y.shape == (2, (size + 1) // 2, (size + 1) // 2, 8)
    np.testing.assert_allclose(y, z, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"filters": 0}, "filters must be a positive int"),
        ({"filters": 4, "strides": 3}, "strides must be 1 or 2"),
        ({"filters": 4, "kernel_size": 4}, "kernel_size must be odd"),
        ({"filters": 4, "expansion": 0}, "expansion must be a positive"),
        ({"filters": 4, "momentum": 1.0}, r"momentum must be in \[0, 1\)"),
    ],
)
def test_inverted_residual_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        kb.layers.InvertedResidual(**kwargs)


def test_convnext_block_layer_scale_scales_the_branch():
    x = random_inputs((2, 6, 6, 8), seed=2)
    scaled = kb.layers.ConvNeXtBlock(8, layer_scale_init_value=0.5)
    plain = kb.layers.ConvNeXtBlock(8, layer_scale_init_value=None)
    scaled(x), plain(x)
    assert not any(v.path.endswith("/layer_scale") for v in plain.weights)
    assert len(scaled.weights) == len(plain.weights) + 1
    np.testing.assert_allclose(scaled.layer_scale, np.full(8, 0.5))
    plain.set_weights(scaled.get_weights()[1:])
    np.testing.assert_allclose(scaled(x) - x, 0.5 * (plain(x) - x), atol=1e-5)


def test_convnext_block_drops_whole_examples_in_training():
    keras.utils.set_random_seed(3)
    block = kb.layers.ConvNeXtBlock(
        4, drop_path_rate=0.5, layer_scale_init_value=1.0
    )
    x = random_inputs((16, 3, 3, 4), seed=3)
    branch = keras.ops.convert_to_numpy(block(x, training=False) - x)
    y = keras.ops.convert_to_numpy(block(x, training=True) - x)
    dropped = [np.allclose(y[i], 0.0) for i in range(16)]
    kept = [np.allclose(y[i], branch[i] / 0.5, atol=1e-5) for i in range(16)]
    assert all(d != k for d, k in zip(dropped, kept, strict=True))
    assert 0 < sum(dropped) < 16


def test_convnext_block_without_stochastic_depth_has_no_random_state():
    block = kb.layers.ConvNeXtBlock(4)
    block(random_inputs((1, 3, 3, 4)))
    assert block.drop_path is None
    assert len(block.variables) == len(block.weights) == 9


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"filters": 0}, "filters must be a positive int"),
        ({"filters": 4, "drop_path_rate": 1.0}, r"drop_path_rate must be"),
        (
            {"filters": 4, "layer_scale_init_value": "big"},
            "layer_scale_init_value must be a float or None",
        ),
    ],
)
def test_convnext_block_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        kb.layers.ConvNeXtBlock(**kwargs)


def test_convnext_block_needs_filters_input_channels():
    with pytest.raises(ValueError, match=r"takes \(batch, height, width, 8\)"):
        kb.layers.ConvNeXtBlock(8)(tf.ones((1, 4, 4, 6)))
