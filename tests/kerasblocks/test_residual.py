"""Residual blocks: the book's shapes, the variants the conformance specs
do not reach, layouts, parameter counts and argument errors."""

import numpy as np
import pytest
import tensorflow as tf

import kerasblocks as kb
from kerasblocks.testing import run_layer_test


def _count(layer, shape):
    layer.build(shape)
    return kb.params.count_parameters(layer)


def test_basic_block_book_shapes():
    x = tf.random.uniform((4, 6, 6, 3), seed=0)
    assert kb.layers.BasicBlock(3)(x).shape == (4, 6, 6, 3)
    block = kb.layers.BasicBlock(6, strides=2, use_projection=True)
    assert block(x).shape == (4, 3, 3, 6)
    # The book's TF projection is a bare 1x1 convolution: no batch norm.
    assert [w.path.split("/", 1)[1] for w in block.trainable_weights] == [
        "conv1/kernel",
        "conv1/bias",
        "bn1/gamma",
        "bn1/beta",
        "conv2/kernel",
        "conv2/bias",
        "bn2/gamma",
        "bn2/beta",
        "shortcut_conv/kernel",
        "shortcut_conv/bias",
    ]


def test_resnext_block_book_example():
    block = kb.layers.ResNeXtBlock(32, 16, 1)
    x = tf.random.normal((4, 96, 96, 32), seed=0)
    assert block(x).shape == (4, 96, 96, 32)
    assert block.conv2.groups == 2
    assert block.conv2.kernel.shape == (3, 3, 16, 32)


def test_resnext_block_squeeze_excitation_width():
    block = kb.layers.ResNeXtBlock(
        8, 2, 0.5, use_projection=True, se_ratio=0.25
    )
    assert block(tf.ones((1, 5, 5, 12))).shape == (1, 5, 5, 8)
    assert block.se_reduce.filters == 3  # round(0.25 * 12 input channels)
    assert block.se_expand.filters == 4  # the bottleneck channels
    assert block.conv2.groups == 2
    assert kb.layers.ResNeXtBlock(8, 2).se_reduce is None


def test_bottleneck_parameter_counts():
    # keras.applications' conv2_block1 (64 -> 256 channels); the totals
    # are the sums over its conv2_block1_* layers.
    v1 = (64 * 64 + 64) + (9 * 64 * 64 + 64) + (64 * 256 + 256)
    v1 += (64 * 256 + 256) + 4 * (64 + 64 + 256 + 256)
    block = kb.layers.BottleneckBlock(64, use_projection=True)
    assert _count(block, (None, 56, 56, 64)) == v1 == 76928
    # ResNetV2: no bias in conv1/conv2, no norm after conv3 or on the
    # projection, a pre-activation norm of the 64 input channels.
    v2 = 64 * 64 + 9 * 64 * 64 + (64 * 256 + 256) + (64 * 256 + 256)
    v2 += 4 * (64 + 64 + 64)
    block = kb.layers.BottleneckBlock(64, use_projection=True, preact=True)
    assert _count(block, (None, 56, 56, 64)) == v2 == 75008


@pytest.mark.parametrize(
    "factory, shape, expected",
    [
        # v2 strided identity: the shortcut is a 1x1/2 max pool.
        (
            lambda: kb.layers.BottleneckBlock(2, strides=2, preact=True),
            (2, 7, 7, 8),
            (2, 4, 4, 8),
        ),
        (
            lambda: kb.layers.BottleneckBlock(
                2, use_projection=True, preact=True
            ),
            (2, 5, 5, 3),
            (2, 5, 5, 8),
        ),
        (lambda: kb.layers.BottleneckBlock(2), (2, 5, 5, 8), (2, 5, 5, 8)),
        (lambda: kb.layers.BasicBlock(3), (2, 5, 5, 3), (2, 5, 5, 3)),
        (lambda: kb.layers.ResNeXtBlock(4, 2), (2, 5, 5, 4), (2, 5, 5, 4)),
    ],
)
def test_other_variants_pass_the_harness(factory, shape, expected):
    result = run_layer_test(
        factory, input_shape=shape, expected_output_shape=expected
    )
    assert result.max_parity_error["xla"] <= 1e-5


def test_v2_strided_identity_subsamples_the_raw_input():
    block = kb.layers.BottleneckBlock(2, strides=2, preact=True)
    x = tf.random.uniform((1, 5, 5, 8), seed=1)
    block(x)
    # With conv3 zeroed, the output is the shortcut alone: x[::2, ::2].
    block.conv3.kernel.assign(tf.zeros_like(block.conv3.kernel))
    block.conv3.bias.assign(tf.zeros_like(block.conv3.bias))
    np.testing.assert_array_equal(
        block(x, training=False).numpy(), x.numpy()[:, ::2, ::2, :]
    )


def test_config_round_trip_values():
    block = kb.layers.ResNeXtBlock(
        16, 4, 0.5, strides=2, use_projection=True, se_ratio=0.25, name="b"
    )
    config = block.get_config()
    assert {k: config[k] for k in list(config)[-11:]} == {
        "filters": 16,
        "group_width": 4,
        "bottleneck_ratio": 0.5,
        "strides": 2,
        "use_projection": True,
        "se_ratio": 0.25,
        "use_bias": True,
        "epsilon": 0.001,
        "momentum": 0.99,
        "drop_path_rate": 0.0,
        "zero_init_last": False,
    }
    config = kb.layers.BottleneckBlock(8, preact=True).get_config()
    assert (config["preact"], config["expansion"]) == (True, 4)


@pytest.mark.parametrize(
    "block, shape",
    [
        (kb.layers.BasicBlock(8), (1, 4, 4, 4)),
        (kb.layers.BasicBlock(4, strides=2), (1, 4, 4, 4)),
        (kb.layers.BottleneckBlock(2, strides=2), (1, 4, 4, 8)),
        (kb.layers.BottleneckBlock(2, preact=True), (1, 4, 4, 4)),
        (kb.layers.ResNeXtBlock(8, 4), (1, 4, 4, 4)),
    ],
)
def test_identity_shortcut_needs_matching_shapes(block, shape):
    with pytest.raises(ValueError, match="identity shortcut needs"):
        block(tf.ones(shape))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: kb.layers.BasicBlock(0), "filters must be a positive int"),
        (
            lambda: kb.layers.BasicBlock(4, strides="2"),
            "strides must be a positive int",
        ),
        (
            lambda: kb.layers.BasicBlock(4, use_projection=1),
            "use_projection must be a bool",
        ),
        (
            lambda: kb.layers.BottleneckBlock(4, preact="yes"),
            "preact must be a bool",
        ),
        (
            lambda: kb.layers.ResNeXtBlock(8, 16),
            "group_width must be at most the 8 bottleneck channels",
        ),
        (
            lambda: kb.layers.ResNeXtBlock(10, 3),
            "must split into 3 groups",
        ),
        (
            lambda: kb.layers.ResNeXtBlock(8, 2, 0),
            "bottleneck_ratio must be a positive number",
        ),
        (
            lambda: kb.layers.ResNeXtBlock(8, 2, se_ratio=2),
            "se_ratio must be a number in",
        ),
    ],
)
def test_bad_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_wrong_rank_is_refused():
    with pytest.raises(ValueError, match="takes \\(batch, height, width"):
        kb.layers.BasicBlock(4)(tf.ones((2, 4, 4)))
