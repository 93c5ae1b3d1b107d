"""Inception-v3's, Inception-ResNet-v2's and Xception's blocks: the
paths the conformance specs leave out, computed values and errors."""

import keras
import numpy as np
import pytest

import kerasblocks as kb


def _inputs(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def test_xception_block_with_identity_shortcut_adds_its_input():
    keras.utils.set_random_seed(0)
    block = kb.layers.XceptionBlock((4, 4, 4), name="b")
    x = _inputs((2, 5, 5, 4))
    y = keras.ops.convert_to_numpy(block(x, training=False))
    # The main path by hand: (ReLU, separable conv, batch norm) x 3.
    main = x
    for sepconv, norm in zip(block.sepconvs, block.batch_norms, strict=True):
        main = norm(sepconv(keras.ops.relu(main)), training=False)
    np.testing.assert_allclose(y, x + main, atol=1e-6)
    assert block.shortcut is None and block.pool is None
    assert [v.path for v in block.weights][:2] == [
        "b/sepconv1/depthwise_kernel",
        "b/sepconv1/pointwise_kernel",
    ]
    assert block.compute_output_shape((2, 5, 5, 4)) == (2, 5, 5, 4)


def test_inception_resnet_block_scales_the_residual_before_adding():
    keras.utils.set_random_seed(0)
    block = kb.layers.InceptionResNetBlock("block8", scale=0.2, activation=None)
    x = _inputs((1, 3, 3, 5))
    y = keras.ops.convert_to_numpy(block(x, training=False))
    residual = block.conv(block._mix(x, False))
    np.testing.assert_allclose(y, x + 0.2 * residual, atol=1e-6)
    assert block.conv.kernel.shape == (1, 1, 448, 5)
    relu = kb.layers.InceptionResNetBlock.from_config(
        {**block.get_config(), "activation": "relu"}
    )
    relu.build(x.shape)
    relu.set_weights(block.get_weights())
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(relu(x, training=False)),
        np.maximum(y, 0.0),
        atol=1e-6,
    )


def test_inception_e_splits_its_branches():
    block = kb.layers.InceptionE()
    block.build((None, 3, 3, 8))
    kernels = {
        v.path.split("/")[1]: tuple(v.shape)
        for v in block.weights
        if v.path.endswith("kernel")
    }
    assert kernels["branch3x3_2a"] == (1, 3, 384, 384)
    assert kernels["branch3x3_2b"] == (3, 1, 384, 384)
    assert kernels["branch3x3dbl_3b"] == (3, 1, 384, 384)
    assert block.compute_output_shape((None, 3, 3, 8)) == (None, 3, 3, 2048)


@pytest.mark.parametrize(
    "factory, message",
    [
        (lambda: kb.layers.ConvBN(8, (1, 7, 1)), "kernel_size must be"),
        (lambda: kb.layers.ConvBN(8, padding="full"), "padding must be"),
        (lambda: kb.layers.InceptionA(0), "pool_filters must be a positive"),
        (
            lambda: kb.layers.InceptionB(double_filters=(64, 96)),
            "double_filters must be 3 positive ints",
        ),
        (
            lambda: kb.layers.InceptionResNetBlock("block99", scale=0.1),
            "block_type must be one of",
        ),
        (lambda: kb.layers.XceptionBlock((), strides=2), "non-empty"),
        (lambda: kb.layers.XceptionBlock((8,), strides=3), "strides must"),
    ],
)
def test_bad_arguments_raise(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()


def test_xception_identity_block_refuses_other_widths():
    block = kb.layers.XceptionBlock((8, 8), name="b")
    with pytest.raises(ValueError, match=r"filters\[-1\]=8 channels"):
        block(np.zeros((1, 5, 5, 4), "float32"))


def test_inception_resnet_block_serializes_a_callable_activation():
    block = kb.layers.InceptionResNetBlock(
        "block35", scale=0.17, activation=keras.activations.relu
    )
    config = block.get_config()
    assert config["activation"] == "relu"
    assert kb.layers.InceptionResNetBlock.from_config(config).scale == 0.17
