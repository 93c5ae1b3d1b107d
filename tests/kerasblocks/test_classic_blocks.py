"""The classic CNN blocks: names, shapes and argument checks (the
conformance suite runs the shared harness on them)."""

import numpy as np
import pytest
import tensorflow as tf

import kerasblocks as kb


def test_vgg_block_weight_paths_follow_keras_applications_names():
    block = kb.layers.VGGBlock(3, 8, name="block3")
    y = block(tf.ones((1, 6, 6, 2)))
    assert y.shape == (1, 3, 3, 8)
    assert [v.path for v in block.weights[::2]] == [
        "block3/conv1/kernel",
        "block3/conv2/kernel",
        "block3/conv3/kernel",
    ]


def test_nin_block_is_a_conv_then_two_1x1_convs():
    block = kb.layers.NiNBlock(5, 3, 2, "same")
    y = block(tf.ones((2, 9, 9, 4)))
    assert y.shape == (2, 5, 5, 5)
    assert [tuple(v.shape) for v in block.weights[::2]] == [
        (3, 3, 4, 5),
        (1, 1, 5, 5),
        (1, 1, 5, 5),
    ]
    assert np.all(y.numpy() >= 0.0)  # ReLU last


def test_inception_concatenates_the_four_paths_in_order():
    block = kb.layers.Inception(1, (2, 3), (2, 4), 5)
    x = tf.random.stateless_uniform((1, 4, 4, 3), seed=(1, 2))
    y = block(x)
    assert y.shape == (1, 4, 4, 13)
    path1 = block.path1_conv(x)
    path4 = block.path4_conv(block.path4_pool(x))
    np.testing.assert_allclose(y[..., :1], path1, atol=1e-6)
    np.testing.assert_allclose(y[..., 8:], path4, atol=1e-6)
    assert block.get_config()["c2"] == [2, 3]  # as JSON keeps it


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: kb.layers.VGGBlock(0, 8), "num_convs=0"),
        (lambda: kb.layers.VGGBlock(1, 8, activation="nope"), "nope"),
        (lambda: kb.layers.NiNBlock(8, 3, 1, "full"), "padding='full'"),
        (lambda: kb.layers.NiNBlock(8, 0), "kernel_size=0"),
        (lambda: kb.layers.Inception(8, (4,), (2, 4), 4), r"c2=\(4,\)"),
        (lambda: kb.layers.Inception(8, (4, 8), (2, 0), 4), r"c3\[1\]=0"),
    ],
)
def test_bad_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_wrong_channels_after_build():
    block = kb.layers.Inception(1, (2, 3), (2, 4), 5)
    block(tf.ones((1, 4, 4, 3)))
    with pytest.raises(ValueError, match="expected axis -1"):
        block(tf.ones((1, 4, 4, 2)))
