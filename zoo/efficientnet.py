"""EfficientNet (Tan & Le, 2019, "EfficientNet: Rethinking Model Scaling
for Convolutional Neural Networks"), laid out exactly as
keras.applications.EfficientNetB0 ... B7 build it, so that their weights
port one to one.

The model takes raw 0-255 images and rescales and normalizes them itself
(the `rescaling` and `normalization` layers). Then a stride-2 3x3 stem
convolution, seven stages of `MBConv` blocks (the baseline of the
paper's Table 1), a 1x1 convolution to 1280 channels and the head.
Compound scaling: B1 ... B7 multiply every width by a width coefficient
(rounded to multiples of 8) and every stage's depth by a depth
coefficient (rounded up), and take larger images.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import keras

import kerasblocks as kb
from kerasblocks.layers.efficientnet import conv_initializer
from zoo._image import ImageHead, ImageModel, Stage
from zoo._porting import register_porter
from zoo._porting_names import gather_sources
from zoo._registry import register_model
from zoo.mobilenet import round_channels

# (kernel size, repeats, filters, expansion, strides of the first block)
# per stage of the B0 baseline (the paper's Table 1). Every block has
# squeeze-and-excitation with ratio 0.25.
STAGES = (
    (3, 1, 16, 1, 1),
    (3, 2, 24, 6, 2),
    (5, 2, 40, 6, 2),
    (3, 3, 80, 6, 2),
    (5, 3, 112, 6, 1),
    (5, 4, 192, 6, 2),
    (3, 1, 320, 6, 1),
)
# Variant -> (width coefficient, depth coefficient, image size, dropout
# rate before the classifier), keras.applications' values.
VARIANTS = {
    "b0": (1.0, 1.0, 224, 0.2),
    "b1": (1.0, 1.1, 240, 0.2),
    "b2": (1.1, 1.2, 260, 0.3),
    "b3": (1.2, 1.4, 300, 0.3),
    "b4": (1.4, 1.8, 380, 0.4),
    "b5": (1.6, 2.2, 456, 0.4),
    "b6": (1.8, 2.6, 528, 0.5),
    "b7": (2.0, 3.1, 600, 0.5),
}
# The ImageNet standard deviations behind keras.applications' extra
# rescaling for its ImageNet weights (see `stddev_rescaling`).
_IMAGENET_STDDEV = (0.229, 0.224, 0.225)
_DEFAULT_DROP_CONNECT_RATE = 0.2


def check_rate(name: str, value: float) -> float:
    """`value` as a float if it is in [0, 1); else a ValueError."""
    if isinstance(value, bool) or not (
        isinstance(value, (int, float)) and 0.0 <= value < 1.0
    ):
        raise ValueError(
            f"{name} must be in [0, 1). Received: {name}={value!r}"
        )
    return float(value)


def resolve_drop_connect_rate(
    model: ImageModel,
    drop_connect_rate: float | None,
    drop_path_rate: float | None,
) -> float:
    """The stochastic depth rate from keras.applications' name
    (`drop_connect_rate`) or timm's (`drop_path_rate`).

    Either may be given (both only if equal); with neither it is 0.2.
    The resolved rate is recorded under both names in `model`'s config,
    so that the config says which rate the model was built with.
    """
    given = [r for r in (drop_connect_rate, drop_path_rate) if r is not None]
    if len(given) == 2 and given[0] != given[1]:
        raise ValueError(
            "drop_connect_rate and drop_path_rate name the same stochastic "
            "depth rate; give one of them (or equal values). Received: "
            f"{drop_connect_rate=}, {drop_path_rate=}"
        )
    rate = given[0] if given else _DEFAULT_DROP_CONNECT_RATE
    rate = check_rate("drop_connect_rate", rate)
    captured = model._kerasblocks_arguments.kwargs
    captured["drop_connect_rate"] = captured["drop_path_rate"] = rate
    return rate


def top_layers(dropout_rate: float) -> Callable:
    """keras.applications' top: global average pooling, then dropout."""

    def top(x):
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if dropout_rate > 0:
            x = keras.layers.Dropout(dropout_rate, name="top_dropout")(x)
        return x

    return top


def classifier_initializer() -> keras.initializers.Initializer:
    """keras.applications' EfficientNet classifier initializer: uniform
    of variance 1 / (3 fan-out)."""
    return keras.initializers.VarianceScaling(
        1.0 / 3.0, mode="fan_out", distribution="uniform"
    )


def initialize_classifier(model: keras.Model) -> None:
    """Draws the classifier's kernel (if any) as keras.applications
    does for EfficientNet; `ImageHead` makes it with Keras's default."""
    if "predictions" in [layer.name for layer in model.layers]:
        kernel = model.get_layer("predictions").kernel
        kernel.assign(classifier_initializer()(kernel.shape))


def block_name(stage: int, repeat: int) -> str:
    """keras.applications' name of a block: "block1a", "block2b", ..."""
    return f"block{stage + 1}{chr(ord('a') + repeat)}"


def conv_bn_act(
    x,
    filters: int,
    kernel_size: int,
    prefix: str,
    *,
    strides: int = 1,
    momentum: float,
):
    """A convolution (no bias, "same"), batch norm and swish, named
    `{prefix}_conv`, `{prefix}_bn`, `{prefix}_activation`."""
    x = keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        use_bias=False,
        kernel_initializer=conv_initializer(),
        name=f"{prefix}_conv",
    )(x)
    x = keras.layers.BatchNormalization(momentum=momentum, name=f"{prefix}_bn")(
        x
    )
    return keras.layers.Activation("swish", name=f"{prefix}_activation")(x)


@kb.register(package="zoo")
class EfficientNet(ImageModel):
    """EfficientNet with width and depth coefficients.

    Layer names: `rescaling` (x / 255), `normalization` (a
    `keras.layers.Normalization` whose mean and variance are
    non-trainable weights, zero and one until ported or set), optionally
    `stddev_rescaling`; `stem_conv`, `stem_bn`, `stem_activation`;
    `block{s}{letter}` (`kerasblocks.layers.MBConv`; stage `s` from 1,
    its blocks a, b, c, ...); `top_conv`, `top_bn`, `top_activation`;
    then the head (`avg_pool`, `top_dropout`, `predictions`).
    `features_only` gives the last block before each stride-2 stage
    (strides 2, 4, 8, 16) and `top_activation` (stride 32).

    keras.applications zero-pads explicitly before its stride-2
    convolutions and convolves "valid"; for the model's fixed input size
    that is exactly the "same" padding used here.

    Args:
        width_coefficient: multiplies every width (rounded to a multiple
            of 8, never 10% below).
        depth_coefficient: multiplies every stage's depth (rounded up).
        dropout_rate: dropout before the classifier.
        drop_connect_rate: stochastic depth rate; block `i` of `n` drops
            its residual branch with probability
            `drop_connect_rate * i / n` in training. Default 0.2.
        drop_path_rate: the same rate under timm's name.
        stddev_rescaling: after the normalization, also scale channel
            `c` by `1 / sqrt(std_c)` (ImageNet's standard deviations), a
            layer keras.applications adds only with its ImageNet weights
            (whose normalization variance compensates for it). Ports set
            it as the keras model has it.
        input_shape, num_classes, include_top, pooling,
            classifier_activation: as in keras.applications.
        features_only: output the feature map of each stride instead.

    Example:

    >>> import zoo
    >>> model = zoo.create_model("efficientnet_b0", input_shape=(64, 64, 3),
    ...                          num_classes=10)
    >>> model.output_shape, model.get_layer("block6d").filters
    ((None, 10), 192)
    """

    def __init__(
        self,
        *,
        width_coefficient: float = 1.0,
        depth_coefficient: float = 1.0,
        dropout_rate: float = 0.2,
        drop_connect_rate: float | None = None,
        drop_path_rate: float | None = None,
        stddev_rescaling: bool = False,
        input_shape: tuple[int, int, int] = (224, 224, 3),
        num_classes: int = 1000,
        include_top: bool = True,
        pooling: str | None = None,
        classifier_activation: str | Callable | None = "softmax",
        features_only: bool = False,
        name: str = "efficientnet",
        **kwargs,
    ):
        for argument, value in (
            ("width_coefficient", width_coefficient),
            ("depth_coefficient", depth_coefficient),
        ):
            if isinstance(value, bool) or not (
                isinstance(value, (int, float)) and value > 0
            ):
                raise ValueError(
                    f"{argument} must be a positive number. Received: "
                    f"{argument}={value!r}"
                )
        check_rate("dropout_rate", dropout_rate)
        rate = resolve_drop_connect_rate(
            self, drop_connect_rate, drop_path_rate
        )
        head = ImageHead(
            "EfficientNet",
            input_shape=input_shape,
            num_classes=num_classes,
            include_top=include_top,
            pooling=pooling,
            classifier_activation=classifier_activation,
            features_only=features_only,
            min_input_size=32,
        )
        if stddev_rescaling and input_shape[-1] != 3:
            raise ValueError(
                "EfficientNet: stddev_rescaling scales RGB channels and needs "
                f"3 input channels. Received: input_shape={tuple(input_shape)}"
            )

        def width(filters):
            return round_channels(filters * width_coefficient)

        inputs = head.inputs()
        x = keras.layers.Rescaling(1.0 / 255.0, name="rescaling")(inputs)
        x = keras.layers.Normalization(name="normalization")(x)
        if stddev_rescaling:
            x = keras.layers.Rescaling(
                [1.0 / math.sqrt(s) for s in _IMAGENET_STDDEV],
                name="stddev_rescaling",
            )(x)
        x = conv_bn_act(x, width(32), 3, "stem", strides=2, momentum=0.99)
        repeats = [math.ceil(depth_coefficient * s[1]) for s in STAGES]
        total, index, stride, stages = sum(repeats), 0, 2, []
        last = "stem_activation"
        for stage, (kernel_size, _, filters, expansion, strides) in enumerate(
            STAGES
        ):
            if strides == 2:
                stages.append(Stage(last, x, stride))
                stride *= 2
            for repeat in range(repeats[stage]):
                last = block_name(stage, repeat)
                x = kb.layers.MBConv(
                    width(filters),
                    expansion=expansion,
                    kernel_size=kernel_size,
                    strides=strides if repeat == 0 else 1,
                    drop_path_rate=rate * index / total,
                    name=last,
                )(x)
                index += 1
        x = conv_bn_act(x, width(1280), 1, "top", momentum=0.99)
        stages.append(Stage("top_activation", x, stride))
        outputs = head.outputs(stages, top_layers(dropout_rate))
        self._finish(head, inputs, outputs, name, kwargs)
        initialize_classifier(self)


def _efficientnet(variant: str, overrides: dict) -> EfficientNet:
    width, depth, size, dropout = VARIANTS[variant]
    return EfficientNet(
        **{
            "width_coefficient": width,
            "depth_coefficient": depth,
            "dropout_rate": dropout,
            "input_shape": (size, size, 3),
            "name": f"efficientnet_{variant}",
            **overrides,
        }
    )


# A projection's per-channel shift (project_bn's beta) reaches the loss
# only through a 1x1 convolution and a batch norm (the next block's
# expansion or the top), which removes it in training mode: its gradient
# is zero up to rounding.
_NO_GRADIENT = ("*/project_bn/beta",)
_OVERRIDES = {"input_shape": (32, 32, 3), "num_classes": 5}
# The full harness saves and reloads the model several times: half the
# widths and fewer blocks (every stage of two or more still has an
# identity block) keep it fast. The real widths and depths are checked
# by the goldens, the porting tests and the siblings' light checks.
_FULL_OVERRIDES = {
    **_OVERRIDES,
    "width_coefficient": 0.5,
    "depth_coefficient": 0.6,
}


@register_model(
    test_overrides=_FULL_OVERRIDES, test_allow_no_gradient=_NO_GRADIENT
)
def efficientnet_b0(**overrides) -> EfficientNet:
    """EfficientNet-B0 for 224x224x3 images (0-255 RGB), 1000 classes."""
    return _efficientnet("b0", overrides)


@register_model(test_overrides=_OVERRIDES, test_covered_by="efficientnet_b0")
def efficientnet_b1(**overrides) -> EfficientNet:
    """EfficientNet-B1 for 240x240x3 images (0-255 RGB), 1000 classes."""
    return _efficientnet("b1", overrides)


@register_model(test_overrides=_OVERRIDES, test_covered_by="efficientnet_b0")
def efficientnet_b2(**overrides) -> EfficientNet:
    """EfficientNet-B2 for 260x260x3 images (0-255 RGB), 1000 classes."""
    return _efficientnet("b2", overrides)


@register_model(test_overrides=_OVERRIDES, test_covered_by="efficientnet_b0")
def efficientnet_b3(**overrides) -> EfficientNet:
    """EfficientNet-B3 for 300x300x3 images (0-255 RGB), 1000 classes."""
    return _efficientnet("b3", overrides)


@register_model(test_overrides=_OVERRIDES, test_covered_by="efficientnet_b0")
def efficientnet_b4(**overrides) -> EfficientNet:
    """EfficientNet-B4 for 380x380x3 images (0-255 RGB), 1000 classes."""
    return _efficientnet("b4", overrides)


@register_model(test_overrides=_OVERRIDES, test_covered_by="efficientnet_b0")
def efficientnet_b5(**overrides) -> EfficientNet:
    """EfficientNet-B5 for 456x456x3 images (0-255 RGB), 1000 classes."""
    return _efficientnet("b5", overrides)


@register_model(test_overrides=_OVERRIDES, test_covered_by="efficientnet_b0")
def efficientnet_b6(**overrides) -> EfficientNet:
    """EfficientNet-B6 for 528x528x3 images (0-255 RGB), 1000 classes."""
    return _efficientnet("b6", overrides)


@register_model(test_overrides=_OVERRIDES, test_covered_by="efficientnet_b0")
def efficientnet_b7(**overrides) -> EfficientNet:
    """EfficientNet-B7 for 600x600x3 images (0-255 RGB), 1000 classes."""
    return _efficientnet("b7", overrides)


def locator(keras_model: keras.Model, depthwise_conv: str) -> Callable:
    """Maps zoo weight paths to a keras.applications EfficientNet's
    layers: `block1a/expand_conv/kernel` -> `block1a_expand_conv`, with
    the depthwise convolution called `depthwise_conv` ("dwconv" in V1,
    "dwconv2" in V2) and its batch norm "bn"."""
    parts = {"depthwise_conv": depthwise_conv, "depthwise_bn": "bn"}
    # keras.applications leaves the normalization unnamed
    # ("normalization", "normalization_1", ...).
    renames = {}
    for layer in keras_model.layers:
        if isinstance(layer, keras.layers.Normalization):
            renames["normalization"] = layer.name

    def locate(path):
        *layers, weight = path.split("/")
        if len(layers) == 2:
            block, part = layers
            return f"{block}_{parts.get(part, part)}", weight
        return renames.get(layers[0], layers[0]), weight

    return locate


def dropout_config(keras_model: keras.Model, config: dict) -> dict:
    """The classifier's dropout rate of a keras.applications
    EfficientNet (V1 or V2), added to the ported `config`."""
    if not config["include_top"]:
        return config
    layers = {layer.name: layer for layer in keras_model.layers}
    dropout = layers.get("top_dropout")
    return {**config, "dropout_rate": dropout.rate if dropout else 0.0}


@register_porter("efficientnetb[0-7]")
def _port_efficientnet(keras_model, config):
    rescalings = [
        layer
        for layer in keras_model.layers
        if isinstance(layer, keras.layers.Rescaling)
    ]
    model = _efficientnet(
        keras_model.name[-2:],
        {
            **dropout_config(keras_model, config),
            "stddev_rescaling": len(rescalings) > 1,
        },
    )
    return model, gather_sources(
        model, keras_model, locator(keras_model, "dwconv")
    )
