"""The book's classic CNNs: AlexNet, VGG-11, NiN and GoogLeNet.

Each family is checked against the book (Dive into Deep Learning,
"Modern Convolutional Neural Networks", TensorFlow code): its printed
layer-by-layer output shapes, the parameter count of the book's network,
and equal outputs with the book's own code (rebuilt below with plain
Keras layers) once the weights are copied over.
"""

import keras
import numpy as np
import pytest

import kerasblocks as kb
import zoo
from kerasblocks.testing import random_inputs

L = keras.layers


def _shapes(model, names):
    return [tuple(model.get_layer(n).output.shape[1:]) for n in names]


def _trainable(model):
    return kb.params.count_parameters(model, trainable_only=True)


# ---------------------------------------------------------------- shapes


def test_alexnet_book_shapes_and_parameters():
    model = zoo.create_model("alexnet")
    names = [
        "conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5",
        "pool3", "flatten", "fc1", "fc2", "predictions",
    ]  # fmt: skip
    assert _shapes(model, names) == [
        (54, 54, 96), (26, 26, 96), (26, 26, 256), (12, 12, 256),
        (12, 12, 384), (12, 12, 384), (12, 12, 256), (5, 5, 256),
        (6400,), (4096,), (4096,), (10,),
    ]  # fmt: skip
    assert model.input_shape == (None, 224, 224, 1)
    # The book's network: 11,712 + 614,656 + 885,120 + 1,327,488 +
    # 884,992 (convs) + 26,218,496 + 16,781,312 + 40,970 (dense).
    assert _trainable(model) == model.count_params() == 46_764_746
    assert [i.stride for i in model.feature_info] == [8, 16, 32]


def test_vgg11_book_shapes_and_parameters():
    model = zoo.create_model("vgg11")
    names = [f"block{i}" for i in range(1, 6)]
    assert _shapes(model, names) == [
        (112, 112, 64), (56, 56, 128), (28, 28, 256), (14, 14, 512),
        (7, 7, 512),
    ]  # fmt: skip
    assert _shapes(model, ["flatten", "fc1", "fc2", "predictions"]) == [
        (25088,), (4096,), (4096,), (10,),
    ]  # fmt: skip
    assert [layer.name for layer in model.layers if "drop" in layer.name] == [
        "drop1",
        "drop2",
    ]
    assert model.get_layer("drop1").rate == 0.5
    # 9,219,328 (convs) + 102,764,544 + 16,781,312 + 40,970 (dense).
    assert _trainable(model) == model.count_params() == 128_806_154
    assert model.get_layer("block3").num_convs == 2


def test_nin_book_shapes_and_parameters():
    model = zoo.create_model("nin")
    names = ["nin1", "pool1", "nin2", "pool2", "nin3", "pool3", "nin4"]
    assert _shapes(model, names) == [
        (54, 54, 96), (26, 26, 96), (26, 26, 256), (12, 12, 256),
        (12, 12, 384), (5, 5, 384), (5, 5, 10),
    ]  # fmt: skip
    assert model.output_shape == (None, 10)
    # No Dense layer: the class scores are nin4's averaged channels.
    assert not [x for x in model.layers if isinstance(x, L.Dense)]
    assert isinstance(model.get_layer("predictions"), L.Activation)
    # 30,336 + 746,240 + 1,180,800 + 34,790 (the four NiN blocks).
    assert _trainable(model) == model.count_params() == 1_992_166


def test_googlenet_book_shapes_and_parameters():
    # The book prints each of b1..b5's output for a 96x96x1 input.
    features = zoo.create_model("googlenet", features_only=True)
    assert [tuple(t.shape[1:]) for t in features.outputs] == [
        (24, 24, 64), (12, 12, 192), (6, 6, 480), (3, 3, 832), (3, 3, 1024),
    ]  # fmt: skip
    assert [(i.name, i.stride) for i in features.feature_info] == [
        ("pool1", 4), ("pool2", 8), ("pool3", 16), ("pool4", 32),
        ("inception5b", 32),
    ]  # fmt: skip
    model = zoo.create_model("googlenet")
    assert _shapes(model, ["avg_pool", "predictions"]) == [(1024,), (10,)]
    channels = [
        model.get_layer(f"inception{n}").output.shape[-1]
        for n in ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b")
    ]
    assert channels == [256, 480, 512, 512, 512, 528, 832, 832, 1024]
    assert _trainable(model) == model.count_params() == 5_977_530


def test_smallest_inputs():
    # 67 -> 15 -> 7 -> 3 -> 1 through the 11x11/4 conv and three pools.
    for name in ("alexnet", "nin"):
        model = zoo.create_model(
            name, input_shape=(67, 67, 1), include_top=False
        )
        assert model.output_shape[1:3] == (1, 1)
    vgg = zoo.create_model("vgg11", input_shape=(32, 32, 1), include_top=False)
    assert vgg.output_shape == (None, 1, 1, 512)
    # All "same" padding: any size works, ceil(size / 32) remains.
    googlenet = zoo.create_model(
        "googlenet", input_shape=(1, 1, 1), include_top=False
    )
    assert googlenet.output_shape == (None, 1, 1, 1024)
    assert zoo.create_model(
        "googlenet", input_shape=(33, 40, 1), include_top=False
    ).output_shape == (None, 2, 2, 1024)


# ------------------------------------------------- against the book's code


def _book_alexnet(fc_units):
    return [
        L.Conv2D(96, 11, strides=4, activation="relu"),
        L.MaxPool2D(3, 2),
        L.Conv2D(256, 5, padding="same", activation="relu"),
        L.MaxPool2D(3, 2),
        L.Conv2D(384, 3, padding="same", activation="relu"),
        L.Conv2D(384, 3, padding="same", activation="relu"),
        L.Conv2D(256, 3, padding="same", activation="relu"),
        L.MaxPool2D(3, 2),
        L.Flatten(),
        L.Dense(fc_units, activation="relu"),
        L.Dropout(0.5),
        L.Dense(fc_units, activation="relu"),
        L.Dropout(0.5),
        L.Dense(10),
    ]


def _book_vgg(conv_arch, fc_units):
    layers = []
    for num_convs, filters in conv_arch:
        for _ in range(num_convs):
            layers.append(
                L.Conv2D(filters, 3, padding="same", activation="relu")
            )
        layers.append(L.MaxPool2D(2, 2))
    return layers + [
        L.Flatten(),
        L.Dense(fc_units, activation="relu"),
        L.Dropout(0.5),
        L.Dense(fc_units, activation="relu"),
        L.Dropout(0.5),
        L.Dense(10),
    ]


def _book_nin_block(filters, kernel_size, strides, padding):
    return keras.Sequential(
        [
            L.Conv2D(filters, kernel_size, strides, padding, activation="relu"),
            L.Conv2D(filters, 1, activation="relu"),
            L.Conv2D(filters, 1, activation="relu"),
        ]
    )


def _book_nin():
    return [
        _book_nin_block(96, 11, 4, "valid"),
        L.MaxPool2D(3, 2),
        _book_nin_block(256, 5, 1, "same"),
        L.MaxPool2D(3, 2),
        _book_nin_block(384, 3, 1, "same"),
        L.MaxPool2D(3, 2),
        L.Dropout(0.5),
        _book_nin_block(10, 3, 1, "same"),
        L.GlobalAveragePooling2D(),
        L.Reshape((1, 1, 10)),
        L.Flatten(),
    ]


class _BookInception(keras.Model):
    def __init__(self, c1, c2, c3, c4):
        super().__init__()
        self.p1_1 = L.Conv2D(c1, 1, activation="relu")
        self.p2_1 = L.Conv2D(c2[0], 1, activation="relu")
        self.p2_2 = L.Conv2D(c2[1], 3, padding="same", activation="relu")
        self.p3_1 = L.Conv2D(c3[0], 1, activation="relu")
        self.p3_2 = L.Conv2D(c3[1], 5, padding="same", activation="relu")
        self.p4_1 = L.MaxPool2D(3, 1, padding="same")
        self.p4_2 = L.Conv2D(c4, 1, activation="relu")

    def call(self, x):
        p1 = self.p1_1(x)
        p2 = self.p2_2(self.p2_1(x))
        p3 = self.p3_2(self.p3_1(x))
        p4 = self.p4_2(self.p4_1(x))
        return L.Concatenate()([p1, p2, p3, p4])


def _book_googlenet():
    def pool():
        return L.MaxPool2D(pool_size=3, strides=2, padding="same")

    return [
        L.Conv2D(64, 7, strides=2, padding="same", activation="relu"),
        pool(),
        L.Conv2D(64, 1, activation="relu"),
        L.Conv2D(192, 3, padding="same", activation="relu"),
        pool(),
        _BookInception(64, (96, 128), (16, 32), 32),
        _BookInception(128, (128, 192), (32, 96), 64),
        pool(),
        _BookInception(192, (96, 208), (16, 48), 64),
        _BookInception(160, (112, 224), (24, 64), 64),
        _BookInception(128, (128, 256), (24, 64), 64),
        _BookInception(112, (144, 288), (32, 64), 64),
        _BookInception(256, (160, 320), (32, 128), 128),
        pool(),
        _BookInception(256, (160, 320), (32, 128), 128),
        _BookInception(384, (192, 384), (48, 128), 128),
        L.GlobalAvgPool2D(),
        L.Flatten(),
        L.Dense(10),
    ]


SMALL_VGG11 = ((1, 8), (1, 16), (2, 32), (2, 64), (2, 64))
BOOK_CASES = {
    # name: (zoo overrides, the book's layers), at small inputs.
    "alexnet": (
        {"input_shape": (75, 75, 1), "fc_units": 32},
        lambda: _book_alexnet(32),
    ),
    "vgg11": (
        {"input_shape": (64, 64, 1), "fc_units": 32, "conv_arch": SMALL_VGG11},
        lambda: _book_vgg(SMALL_VGG11, 32),
    ),
    "nin": ({"input_shape": (75, 75, 1)}, _book_nin),
    "googlenet": ({"input_shape": (40, 40, 1)}, _book_googlenet),
}


@pytest.mark.parametrize("name", sorted(BOOK_CASES))
def test_same_outputs_as_the_books_code(name):
    overrides, book_layers = BOOK_CASES[name]
    keras.utils.set_random_seed(0)
    model = zoo.create_model(name, classifier_activation=None, **overrides)
    book = keras.Sequential(
        [keras.Input(overrides["input_shape"]), *book_layers()]
    )
    book_weights = book.weights
    assert [tuple(w.shape) for w in model.weights] == [
        tuple(w.shape) for w in book_weights
    ]
    rng = np.random.default_rng(1)
    for target, source in zip(model.weights, book_weights, strict=True):
        # Small random biases too, so that a misplaced ReLU shows.
        value = rng.normal(0.0, 0.05, source.shape).astype("float32")
        source.assign(value)
        target.assign(value)
    x = random_inputs((2, *overrides["input_shape"]), seed=2)
    expected = np.asarray(book(x, training=False))
    actual = np.asarray(model(x, training=False))
    assert actual.shape == expected.shape == (2, 10)
    assert np.abs(expected).max() > 1e-3  # not a dead network
    np.testing.assert_allclose(actual, expected, atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------- bad input

SMALL = {
    "alexnet": {"input_shape": (67, 67, 1), "fc_units": 8},
    "vgg11": {"input_shape": (32, 32, 1), "fc_units": 8},
    "vgg16": {"input_shape": (32, 32, 3), "fc_units": 8},
    "nin": {"input_shape": (67, 67, 1)},
    "googlenet": {"input_shape": (32, 32, 1)},
}
TOO_SMALL = {
    "alexnet": ((66, 224, 1), 67),
    "nin": ((224, 66, 1), 67),
    "vgg11": ((31, 31, 1), 32),
    "vgg16": ((224, 31, 3), 32),
}


@pytest.mark.parametrize("name", sorted(TOO_SMALL))
def test_too_small_input_shape(name):
    shape, minimum = TOO_SMALL[name]
    with pytest.raises(ValueError, match=r"input_shape=\(") as info:
        zoo.create_model(name, input_shape=shape)
    assert f"input_shape={shape}" in str(info.value)
    assert f"at least {minimum}" in str(info.value)


def test_googlenet_empty_input_shape():
    with pytest.raises(ValueError, match="input_shape entries must be"):
        zoo.create_model("googlenet", input_shape=(0, 96, 1))


@pytest.mark.parametrize("name", sorted(SMALL))
def test_wrong_channels_at_call(name):
    model = zoo.create_model(name, **SMALL[name])
    height, width, channels = SMALL[name]["input_shape"]
    x = np.zeros((1, height, width, channels + 1), "float32")
    with pytest.raises(ValueError, match="incompatible with the layer") as info:
        model(x)
    assert f"(1, {height}, {width}, {channels + 1})" in str(info.value)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_bad_arguments(name):
    args = SMALL[name]
    with pytest.raises(ValueError, match="num_classes=0"):
        zoo.create_model(name, num_classes=0, **args)
    with pytest.raises(ValueError, match="pooling='sum'"):
        zoo.create_model(name, include_top=False, pooling="sum", **args)


def test_bad_family_arguments():
    for name in ("alexnet", "vgg11", "nin"):
        with pytest.raises(ValueError, match="dropout_rate=1.0"):
            zoo.create_model(name, dropout_rate=1.0, **SMALL[name])
    with pytest.raises(ValueError, match="fc_units=0"):
        zoo.create_model("alexnet", fc_units=0)
    with pytest.raises(ValueError, match="conv_arch"):
        zoo.create_model("vgg11", conv_arch=((1, 64), (64,)))
    with pytest.raises(ValueError, match="conv_arch"):
        zoo.create_model("vgg11", conv_arch=())
    with pytest.raises(ValueError, match="conv_arch filters"):
        zoo.create_model("vgg11", conv_arch=((1, 0),))
