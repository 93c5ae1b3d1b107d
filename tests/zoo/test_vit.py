"""Vision Transformers: published sizes, heads, features and position
embeddings moved between input sizes."""

import keras
import numpy as np
import pytest

import kerasblocks as kb
import zoo
from zoo.vit import load_weights_resized, resize_position_embedding

# The ViT/DeiT papers' (and timm's) counts at 224x224x3, 1000 classes.
PUBLISHED = {
    "vit_tiny16": 5_717_416,
    "vit_small16": 22_050_664,
    "vit_base16": 86_567_656,
}
SMALL = {"num_layers": 2, "num_classes": 5}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_counts_equal_the_published_ones(name):
    model = zoo.create_model(name)
    assert kb.params.count_parameters(model) == PUBLISHED[name]
    table = model.get_layer("position_embedding").embeddings
    assert tuple(table.shape) == (197, model.get_config()["hidden_dim"])


def _vit(input_shape, **extra):
    keras.utils.set_random_seed(0)
    return zoo.create_model(
        "vit_tiny16", input_shape=input_shape, **{**SMALL, **extra}
    )


def test_heads_pooling_and_features():
    x = np.random.default_rng(0).uniform(size=(2, 48, 32, 3)).astype("float32")
    tokens = _vit((48, 32, 3), include_top=False)
    assert tokens.output_shape == (None, 3, 2, 192)
    for pooling, shape in (("avg", (None, 192)), ("token", (None, 192))):
        assert (
            _vit((48, 32, 3), include_top=False, pooling=pooling).output_shape
            == shape
        )
    # pooling="token" is the classifier's input: the class token's output.
    top = _vit((48, 32, 3), classifier_activation=None)
    pooled = _vit((48, 32, 3), include_top=False, pooling="token")
    pooled.set_weights(top.get_weights()[:-2])
    dense = top.get_layer("predictions")
    np.testing.assert_allclose(top(x), dense(pooled(x)), atol=1e-5)
    features = _vit((48, 32, 3), features_only=True, num_layers=8)
    assert [f.name for f in features.feature_info] == [
        "block_1",
        "block_3",
        "block_5",
        "block_7",
    ]
    assert {f.stride for f in features.feature_info} == {16}
    assert [tuple(o.shape) for o in features(x)] == [(2, 3, 2, 192)] * 4
    with pytest.raises(ValueError, match="too small"):
        _vit((8, 8, 3))
    with pytest.raises(ValueError, match="pooling must be one of"):
        _vit((32, 32, 3), include_top=False, pooling="cls")


def test_position_embeddings_move_to_another_input_size():
    big, small = _vit((48, 48, 3)), _vit((32, 32, 3))
    load_weights_resized(small, big)
    source = big.get_layer("position_embedding").embeddings.numpy()
    target = small.get_layer("position_embedding").embeddings.numpy()
    assert source.shape == (10, 192) and target.shape == (5, 192)
    np.testing.assert_array_equal(target[0], source[0])  # the class token
    np.testing.assert_allclose(
        target[1:],
        resize_position_embedding(source, (3, 3), (2, 2))[1:],
    )
    for a, b in zip(small.weights, big.weights, strict=True):
        if "position_embedding" not in a.path:
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    x = np.random.default_rng(1).uniform(size=(1, 32, 32, 3)).astype("float32")
    assert np.all(np.isfinite(small(x)))
    # Back to the original size from the resized copy: same grid, so the
    # weights pass unchanged.
    again = _vit((32, 32, 3))
    load_weights_resized(again, small)
    np.testing.assert_allclose(again(x), small(x), atol=1e-6)


def test_resize_position_embedding_values():
    table = np.concatenate([np.full((1, 2), 7.0), np.full((4, 2), 3.0)]).astype(
        "float32"
    )
    resized = resize_position_embedding(table, (2, 2), (3, 5))
    assert resized.shape == (16, 2)
    np.testing.assert_allclose(resized[0], [7.0, 7.0])
    np.testing.assert_allclose(resized[1:], 3.0, atol=1e-5)
    ramp = np.arange(4.0)[:, None].repeat(3, axis=1)  # a 2x2 grid, no prefix
    resized = resize_position_embedding(
        ramp, (2, 2), (2, 2), num_prefix_tokens=0
    )
    np.testing.assert_array_equal(resized, ramp)
    with pytest.raises(ValueError, match="must have 5 rows"):
        resize_position_embedding(table[:4], (2, 2), (3, 3))


def test_load_weights_resized_refuses_other_models():
    small = _vit((32, 32, 3))
    wider = _vit((32, 32, 3), hidden_dim=96, num_heads=3, mlp_dim=192)
    with pytest.raises(ValueError, match="patch_embedding/conv/kernel"):
        load_weights_resized(small, wider)
    with pytest.raises(ValueError, match="must be a zoo VisionTransformer"):
        load_weights_resized(small, zoo.create_model("lenet"))
