"""`reset_classifier` and `forward_features` on image models: a new head
keeps the backbone; the feature map is what the head reads."""

import keras
import numpy as np
import pytest

import zoo
from kerasblocks.testing import random_inputs

CASES = {
    "resnet18": ({"input_shape": (32, 32, 1)}, "avg_pool", 512),
    "convnext_tiny": (
        {"input_shape": (32, 32, 3), "filters": (8, 16, 24, 32)},
        "head_layernorm",
        32,
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_reset_classifier_keeps_the_backbone_and_makes_a_new_head(name):
    overrides, pooled_layer, channels = CASES[name]
    model = zoo.create_model(name, **overrides)
    x = random_inputs((2, *overrides["input_shape"]), seed=0)
    before = [w.numpy().copy() for w in model.weights]
    pooled = keras.Model(model.inputs, model.get_layer(pooled_layer).output)
    features = pooled(x, training=False)

    new = model.reset_classifier(3)
    assert new is not model and type(new) is type(model)
    assert new.output_shape == (None, 3)
    config = new.get_config()
    assert (config["num_classes"], config["include_top"]) == (3, True)
    kernel = new.get_layer("predictions").kernel
    assert tuple(kernel.shape) == (channels, 3)
    np.testing.assert_array_equal(new.get_layer("predictions").bias, 0.0)
    # The head reads the same features, through a fresh classifier.
    dense = new.get_layer("predictions")
    expected = keras.ops.softmax(features @ dense.kernel + dense.bias)
    np.testing.assert_allclose(new(x, training=False), expected, atol=1e-5)
    # Weights are copied, not shared: the original is unchanged.
    for weight, value in zip(model.weights, before, strict=True):
        np.testing.assert_array_equal(weight, value)
    for layer in model.layers:
        if layer.name == "predictions":
            continue
        copies = new.get_layer(layer.name).weights
        for weight, copy in zip(layer.weights, copies, strict=True):
            assert copy is not weight
            np.testing.assert_array_equal(copy, weight)

    # num_classes=0: the pooled features themselves.
    bare = model.reset_classifier(0)
    assert bare.output_shape == (None, channels)
    np.testing.assert_allclose(bare(x, training=False), features, atol=1e-6)
    assert bare.get_config()["pooling"] == "avg"
    maxed = model.reset_classifier(0, pooling="max")
    maps = model.forward_features(x, training=False)
    if name == "resnet18":
        np.testing.assert_allclose(
            maxed(x, training=False), np.max(maps, axis=(1, 2)), atol=1e-6
        )


def test_forward_features_is_the_map_the_head_pools():
    model = zoo.create_model("resnet18", input_shape=(64, 64, 1))
    x = random_inputs((2, 64, 64, 1), seed=1)
    maps = model.forward_features(x, training=False)
    assert tuple(maps.shape) == (2, 2, 2, 512)
    assert model.feature_info[-1].channels == 512
    dense = model.get_layer("predictions")
    logits = np.mean(maps, axis=(1, 2)) @ dense.kernel + dense.bias
    np.testing.assert_allclose(
        model(x, training=False), keras.ops.softmax(logits), atol=1e-5
    )
    # The same as the include_top=False model with the same weights.
    bare = zoo.create_model(
        "resnet18", input_shape=(64, 64, 1), include_top=False
    )
    bare.set_weights(model.get_weights()[:-2])
    np.testing.assert_allclose(bare(x, training=False), maps, atol=1e-6)
    # Nothing new is tracked by the model.
    assert len(model.weights) == len(bare.weights) + 2


def test_vit_resets_to_its_class_token_and_rejects_bad_arguments():
    model = zoo.create_model(
        "vit_tiny16",
        input_shape=(32, 32, 3),
        hidden_dim=24,
        num_heads=2,
        mlp_dim=48,
        num_layers=2,
    )
    x = random_inputs((2, 32, 32, 3), seed=2)
    bare = model.reset_classifier(0)
    assert bare.get_config()["pooling"] == "token"
    token = keras.Model(
        model.inputs, model.get_layer("class_token_output").output
    )
    np.testing.assert_allclose(bare(x), token(x), atol=1e-6)
    with pytest.raises(ValueError, match="non-negative int"):
        model.reset_classifier(-1)
    with pytest.raises(ValueError, match="pooling applies to num_classes=0"):
        model.reset_classifier(4, pooling="max")
    features = zoo.create_model(
        "resnet18", input_shape=(32, 32, 1), features_only=True
    )
    with pytest.raises(ValueError, match="features_only model"):
        features.reset_classifier(3)
