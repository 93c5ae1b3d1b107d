"""ResNet family: the book's shapes, keras.applications parity and
weight porting, parameter counts, argument errors.

The registry-wide checks (harness, goldens, include_top/pooling/
features_only) are in test_conformance.py.
"""

import keras
import numpy as np
import pytest

import kerasblocks as kb
import zoo

# keras.applications' parameter counts (include_top=True, 1000 classes),
# checked against models built with weights=None; the port tests below
# compare the zoo's counts with them.
APPLICATIONS_COUNTS = {
    "resnet50": 25_636_712,
    "resnet101": 44_707_176,
    "resnet152": 60_419_944,
    "resnet50v2": 25_613_800,
    "resnet101v2": 44_675_560,
    "resnet152v2": 60_380_648,
}
APPLICATIONS = {
    "resnet50": keras.applications.ResNet50,
    "resnet101": keras.applications.ResNet101,
    "resnet152": keras.applications.ResNet152,
    "resnet50v2": keras.applications.ResNet50V2,
    "resnet101v2": keras.applications.ResNet101V2,
    "resnet152v2": keras.applications.ResNet152V2,
}


def _randomize(model, seed=0):
    """Seeded non-trivial batch-norm statistics and biases, so that a
    wrongly wired norm or bias changes the output."""
    rng = np.random.default_rng(seed)
    ranges = {
        "gamma": (0.5, 1.5),
        "beta": (-0.2, 0.2),
        "bias": (-0.2, 0.2),
        "moving_mean": (-0.2, 0.2),
        "moving_variance": (0.5, 1.5),
    }
    for layer in model.layers:
        for variable in layer.weights:
            if variable.name in ranges:
                low, high = ranges[variable.name]
                value = rng.uniform(low, high, tuple(variable.shape))
                variable.assign(value.astype("float32"))


def _assert_port_parity(keras_model, name):
    _randomize(keras_model)
    model = zoo.from_keras_applications(keras_model)
    assert model.name == keras_model.name == name
    count = kb.params.count_parameters(model)
    assert count == keras_model.count_params()
    top = 2048 * 1000 + 1000  # the predictions layer
    config = model.get_config()
    assert count == APPLICATIONS_COUNTS[name] - (
        0 if config["include_top"] else top
    )
    assert model.output_shape == keras_model.output_shape
    x = np.random.default_rng(1).uniform(
        -1.0, 1.0, (1, *keras_model.input_shape[1:])
    )
    expected = np.asarray(keras_model(x.astype("float32"), training=False))
    actual = np.asarray(model(x.astype("float32"), training=False))
    assert np.abs(expected).max() > 1e-2  # not a trivially small output
    assert np.abs(actual - expected).max() <= 1e-4
    return model


@pytest.mark.parametrize("name", ["resnet50", "resnet50v2"])
def test_port_parity_224_with_top(name):
    keras_model = APPLICATIONS[name](weights=None, classifier_activation=None)
    model = _assert_port_parity(keras_model, name)
    assert model.output_shape == (None, 1000)
    assert model.get_config()["classifier_activation"] is None


@pytest.mark.parametrize(
    "name", ["resnet101", "resnet152", "resnet101v2", "resnet152v2"]
)
def test_port_parity_small_pooled(name):
    keras_model = APPLICATIONS[name](
        weights=None, input_shape=(64, 64, 3), include_top=False, pooling="avg"
    )
    model = _assert_port_parity(keras_model, name)
    assert model.output_shape == (None, 2048)
    config = model.get_config()
    assert (config["include_top"], config["pooling"]) == (False, "avg")


def test_port_copies_softmax_head_config():
    keras_model = keras.applications.ResNet50V2(
        weights=None, input_shape=(32, 32, 3), classes=7
    )
    model = zoo.from_keras_applications(keras_model)
    config = model.get_config()
    assert config["num_classes"] == 7
    assert config["classifier_activation"] == "softmax"
    assert config["input_shape"] == [32, 32, 3]


def _port_error(application, name):
    """The ValueError of porting keras.applications' `application` (no
    top, 32x32) built under the name of another variant."""
    keras_model = APPLICATIONS[application](
        weights=None,
        input_shape=(32, 32, 3),
        include_top=False,
        name=name,
    )
    with pytest.raises(ValueError) as error:
        zoo.from_keras_applications(keras_model)
    return str(error.value)


def test_port_of_wrong_architecture_names_first_missing_weight():
    # A v2 model under the v1 name: v1's conv1_bn has no source.
    assert _port_error("resnet50v2", "resnet50") == (
        "Weight 2 does not match: zoo conv1_bn/gamma (64,) has no source; "
        "resnet50 has no layer 'conv1_bn' with weights."
    )


def test_port_of_shallower_model_names_missing_block():
    # ResNet-50 claiming to be ResNet-101 lacks conv4_block7 onwards.
    message = _port_error("resnet50", "resnet101")
    assert "Weight " in message
    assert "zoo conv4_block7/conv1/kernel (1, 1, 1024, 256)" in message
    assert (
        "has no source; resnet101 has no layer 'conv4_block7_1_conv'" in message
    )


def test_port_of_deeper_model_names_first_extra_weight():
    assert _port_error("resnet101", "resnet50").startswith(
        "Weight conv4_block7_1_conv/kernel (1, 1, 1024, 256) of resnet50 "
        "has no place in the zoo model"
    )


def test_resnet18_book_shapes():
    model = zoo.create_model("resnet18")
    shapes = {layer.name: layer.output.shape for layer in model.layers}
    assert model.input_shape == (None, 96, 96, 1)
    assert shapes["pool1_pool"] == (None, 24, 24, 64)
    assert shapes["conv2_block2"] == (None, 24, 24, 64)
    assert shapes["conv3_block2"] == (None, 12, 12, 128)
    assert shapes["conv4_block2"] == (None, 6, 6, 256)
    assert shapes["conv5_block2"] == (None, 3, 3, 512)
    assert shapes["avg_pool"] == (None, 512)
    assert model.output_shape == (None, 10)
    blocks = [layer for layer in model.layers if "_block" in layer.name]
    assert [b.use_projection for b in blocks] == [False, False] + [
        True,
        False,
    ] * 3
    features = zoo.create_model("resnet18", features_only=True)
    assert [(f.name, f.stride, f.channels) for f in features.feature_info] == [
        ("conv2", 4, 64),
        ("conv3", 8, 128),
        ("conv4", 16, 256),
        ("conv5", 32, 512),
    ]


def _book_resnet18_count():
    def conv(k, cin, cout):
        return k * k * cin * cout + cout

    def basic(cin, cout):
        count = conv(3, cin, cout) + conv(3, cout, cout) + 2 * 4 * cout
        return count + (conv(1, cin, cout) if cin != cout else 0)

    count = conv(7, 1, 64) + 4 * 64
    cin = 64
    for width in (64, 128, 256, 512):
        count += basic(cin, width) + basic(width, width)
        cin = width
    return count + 512 * 10 + 10


def test_parameter_counts_book_models():
    assert _book_resnet18_count() == 11_186_186
    counts = {
        n: kb.params.count_parameters(zoo.create_model(n))
        for n in ("resnet18", "resnet34", "resnext")
    }
    assert counts == {
        "resnet18": 11_186_186,
        "resnet34": 21_305_482,
        "resnext": 1_710_986,
    }


def test_resnext_uses_book_block_settings():
    model = zoo.create_model("resnext")
    block = model.get_layer("conv3_block1")
    assert isinstance(block, kb.layers.ResNeXtBlock)
    assert (block.group_width, block.bottleneck_ratio) == (16, 1.0)
    assert block.conv2.groups == 128 // 16
    assert model.get_layer("conv5_block2").conv2.groups == 512 // 16


def test_v2_stride_placement_follows_keras():
    model = zoo.create_model("resnet50v2", input_shape=(64, 64, 3))
    strides = {
        layer.name: layer.strides
        for layer in model.layers
        if isinstance(layer, kb.layers.BottleneckBlock)
    }
    assert [n for n, s in strides.items() if s == 2] == [
        "conv2_block3",
        "conv3_block4",
        "conv4_block6",
    ]
    assert model.get_layer("conv2_block3").shortcut_pool is not None
    assert [f.stride for f in model.feature_info] == [8, 16, 32, 32]


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"input_shape": (31, 64, 3)}, "too small"),
        ({"input_shape": (64, 64)}, "must be \\(height, width, channels\\)"),
        ({"input_shape": (64, 64, 0)}, "positive int"),
        ({"num_classes": 0}, "num_classes must be a positive int"),
        ({"num_classes": -3}, "num_classes must be a positive int"),
        ({"include_top": False, "pooling": "mean"}, "pooling must be one"),
        ({"depth": 42}, "depth must be one of"),
        ({"block_type": "dense"}, "block_type must be one of"),
        ({"stem": "cifar"}, "stem must be one of"),
        ({"depths": (2, 2)}, "one entry per stage"),
        ({"depths": (2, 0, 2, 2)}, "depths must hold positive ints"),
        ({"block_type": "basic", "preact": True}, "needs bottleneck blocks"),
    ],
)
def test_bad_arguments(overrides, message):
    with pytest.raises(ValueError, match=message):
        zoo.create_model("resnet50", **overrides)


def test_wrong_input_channels_are_refused():
    model = zoo.create_model("resnet18", input_shape=(32, 32, 1))
    with pytest.raises(ValueError, match="expected axis -1"):
        model(np.zeros((1, 32, 32, 3), "float32"))
