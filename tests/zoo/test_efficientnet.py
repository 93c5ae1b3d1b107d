"""EfficientNet and EfficientNetV2: keras.applications parity through
weight porting (raw 0-255 inputs, preprocessing included), parameter
counts of every variant, the stochastic depth schedules, feature maps,
preprocessing and argument errors."""

import functools
import importlib.util
import os

import keras
import numpy as np
import pytest

import zoo
from kerasblocks.params import count_parameters
from zoo.efficientnetv2 import round_filters

# The shared helpers, loaded by path (see applications_twins.py).
_TWINS = os.path.join(os.path.dirname(__file__), "applications_twins.py")
_SPEC = importlib.util.spec_from_file_location("applications_twins", _TWINS)
twins = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(twins)

V1 = [(f"efficientnet_b{i}", f"EfficientNetB{i}") for i in range(8)]
V2 = [
    (f"efficientnetv2_{v}", f"EfficientNetV2{v.upper()}")
    for v in ("b0", "b1", "b2", "b3", "s", "m", "l")
]


_ported_outputs = functools.partial(
    twins.ported_outputs, batch=2, pixels=(0.0, 255.0)
)


def _assert_close(actual, expected):
    assert actual.shape == expected.shape
    # Deep random networks grow their activations; compare on the
    # outputs' own scale when they are large.
    scale = max(1.0, float(np.max(np.abs(expected))))
    assert np.max(np.abs(actual - expected)) <= 1e-4 * scale


@pytest.mark.parametrize(
    "application, name",
    [
        ("EfficientNetB0", "efficientnet_b0"),
        ("EfficientNetV2B0", "efficientnetv2_b0"),
    ],
)
def test_b0_port_at_224_with_top_gives_equal_logits(application, name):
    keras_model = getattr(keras.applications, application)(
        weights=None, classifier_activation=None
    )
    model, actual, expected = _ported_outputs(keras_model)
    assert model.name == name
    config = model.get_config()
    assert config["input_shape"] == [224, 224, 3]
    assert (config["include_top"], config["classifier_activation"]) == (
        True,
        None,
    )
    assert config["dropout_rate"] == 0.2
    twins.assert_same_outputs(actual, expected, (2, 1000), spread=0.1)


def test_v1_port_at_an_odd_size_without_top():
    # Odd sizes take the other branch of keras.applications' explicit
    # stride-2 padding, which "same" padding must reproduce.
    keras_model = keras.applications.EfficientNetB0(
        weights=None, input_shape=(97, 129, 3), include_top=False, pooling="max"
    )
    model, actual, expected = _ported_outputs(keras_model, seed=1)
    assert (model.get_config()["pooling"], actual.shape) == ("max", (2, 1280))
    assert np.max(np.abs(actual - expected)) <= 1e-4


def test_v2_port_at_an_odd_size_without_preprocessing():
    keras_model = keras.applications.EfficientNetV2B0(
        weights=None,
        input_shape=(97, 129, 3),
        include_top=False,
        pooling="avg",
        include_preprocessing=False,
    )
    model, actual, expected = _ported_outputs(keras_model, seed=1)
    assert model.get_config()["include_preprocessing"] is False
    assert "rescaling" not in [layer.name for layer in model.layers]
    assert actual.shape == (2, 1280)
    _assert_close(actual, expected)


@pytest.mark.parametrize(
    "application, name, blocks",
    [
        ("EfficientNetB3", "efficientnet_b3", 26),
        ("EfficientNetV2S", "efficientnetv2_s", 40),
    ],
)
def test_deeper_port_at_64_gives_equal_features(application, name, blocks):
    keras_model = getattr(keras.applications, application)(
        weights=None, input_shape=(64, 64, 3), include_top=False
    )
    model, actual, expected = _ported_outputs(keras_model, seed=2)
    assert model.name == name
    assert sum(layer.name.startswith("block") for layer in model.layers) == (
        blocks
    )
    assert (
        actual.shape
        == expected.shape
        == (2, 2, 2, 1536 if "b3" in name else 1280)
    )
    _assert_close(actual, expected)


def test_port_of_the_imagenet_layout_keeps_its_extra_rescaling(monkeypatch):
    """With weights="imagenet", keras.applications adds a third
    preprocessing layer; the port must keep it. Built here without a
    download: the weight file is never read."""
    monkeypatch.setattr(
        "keras.src.utils.file_utils.get_file", lambda *a, **k: "unused.h5"
    )
    monkeypatch.setattr(keras.Model, "load_weights", lambda self, path: None)
    keras_model = keras.applications.EfficientNetB0(
        weights="imagenet", input_shape=(64, 64, 3), include_top=False
    )
    rescalings = [
        layer
        for layer in keras_model.layers
        if isinstance(layer, keras.layers.Rescaling)
    ]
    assert len(rescalings) == 2
    model, actual, expected = _ported_outputs(keras_model, seed=3)
    assert model.get_config()["stddev_rescaling"] is True
    np.testing.assert_allclose(
        model.get_layer("stddev_rescaling").scale,
        rescalings[1].scale,
        rtol=1e-7,
    )
    _assert_close(actual, expected)


@pytest.mark.parametrize("name, application", V1 + V2)
def test_parameter_counts_and_sizes_equal_keras_applications(name, application):
    # Counting needs shapes only: a stateless scope leaves the variables
    # uninitialized, which saves drawing ~400M random numbers in all.
    with keras.StatelessScope():
        keras_model = getattr(keras.applications, application)(weights=None)
        model = zoo.create_model(name)
    assert model.input_shape == keras_model.input_shape
    assert count_parameters(model) == keras_model.count_params()
    trainable = sum(
        int(np.prod(v.shape)) for v in keras_model.trainable_weights
    )
    assert count_parameters(model, trainable_only=True) == trainable


def test_v1_stochastic_depth_grows_linearly_over_the_blocks():
    model = zoo.create_model(
        "efficientnet_b0", input_shape=(32, 32, 3), drop_path_rate=0.32
    )
    blocks = [layer for layer in model.layers if layer.name.startswith("block")]
    assert len(blocks) == 16
    np.testing.assert_allclose(
        [block.drop_path_rate for block in blocks],
        0.32 * np.arange(16) / 16,
    )
    # Only identity blocks have a drop layer; block1a never drops.
    assert blocks[0].drop is None and blocks[2].drop is not None
    config = model.get_config()
    assert config["drop_connect_rate"] == config["drop_path_rate"] == 0.32
    clone = type(model).from_config(config)
    assert clone.get_layer("block7a").drop_path_rate == pytest.approx(0.3)


def test_v2_stochastic_depth_divides_by_the_unscaled_block_count():
    model = zoo.create_model("efficientnetv2_b1", input_shape=(32, 32, 3))
    blocks = [layer for layer in model.layers if layer.name.startswith("block")]
    # B1 deepens the 21 blocks of the "b" table to 27; keras.applications
    # still divides by 21, so the rate ends above 0.2.
    assert len(blocks) == 27
    np.testing.assert_allclose(
        [block.drop_path_rate for block in blocks], 0.2 * np.arange(27) / 21
    )
    assert model.get_config()["drop_path_rate"] == 0.2


@pytest.mark.parametrize(
    "overrides",
    [
        {"drop_connect_rate": 0.1},
        {"drop_connect_rate": 0.1, "drop_path_rate": 0.1},
    ],
)
def test_either_rate_name_sets_both(overrides):
    model = zoo.create_model(
        "efficientnet_b0", input_shape=(32, 32, 3), **overrides
    )
    assert model.get_config()["drop_path_rate"] == 0.1
    assert model.get_layer("block7a").drop_path_rate == pytest.approx(0.09375)


@pytest.mark.parametrize("name", ["efficientnet_b0", "efficientnetv2_b0"])
def test_two_different_rates_are_refused(name):
    with pytest.raises(ValueError, match="name the same stochastic depth"):
        zoo.create_model(name, drop_connect_rate=0.1, drop_path_rate=0.3)


@pytest.mark.parametrize(
    "name, expected",
    [
        (
            "efficientnet_b0",
            [
                ("block1a", 2, 16),
                ("block2b", 4, 24),
                ("block3b", 8, 40),
                ("block5c", 16, 112),
                ("top_activation", 32, 1280),
            ],
        ),
        (
            "efficientnetv2_b0",
            [
                ("block1a", 2, 16),
                ("block2b", 4, 32),
                ("block3b", 8, 48),
                ("block5e", 16, 112),
                ("top_activation", 32, 1280),
            ],
        ),
    ],
)
def test_features_only_gives_one_map_per_stride(name, expected):
    model = zoo.create_model(name, input_shape=(64, 64, 3), features_only=True)
    assert [(f.name, f.stride, f.channels) for f in model.feature_info] == (
        expected
    )
    assert [tuple(s) for s in model.output_shape] == [
        (None, 64 // stride, 64 // stride, channels)
        for _, stride, channels in expected
    ]


def test_preprocessing_layers_follow_keras_applications():
    v1 = zoo.create_model("efficientnet_b0", input_shape=(32, 32, 3))
    assert [layer.name for layer in v1.layers[1:4]] == [
        "rescaling",
        "normalization",
        "stem_conv",
    ]
    # Mean, variance and count: ported, never trained.
    normalization = v1.get_layer("normalization")
    assert [v.path for v in normalization.non_trainable_weights] == [
        "normalization/mean",
        "normalization/variance",
        "normalization/count",
    ]
    # V2's S, M and L (and non-RGB B inputs) scale to [-1, 1] instead of
    # normalizing.
    pixels = np.array([[[[0.0, 128.0, 255.0]]]], "float32")
    for name, channels in (("efficientnetv2_s", 3), ("efficientnetv2_b0", 1)):
        model = zoo.create_model(
            name, input_shape=(32, 32, channels), include_top=False
        )
        assert "normalization" not in [layer.name for layer in model.layers]
        rescaling = model.get_layer("rescaling")
        np.testing.assert_allclose(
            rescaling(pixels)[0, 0, 0], [-1.0, 0.0, 127.0 / 128.0]
        )


def test_round_filters_follows_keras_applications():
    # V2 rounds to the nearest multiple of 8 without V1's 10% rule.
    assert [round_filters(f, 1.1) for f in (16, 32, 48, 112, 1280)] == [
        16,
        32,
        56,
        120,
        1408,
    ]
    assert round_filters(1280, 1.2) == 1536


@pytest.mark.parametrize(
    "name, overrides, message",
    [
        ("efficientnet_b0", {"input_shape": (31, 64, 3)}, "too small"),
        ("efficientnet_b0", {"width_coefficient": 0}, "width_coefficient"),
        ("efficientnet_b0", {"depth_coefficient": True}, "depth_coefficient"),
        ("efficientnet_b0", {"dropout_rate": 1.0}, r"dropout_rate must be in"),
        ("efficientnet_b0", {"drop_path_rate": -0.1}, "drop_connect_rate"),
        (
            "efficientnet_b0",
            {"input_shape": (32, 32, 1), "stddev_rescaling": True},
            "needs 3 input channels",
        ),
        ("efficientnet_b0", {"pooling": "sum"}, "pooling must be one of"),
        ("efficientnetv2_b0", {"stages": "xl"}, "stages must be one of"),
        ("efficientnetv2_b0", {"num_classes": 0}, "num_classes must be"),
    ],
)
def test_bad_arguments_raise(name, overrides, message):
    with pytest.raises(ValueError, match=message):
        zoo.create_model(name, **overrides)


def test_port_of_an_unknown_v2_variant_is_refused():
    inputs = keras.Input((32, 32, 3))
    outputs = keras.layers.Conv2D(2, 1)(inputs)
    keras_model = keras.Model(inputs, outputs, name="efficientnetv2-xl")
    with pytest.raises(
        ValueError,
        match=r"^Cannot port 'efficientnetv2-xl': not a keras.applications "
        r"model the zoo knows\. Did you mean: efficientnetv2-l",
    ):
        zoo.from_keras_applications(keras_model)
