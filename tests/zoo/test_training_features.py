"""Stochastic depth (`drop_path_rate`) and identity-initialized blocks
(`zero_init_last`) on the residual families: ResNet/ResNeXt, ConvNeXt,
ViT, RegNet and EfficientNet V1/V2, at small sizes.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasblocks as kb
import zoo
from kerasblocks.layers.regularization import linear_drop_path_rates
from kerasblocks.testing import random_inputs

# name -> (overrides of a small model, its number of residual blocks).
FAMILIES = {
    "resnet18": ({"input_shape": (32, 32, 1)}, 8),
    "resnext": ({"input_shape": (32, 32, 1)}, 8),
    "resnet50v2": (
        {"input_shape": (32, 32, 3), "depths": (1, 2, 1, 1)},
        5,
    ),
    "convnext_tiny": (
        {"input_shape": (32, 32, 3), "filters": (8, 16, 24, 32)},
        18,
    ),
    "vit_tiny16": (
        {
            "input_shape": (32, 32, 3),
            "hidden_dim": 24,
            "num_heads": 2,
            "mlp_dim": 48,
            "num_layers": 5,
        },
        5,
    ),
    "regnetx_002": ({"input_shape": (32, 32, 3)}, 13),
}
_BLOCKS = (
    kb.layers.BasicBlock,
    kb.layers.BottleneckBlock,
    kb.layers.ResNeXtBlock,
    kb.layers.ConvNeXtBlock,
    kb.layers.TransformerEncoderBlock,
)


def _create(name, **kwargs):
    overrides, _ = FAMILIES[name]
    return zoo.create_model(name, **{**overrides, **kwargs})


def _blocks(model):
    return [layer for layer in model.layers if isinstance(layer, _BLOCKS)]


def _has_drop_path(model) -> bool:
    return any(
        isinstance(layer, kb.layers.DropPath)
        for layer in model._flatten_layers(include_self=False)
    )


def _images(model, batch=2, seed=0):
    return random_inputs((batch, *model.input_shape[1:]), seed=seed)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_drop_path_schedule_config_and_identity_at_inference(name):
    plain = _create(name)
    dropped = _create(name, drop_path_rate=0.5)
    # The default adds no layer; stochastic depth adds no weight.
    assert not _has_drop_path(plain) and _has_drop_path(dropped)
    assert [w.path for w in plain.weights] == [w.path for w in dropped.weights]
    # timm's linear rule over the blocks, the last one at the rate.
    expected = linear_drop_path_rates(0.5, FAMILIES[name][1])
    assert [b.drop_path_rate for b in _blocks(dropped)] == expected
    assert _blocks(dropped)[-1].drop_path.rate == 0.5
    assert _blocks(dropped)[0].drop_path is None
    assert [b.drop_path_rate for b in _blocks(plain)] == [0.0] * len(expected)
    # Saved in the config, and back.
    assert dropped.get_config()["drop_path_rate"] == 0.5
    assert plain.get_config()["drop_path_rate"] == 0.0
    rebuilt = type(dropped).from_config(dropped.get_config())
    assert [b.drop_path_rate for b in _blocks(rebuilt)] == expected
    # Inference: equal weights give equal outputs.
    dropped.set_weights(plain.get_weights())
    x = _images(plain)
    np.testing.assert_array_equal(
        plain(x, training=False), dropped(x, training=False)
    )


def test_last_block_drops_whole_examples_at_its_rate_and_scales_the_kept():
    model = _create(
        "convnext_tiny", drop_path_rate=0.4, layer_scale_init_value=1.0
    )
    block = _blocks(model)[-1]
    n = 2000
    x = random_inputs((n, 1, 1, 32), seed=3)
    branch = keras.ops.convert_to_numpy(block(x, training=False) - x)
    trained = keras.ops.convert_to_numpy(block(x, training=True) - x)
    dropped = np.all(trained == 0, axis=(1, 2, 3))
    kept = ~dropped
    np.testing.assert_allclose(
        trained[kept], branch[kept] / 0.6, rtol=1e-4, atol=1e-5
    )
    assert np.all(np.abs(branch[dropped]).max(axis=(1, 2, 3)) > 0)
    # Binomial(2000, 0.4): standard deviation 0.011 of the fraction.
    assert abs(dropped.mean() - 0.4) < 0.05


def test_drop_path_runs_under_xla_and_gradients_reach_every_weight():
    # A two-block ViT: XLA compiles slowly on 2 CPU cores, and the
    # DropPath layer's own XLA test covers the random draws.
    model = _create(
        "vit_tiny16", drop_path_rate=0.3, num_layers=2, num_classes=10
    )
    x = _images(model, batch=8, seed=1)
    train = tf.function(lambda t: model(t, training=True), jit_compile=True)
    first, second = train(x), train(x)
    assert np.all(np.isfinite(first)) and not np.allclose(first, second)
    with tf.GradientTape() as tape:
        outputs = model(x, training=True)
        loss = tf.reduce_sum(outputs * tf.range(10.0))
    gradients = tape.gradient(loss, model.trainable_variables)
    assert all(g is not None for g in gradients)
    assert all(np.all(np.isfinite(g)) for g in gradients)
    assert all(np.abs(g).max() > 0 for g in gradients)


def _shortcut(block, x):
    """What a block's output is when its residual branch is zero."""
    if isinstance(block, kb.layers.BottleneckBlock) and block.preact:
        if block.shortcut_conv is not None:
            preact = block.preact_bn(x, training=False)
            return block.shortcut_conv(keras.ops.relu(preact))
        if block.shortcut_pool is not None:
            return block.shortcut_pool(x)
        return x
    if isinstance(block, (kb.layers.ConvNeXtBlock, _BLOCKS[-1])):
        return x
    shortcut = x
    if block.shortcut_conv is not None:
        shortcut = block.shortcut_conv(x)
        if getattr(block, "shortcut_bn", None) is not None:
            shortcut = block.shortcut_bn(shortcut, training=False)
    return keras.ops.relu(shortcut)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_zero_init_last_makes_every_block_start_as_its_shortcut(name):
    model = _create(name, zero_init_last=True)
    assert model.get_config()["zero_init_last"] is True
    blocks = _blocks(model)
    probe = keras.Model(
        model.inputs,
        [[b.input, b.output] for b in blocks],
    )
    pairs = probe(_images(model, seed=2), training=False)
    for block, (block_input, block_output) in zip(blocks, pairs, strict=True):
        np.testing.assert_allclose(
            block_output,
            _shortcut(block, block_input),
            atol=1e-6,
            err_msg=block.name,
        )
    # The default keeps today's initialization: the branch is not zero.
    plain = _create(name)
    last = _blocks(plain)[-1]
    x = random_inputs((1, *last.input.shape[1:]), seed=4)
    assert not np.array_equal(last(x, training=False), _shortcut(last, x))
    assert plain.get_config()["zero_init_last"] is False


def test_zero_init_without_layer_scale_and_bad_arguments():
    # ConvNeXt without a layer scale zeroes its last pointwise layer.
    block = kb.layers.ConvNeXtBlock(
        4, layer_scale_init_value=None, zero_init_last=True
    )
    x = random_inputs((2, 3, 3, 4), seed=5)
    np.testing.assert_array_equal(block(x), x)
    for call, message in [
        (
            lambda: zoo.create_model("resnet18", drop_path_rate=1.0),
            "drop_path_rate must be in",
        ),
        (
            lambda: zoo.create_model("regnetx_002", zero_init_last=1),
            "zero_init_last must be a bool",
        ),
        (
            lambda: kb.layers.TransformerEncoderBlock(
                8, 2, 16, zero_init_last=True
            ),
            "a post-norm block normalizes after the addition",
        ),
    ]:
        with pytest.raises(ValueError, match=message):
            call()


@pytest.mark.parametrize("name", ["efficientnet_b0", "efficientnetv2_b0"])
def test_efficientnet_zero_init_last_starts_identity_blocks_as_identity(name):
    small = {
        "input_shape": (32, 32, 3),
        "num_classes": 5,
        "width_coefficient": 0.5,
        "depth_coefficient": 0.6,
    }
    model = zoo.create_model(name, zero_init_last=True, **small)
    assert model.get_config()["zero_init_last"] is True
    blocks = [
        layer
        for layer in model.layers
        if isinstance(layer, (kb.layers.MBConv, kb.layers.FusedMBConv))
    ]
    identity = [
        b.strides == 1 and b.input.shape[-1] == b.filters for b in blocks
    ]
    # Both kinds of block, with and without a shortcut, are exercised.
    assert 0 < sum(identity) < len(blocks)
    probe = keras.Model(model.inputs, [[b.input, b.output] for b in blocks])
    pairs = probe(_images(model, seed=6), training=False)
    for block, has_identity, (block_input, block_output) in zip(
        blocks, identity, pairs, strict=True
    ):
        gamma = keras.ops.convert_to_numpy(block.project_bn.gamma)
        if has_identity:
            assert not gamma.any(), block.name
            np.testing.assert_array_equal(block_output, block_input)
        else:
            np.testing.assert_array_equal(gamma, np.ones_like(gamma))
    # The default keeps today's initialization, and the weights and
    # their paths are the same either way.
    plain = zoo.create_model(name, **small)
    assert plain.get_config()["zero_init_last"] is False
    assert [w.path for w in plain.weights] == [w.path for w in model.weights]
    for layer in plain.layers:
        if isinstance(layer, (kb.layers.MBConv, kb.layers.FusedMBConv)):
            gamma = keras.ops.convert_to_numpy(layer.project_bn.gamma)
            np.testing.assert_array_equal(gamma, np.ones_like(gamma))
    rebuilt = type(model).from_config(model.get_config())
    assert rebuilt.get_layer(blocks[-1].name).zero_init_last is True
    with pytest.raises(ValueError, match="zero_init_last must be a bool"):
        zoo.create_model(name, zero_init_last="yes", **small)
