"""Xception, Inception-v3 and Inception-ResNet-v2: keras.applications
parity through weight porting (at 299 with the classifier and at a
smaller size without), parameter counts, feature maps and errors."""

import importlib.util
import os

import keras
import numpy as np
import pytest

import zoo
from kerasblocks.params import count_parameters

# The shared helpers, loaded by path (see applications_twins.py).
_TWINS = os.path.join(os.path.dirname(__file__), "applications_twins.py")
_SPEC = importlib.util.spec_from_file_location("applications_twins", _TWINS)
twins = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(twins)

_ported_outputs = twins.ported_outputs


def _trainable_count(model):
    return twins.trainable_and_not(model)[0]


# name -> (keras.applications constructor, (total, non-trainable)
# parameters with the 1000-class classifier, another valid input size,
# pooling at that size).
FAMILIES = {
    "xception": ("Xception", (22_910_480, 54_528), 150, "avg"),
    "inceptionv3": ("InceptionV3", (23_851_784, 34_432), 160, None),
    "inception_resnet_v2": (
        "InceptionResNetV2",
        (55_873_736, 60_544),
        150,
        "max",
    ),
}


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_port_at_299_with_top_gives_equal_logits_and_counts(name):
    application, (total, non_trainable), _, _ = FAMILIES[name]
    keras_model = getattr(keras.applications, application)(
        weights=None, classifier_activation=None
    )
    assert keras_model.count_params() == total
    model, actual, expected = _ported_outputs(keras_model)
    assert type(model).__name__ == application
    config = model.get_config()
    assert config["input_shape"] == [299, 299, 3]
    assert (config["include_top"], config["num_classes"]) == (True, 1000)
    assert config["classifier_activation"] is None
    assert count_parameters(model) == total
    assert count_parameters(model, trainable_only=True) == (
        _trainable_count(keras_model)
    )
    assert total - _trainable_count(keras_model) == non_trainable
    twins.assert_same_outputs(actual, expected, (1, 1000), spread=0.05)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_port_at_another_size_without_top_gives_equal_features(name):
    application, (total, _), size, pooling = FAMILIES[name]
    keras_model = getattr(keras.applications, application)(
        weights=None,
        input_shape=(size, size, 3),
        include_top=False,
        pooling=pooling,
    )
    model, actual, expected = _ported_outputs(keras_model, seed=1)
    config = model.get_config()
    assert config["input_shape"] == [size, size, 3]
    assert (config["include_top"], config["pooling"]) == (False, pooling)
    # The classifier is the only difference: 2048 or 1536 inputs.
    channels = model.output_shape[-1]
    assert count_parameters(model) == total - (channels + 1) * 1000
    assert actual.shape == expected.shape
    assert actual.shape[-1] == channels
    assert np.std(expected) > 0.05
    assert np.max(np.abs(actual - expected)) <= 1e-4


def test_port_of_another_architecture_under_the_name_names_the_weight():
    inputs = keras.Input((75, 75, 3))
    outputs = keras.layers.Conv2D(32, 3, strides=2, use_bias=False)(inputs)
    impostor = keras.Model(inputs, outputs, name="inception_v3")
    with pytest.raises(
        ValueError,
        match=r"^Weight 1 does not match: zoo stem_conv1/bn/beta \(32,\) has "
        r"no source; inception_v3 has no layer 'stem_conv1/bn' with "
        r"weights\.$",
    ):
        zoo.from_keras_applications(impostor)


@pytest.mark.parametrize(
    "name, size, expected",
    [
        (
            "xception",
            71,
            [
                ("block1_conv2_act", 2, 64, 33),
                ("block2", 4, 128, 17),
                ("block3", 8, 256, 9),
                ("block12", 16, 728, 5),
                ("block14_sepconv2_act", 32, 2048, 3),
            ],
        ),
        (
            "inceptionv3",
            75,
            [
                ("stem_conv3", 2, 64, 35),
                ("stem_conv5", 4, 192, 15),
                ("mixed2", 8, 288, 7),
                ("mixed7", 16, 768, 3),
                ("mixed10", 32, 2048, 1),
            ],
        ),
    ],
)
def test_features_only_gives_one_map_per_stride(name, size, expected):
    model = zoo.create_model(
        name, input_shape=(size, size, 3), features_only=True
    )
    assert [(f.name, f.stride, f.channels) for f in model.feature_info] == [
        e[:3] for e in expected
    ]
    assert [tuple(s) for s in model.output_shape] == [
        (None, e[3], e[3], e[2]) for e in expected
    ]


def test_inception_resnet_v2_features_and_residual_scales():
    model = zoo.create_model(
        "inception_resnet_v2", input_shape=(75, 75, 3), features_only=True
    )
    assert [(f.name, f.stride, f.channels) for f in model.feature_info] == [
        ("stem_conv3", 2, 64),
        ("stem_conv5", 4, 192),
        ("block35_10", 8, 320),
        ("block17_20", 16, 1088),
        ("conv_7b", 32, 1536),
    ]
    assert [tuple(s)[1:3] for s in model.output_shape] == [
        (35, 35),
        (15, 15),
        (7, 7),
        (3, 3),
        (1, 1),
    ]
    blocks = {
        layer.name: (layer.block_type, layer.scale, layer.activation)
        for layer in model.layers
        if layer.name.startswith("block")
    }
    assert len(blocks) == 40
    assert blocks["block35_10"] == ("block35", 0.17, "relu")
    assert blocks["block17_1"] == ("block17", 0.1, "relu")
    assert blocks["block8_9"] == ("block8", 0.2, "relu")
    assert blocks["block8_10"] == ("block8", 1.0, None)


@pytest.mark.parametrize(
    "name, overrides, message",
    [
        ("xception", {"input_shape": (70, 99, 3)}, "at least 71"),
        ("inceptionv3", {"input_shape": (99, 74, 3)}, "at least 75"),
        ("inception_resnet_v2", {"input_shape": (74, 74, 3)}, "at least 75"),
        ("xception", {"pooling": "sum"}, "pooling must be one of"),
        ("inceptionv3", {"num_classes": 0}, "num_classes must be a positive"),
        (
            "inception_resnet_v2",
            {"depths": (10, 20, 1)},
            "depths must be 3 positive ints, the last at least 2",
        ),
        (
            "inception_resnet_v2",
            {"classifier_activation": "nope"},
            "unknown classifier_activation",
        ),
    ],
)
def test_bad_arguments_raise(name, overrides, message):
    with pytest.raises(ValueError, match=message):
        zoo.create_model(name, **overrides)
