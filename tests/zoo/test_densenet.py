"""DenseNet: the book's shapes and keras.applications' parity.

The conformance suite (test_conformance.py) covers saving, XLA and
training; here: the book's shapes at 96x96x1, exact parameter counts
against keras.applications and against the book's own layer list, and
weight porting with equal outputs.
"""

import keras
import numpy as np
import pytest

import kerasblocks as kb
import zoo
from kerasblocks.testing import random_inputs

APPLICATIONS = {
    121: keras.applications.DenseNet121,
    169: keras.applications.DenseNet169,
    201: keras.applications.DenseNet201,
}
PUBLISHED = {121: 8_062_504, 169: 14_307_880, 201: 20_242_984}


def _randomize_batch_norm(model, seed=0):
    """Non-trivial batch-norm statistics and biases, so that a wrong
    epsilon, order or mapping shows in the outputs."""
    rng = np.random.default_rng(seed)
    for v in model.variables:
        name = v.path.rsplit("/", 1)[-1]
        low, high = {
            "gamma": (0.5, 1.5),
            "moving_variance": (0.5, 1.5),
            "beta": (-0.5, 0.5),
            "moving_mean": (-0.5, 0.5),
            "bias": (-0.1, 0.1),
        }.get(name, (None, None))
        if low is not None:
            v.assign(rng.uniform(low, high, v.shape).astype("float32"))


def _max_diff(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


def test_book_densenet_shapes():
    model = zoo.create_model("densenet")
    assert model.input_shape == (None, 96, 96, 1)
    shapes = {layer.name: layer.output.shape[1:] for layer in model.layers[1:]}
    # 64 + 4 * 32 channels after each dense block, halved by each
    # transition; the resolution halves in each transition.
    assert shapes["pool1"] == (24, 24, 64)
    assert shapes["conv2"] == (24, 24, 192)
    assert shapes["pool2"] == (12, 12, 96)
    assert shapes["conv3"] == (12, 12, 224)
    assert shapes["pool3"] == (6, 6, 112)
    assert shapes["conv4"] == (6, 6, 240)
    assert shapes["pool4"] == (3, 3, 120)
    assert shapes["conv5"] == (3, 3, 248)
    assert shapes["avg_pool"] == (248,)
    assert model.output_shape == (None, 10)
    features = zoo.create_model("densenet", features_only=True)
    assert [(f.name, f.stride, f.channels) for f in features.feature_info] == [
        ("conv1", 2, 64),
        ("conv2", 4, 192),
        ("conv3", 8, 224),
        ("conv4", 16, 240),
        ("conv5", 32, 248),
    ]


def _book_densenet_reference():
    """The book's DenseNet written out with plain Keras layers."""

    def conv_block(x, growth_rate):
        y = keras.layers.BatchNormalization()(x)
        y = keras.layers.ReLU()(y)
        y = keras.layers.Conv2D(growth_rate, 3, padding="same")(y)
        return keras.layers.Concatenate()([x, y])

    inputs = keras.Input((96, 96, 1))
    x = keras.layers.Conv2D(64, 7, strides=2, padding="same")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.MaxPool2D(3, strides=2, padding="same")(x)
    channels = 64
    for index in range(4):
        for _ in range(4):
            x = conv_block(x, 32)
        channels += 4 * 32
        if index != 3:
            channels //= 2
            x = keras.layers.BatchNormalization()(x)
            x = keras.layers.ReLU()(x)
            x = keras.layers.Conv2D(channels, 1)(x)
            x = keras.layers.AvgPool2D(2, strides=2)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAvgPool2D()(x)
    return keras.Model(inputs, keras.layers.Dense(10)(x))


def test_book_densenet_parameter_count():
    model = zoo.create_model("densenet")
    reference = _book_densenet_reference()
    assert kb.params.count_parameters(model) == reference.count_params()
    assert reference.count_params() == 764_834


@pytest.mark.parametrize("depth", sorted(PUBLISHED))
def test_parameter_counts_equal_keras_applications(depth):
    model = zoo.create_model(f"densenet{depth}")
    reference = APPLICATIONS[depth](weights=None)
    assert reference.count_params() == PUBLISHED[depth]
    assert kb.params.count_parameters(model) == PUBLISHED[depth]
    assert [v.path for v in model.variables][:5] == [
        v.path for v in reference.variables
    ][:5]


def test_densenet121_port_224_equal_outputs():
    keras.utils.set_random_seed(0)
    source = keras.applications.DenseNet121(
        weights=None, classifier_activation=None
    )
    _randomize_batch_norm(source)
    model = zoo.from_keras_applications(source)
    assert model.name == "densenet121"
    assert model.get_config()["classifier_activation"] is None
    x = random_inputs((1, 224, 224, 3), seed=3)
    expected = source(x, training=False)
    actual = model(x, training=False)
    assert actual.shape == (1, 1000)
    assert float(np.std(np.asarray(expected))) > 1e-2
    assert _max_diff(actual, expected) <= 1e-4


@pytest.mark.parametrize("depth", [169, 201])
def test_port_small_input_without_top(depth):
    keras.utils.set_random_seed(0)
    source = APPLICATIONS[depth](
        weights=None,
        include_top=False,
        pooling="avg",
        input_shape=(64, 64, 3),
    )
    _randomize_batch_norm(source, seed=depth)
    model = zoo.from_keras_applications(source)
    config = model.get_config()
    assert config["include_top"] is False
    assert config["pooling"] == "avg"
    x = random_inputs((2, 64, 64, 3), seed=4)
    expected = source(x, training=False)
    actual = model(x, training=False)
    assert actual.shape == (2, {169: 1664, 201: 1920}[depth])
    assert _max_diff(actual, expected) <= 1e-4


@pytest.mark.parametrize(
    "application, name, message",
    [
        # A DenseNet-169 claiming to be a DenseNet-121: the first three
        # dense blocks agree up to conv4's 24th conv block, then pool4's
        # batch norm sees 1280 channels instead of 1024.
        (
            "DenseNet169",
            "densenet121",
            r"densenet121 pool4_bn/gamma has shape \(1280,\), zoo "
            r"pool4/bn/gamma has shape \(1024,\)",
        ),
        (
            "DenseNet121",
            "densenet169",
            r"zoo conv4/block25_0_bn/gamma \(1024,\) has no source; "
            "densenet169 has no .*conv4_block25_0_bn",
        ),
    ],
)
def test_port_of_mismatching_architecture_names_first_weight(
    application, name, message
):
    source = getattr(keras.applications, application)(
        weights=None,
        include_top=False,
        input_shape=(32, 32, 3),
        name=name,
    )
    with pytest.raises(ValueError, match=message):
        zoo.from_keras_applications(source)


def test_bad_arguments():
    with pytest.raises(ValueError, match="too small"):
        zoo.create_model("densenet121", input_shape=(31, 31, 3))
    with pytest.raises(ValueError, match="input_shape"):
        zoo.create_model("densenet", input_shape=(96, 96))
    with pytest.raises(ValueError, match="layout must be one of"):
        zoo.create_model("densenet", layout="torch")
    with pytest.raises(ValueError, match=r"blocks must be .* Received"):
        zoo.create_model("densenet", blocks=())
    with pytest.raises(ValueError, match="growth_rate=0"):
        zoo.create_model("densenet", growth_rate=0)
    with pytest.raises(ValueError, match="reduction"):
        zoo.create_model("densenet", reduction=1.5)
    with pytest.raises(ValueError, match="num_convs=0"):
        kb.layers.DenseBlock(0, 32)
    with pytest.raises(ValueError, match="filters=-1"):
        kb.layers.TransitionBlock(-1)
    with pytest.raises(ValueError, match="known channels"):
        kb.layers.DenseBlock(2, 4)(keras.KerasTensor((2, 8, 8)))


def test_blocks_match_keras_applications_layers():
    """keras.applications' conv block and transition, layer by layer."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 6, 8))
    x = keras.layers.BatchNormalization(epsilon=1.001e-5, name="b_0_bn")(inputs)
    x = keras.layers.Activation("relu")(x)
    x = keras.layers.Conv2D(16, 1, use_bias=False, name="b_1_conv")(x)
    x = keras.layers.BatchNormalization(epsilon=1.001e-5, name="b_1_bn")(x)
    x = keras.layers.Activation("relu")(x)
    x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)(x)
    x = keras.layers.Concatenate()([inputs, x])
    reference = keras.Model(inputs, x)
    _randomize_batch_norm(reference)
    block = kb.layers.DenseBlock(
        1, 4, bottleneck=True, use_bias=False, epsilon=1.001e-5
    )
    y = random_inputs((2, 6, 6, 8), seed=5)
    block(y)
    for target, source in zip(
        block.variables, reference.variables, strict=True
    ):
        target.assign(source)
    assert _max_diff(block(y), reference(y)) <= 1e-5
