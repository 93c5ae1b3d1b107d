"""`MBConv` and `FusedMBConv` beyond the conformance specs: the
shortcut, expansion and squeeze-and-excitation paths, stochastic depth
per example, and argument errors."""

import keras
import numpy as np
import pytest

import kerasblocks as kb
from kerasblocks.testing import random_inputs


def _zero_branch(block):
    block.project_bn.gamma.assign(np.zeros(block.filters, "float32"))
    block.project_bn.beta.assign(np.zeros(block.filters, "float32"))


def _sublayers(block):
    return sorted({v.path.split("/")[1] for v in block.weights})


def test_mbconv_widths_and_identity_shortcut():
    block = kb.layers.MBConv(8, expansion=6, se_ratio=0.25, name="b")
    x = random_inputs((2, 5, 5, 8), seed=0)
    assert block(x).shape == (2, 5, 5, 8)
    assert tuple(block.expand_conv.kernel.shape) == (1, 1, 8, 48)
    assert tuple(block.depthwise_conv.kernel.shape) == (3, 3, 48, 1)
    # The squeeze width comes from the block's input channels.
    assert tuple(block.se_reduce.kernel.shape) == (1, 1, 48, 2)
    assert tuple(block.se_expand.kernel.shape) == (1, 1, 2, 48)
    assert block.drop is None
    _zero_branch(block)
    np.testing.assert_array_equal(block(x, training=False), x)


def test_mbconv_without_expansion_or_excitation():
    block = kb.layers.MBConv(6, expansion=1, se_ratio=0.0)
    x = random_inputs((2, 5, 5, 4), seed=0)
    assert block(x).shape == (2, 5, 5, 6)
    assert block.expand_conv is None and block.se_reduce is None
    assert _sublayers(block) == [
        "depthwise_bn",
        "depthwise_conv",
        "project_bn",
        "project_conv",
    ]
    _zero_branch(block)  # no shortcut: the width changes
    np.testing.assert_array_equal(block(x, training=False), 0.0)


def test_fused_mbconv_without_expansion_convolves_once_and_activates():
    block = kb.layers.FusedMBConv(6, expansion=1, strides=2)
    x = random_inputs((2, 7, 5, 4), seed=0)
    assert block(x).shape == (2, 4, 3, 6)
    assert _sublayers(block) == ["project_bn", "project_conv"]
    assert tuple(block.project_conv.kernel.shape) == (3, 3, 4, 6)
    block.project_bn.gamma.assign(np.zeros(6, "float32"))
    block.project_bn.beta.assign(np.full(6, 2.0, "float32"))
    # swish(2) after the batch norm, which the projection of the
    # expanded form does not have.
    np.testing.assert_allclose(
        block(x, training=False), 2.0 / (1.0 + np.exp(-2.0)), rtol=1e-6
    )


def test_fused_mbconv_with_expansion_projects_with_a_1x1():
    block = kb.layers.FusedMBConv(4, expansion=4, kernel_size=5)
    x = random_inputs((2, 6, 6, 4), seed=0)
    assert block(x).shape == (2, 6, 6, 4)
    assert tuple(block.expand_conv.kernel.shape) == (5, 5, 4, 16)
    assert tuple(block.project_conv.kernel.shape) == (1, 1, 16, 4)
    _zero_branch(block)
    np.testing.assert_array_equal(block(x, training=False), x)


def test_stochastic_depth_drops_whole_examples_in_training_only():
    keras.utils.set_random_seed(3)
    block = kb.layers.MBConv(4, expansion=2, drop_path_rate=0.5)
    x = random_inputs((64, 3, 3, 4), seed=0)
    branch = np.asarray(block(x, training=False)) - np.asarray(x)
    trained = np.asarray(block(x, training=True))
    # Batch statistics in training: compare with the same call's branch
    # recomputed without the drop.
    block.drop.rate = 0.0
    kept = np.asarray(block(x, training=True)) - np.asarray(x)
    scale = (trained - np.asarray(x)) / np.where(kept == 0, 1, kept)
    per_example = scale.reshape(64, -1)
    assert np.allclose(per_example, per_example[:, :1], atol=1e-4)
    assert set(np.round(per_example[:, 0], 3)) == {0.0, 2.0}
    assert np.any(branch != 0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"filters": 0}, "filters must be a positive int"),
        ({"expansion": 0}, "expansion must be a positive int"),
        ({"kernel_size": 4}, "kernel_size must be odd"),
        ({"strides": 3}, "strides must be 1 or 2"),
        ({"se_ratio": 1.5}, r"se_ratio must be in \[0, 1\]"),
        ({"drop_path_rate": 1.0}, r"drop_path_rate must be in \[0, 1\)"),
        ({"momentum": 1.0}, r"momentum must be in \[0, 1\)"),
        ({"epsilon": 0.0}, "epsilon must be positive"),
    ],
)
@pytest.mark.parametrize("block", ["MBConv", "FusedMBConv"])
def test_bad_arguments_raise(block, kwargs, message):
    arguments = {"filters": 8, **kwargs}
    with pytest.raises(ValueError, match=message):
        getattr(kb.layers, block)(arguments.pop("filters"), **arguments)


def test_a_block_needs_known_channels():
    block = kb.layers.MBConv(8)
    with pytest.raises(ValueError, match="known channels"):
        block.build((2, 5, 5))
