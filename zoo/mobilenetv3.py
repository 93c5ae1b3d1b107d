"""MobileNetV3 (Howard et al., 2019, "Searching for MobileNetV3"), laid
out exactly as keras.applications.MobileNetV3Small and MobileNetV3Large
build it, so that their weights port one to one.

Raw 0-255 images rescaled to [-1, 1] (`include_preprocessing`), a
stride-2 3x3 stem convolution to 16 channels, the paper's "bneck"
blocks (`kerasblocks.layers.MobileNetV3Block`), a 1x1 convolution to six
times the last block's width, then keras.applications' head: global
average pooling, a 1x1 convolution with bias (1024 or 1280 channels),
the activation, dropout and a 1x1 convolution as the classifier. The
"minimalistic" variant drops squeeze-excite, hard-swish and 5x5 kernels.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import keras

import kerasblocks as kb
from kerasblocks._validation import rate as check_rate
from kerasblocks.layers.mobile import round_channels
from zoo._image import ImageHead, ImageModel, Stage
from zoo._keras_twin import KerasTwin
from zoo._registry import register_model
from zoo.mobilenet import check_alpha, conv_classifier
from zoo.pretrained import PretrainedCfg

_HS = "hard_swish"
# model_type -> (width of the head's convolution, blocks). A block is
# (expansion, filters, kernel_size, strides, squeeze-excite,
# activation), as in the paper's Tables 1 and 2 (with keras.applications'
# expansion ratios). The minimalistic variant makes every 5x5 kernel
# 3x3, every hard-swish ReLU, and drops squeeze-excite.
MOBILENETV3_SPECS = {
    "small": (
        1024,
        (
            (1, 16, 3, 2, True, "relu"),
            (72 / 16, 24, 3, 2, False, "relu"),
            (88 / 24, 24, 3, 1, False, "relu"),
            (4, 40, 5, 2, True, _HS),
            (6, 40, 5, 1, True, _HS),
            (6, 40, 5, 1, True, _HS),
            (3, 48, 5, 1, True, _HS),
            (3, 48, 5, 1, True, _HS),
            (6, 96, 5, 2, True, _HS),
            (6, 96, 5, 1, True, _HS),
            (6, 96, 5, 1, True, _HS),
        ),
    ),
    "large": (
        1280,
        (
            (1, 16, 3, 1, False, "relu"),
            (4, 24, 3, 2, False, "relu"),
            (3, 24, 3, 1, False, "relu"),
            (3, 40, 5, 2, True, "relu"),
            (3, 40, 5, 1, True, "relu"),
            (3, 40, 5, 1, True, "relu"),
            (6, 80, 3, 2, False, _HS),
            (2.5, 80, 3, 1, False, _HS),
            (2.3, 80, 3, 1, False, _HS),
            (2.3, 80, 3, 1, False, _HS),
            (6, 112, 3, 1, True, _HS),
            (6, 112, 3, 1, True, _HS),
            (6, 160, 5, 2, True, _HS),
            (6, 160, 5, 1, True, _HS),
            (6, 160, 5, 1, True, _HS),
        ),
    ),
}
_STEM_FILTERS = 16
_SE_RATIO = 0.25
# keras.applications' batch-norm settings for MobileNetV3.
_BN = {"momentum": 0.999, "epsilon": 1e-3}


@kb.register(package="zoo")
class MobileNetV3(ImageModel):
    """MobileNetV3-Small or -Large with a width multiplier.

    Layer names: `preprocessing` (a `Rescaling` of 0-255 inputs to
    [-1, 1], when `include_preprocessing`), `stem_conv`, `stem_bn`,
    `stem_act`, `block_0` ... (`kerasblocks.layers.MobileNetV3Block`),
    `top_conv`, `top_bn`, `top_act`, then the head: `avg_pool` (keeping a
    1x1 map), `head_conv`, `head_act`, `dropout` (when `dropout_rate` >
    0), `logits` (a 1x1 convolution with `num_classes` filters),
    `flatten`, `predictions` (the classifier activation). Without the
    classifier: `top_act`, pooled if asked. `features_only` gives the
    last output at each stride (2, 4, 8, 16, 32).

    Args:
        model_type: "small" or "large" (a key of `MOBILENETV3_SPECS`).
        alpha: width multiplier of the blocks (`round_channels(filters
            * alpha)`); the stem keeps 16 channels, and the head's
            convolution grows with alpha only above 1.
        minimalistic: 3x3 kernels, ReLU and no squeeze-excite.
        dropout_rate: dropout before the classifier.
        include_preprocessing: rescale raw 0-255 inputs to [-1, 1].
        input_shape, num_classes, include_top, pooling,
            classifier_activation: as in keras.applications.
        features_only: output the feature map of each stride instead.

    Example:

    >>> import zoo
    >>> model = zoo.create_model("mobilenetv3_small",
    ...                          input_shape=(64, 64, 3), num_classes=10)
    >>> model.output_shape, model.get_layer("top_conv").filters
    ((None, 10), 576)
    """

    def __init__(
        self,
        *,
        model_type: str = "large",
        alpha: float = 1.0,
        minimalistic: bool = False,
        dropout_rate: float = 0.2,
        include_preprocessing: bool = True,
        input_shape: tuple[int, int, int] = (224, 224, 3),
        num_classes: int = 1000,
        include_top: bool = True,
        pooling: str | None = None,
        classifier_activation: str | Callable | None = "softmax",
        features_only: bool = False,
        name: str | None = None,
        **kwargs,
    ):
        if model_type not in MOBILENETV3_SPECS:
            raise ValueError(
                f"model_type must be one of {sorted(MOBILENETV3_SPECS)}. "
                f"Received: {model_type=}"
            )
        check_alpha(alpha)
        check_rate("dropout_rate", dropout_rate)
        head = ImageHead(
            "MobileNetV3",
            input_shape=input_shape,
            num_classes=num_classes,
            include_top=include_top,
            pooling=pooling,
            classifier_activation=classifier_activation,
            features_only=features_only,
            min_input_size=32,
        )
        activation = "relu" if minimalistic else _HS
        head_filters, blocks = MOBILENETV3_SPECS[model_type]
        inputs = head.inputs()
        x = _stem(inputs, include_preprocessing, activation)
        x, stages, stride = _blocks(x, blocks, alpha, minimalistic)
        x = keras.layers.Conv2D(
            round_channels(x.shape[-1] * 6), 1, use_bias=False, name="top_conv"
        )(x)
        x = keras.layers.BatchNormalization(**_BN, name="top_bn")(x)
        x = keras.layers.Activation(activation, name="top_act")(x)
        stages.append(Stage("top_act", x, stride))
        if alpha > 1.0:
            head_filters = round_channels(head_filters * alpha)
        classify = conv_classifier(head, "logits", dropout_rate)

        def top(x):
            x = keras.layers.GlobalAveragePooling2D(
                keepdims=True, name="avg_pool"
            )(x)
            x = keras.layers.Conv2D(head_filters, 1, name="head_conv")(x)
            x = keras.layers.Activation(activation, name="head_act")(x)
            return classify(x)

        outputs = head.outputs(stages, top, dense_classifier=False)
        name = f"mobilenetv3_{model_type}" if name is None else name
        self._finish(head, inputs, outputs, name, kwargs)


def _stem(x, include_preprocessing, activation):
    """The optional rescaling to [-1, 1], then a 3x3/2 convolution."""
    if include_preprocessing:
        x = keras.layers.Rescaling(
            1.0 / 127.5, offset=-1.0, name="preprocessing"
        )(x)
    x = keras.layers.Conv2D(
        _STEM_FILTERS,
        3,
        strides=2,
        padding="same",
        use_bias=False,
        name="stem_conv",
    )(x)
    x = keras.layers.BatchNormalization(**_BN, name="stem_bn")(x)
    return keras.layers.Activation(activation, name="stem_act")(x)


def _blocks(x, blocks, alpha, minimalistic):
    """The bneck blocks of a `MOBILENETV3_SPECS` row on the stem's
    output; returns the last block's output, the stages before each
    downsampling and the output's stride."""
    stages, stride, last = [], 2, "stem_act"
    channels = _STEM_FILTERS
    for index, block in enumerate(blocks):
        expansion, filters, kernel_size, strides, se, act = block
        if minimalistic:
            kernel_size, se, act = 3, False, "relu"
        if strides == 2:
            stages.append(Stage(last, x, stride))
            stride *= 2
        expanded = None
        if expansion != 1:
            expanded = round_channels(channels * expansion)
        squeeze = None
        if se:
            squeeze = round_channels((expanded or channels) * _SE_RATIO)
        channels = round_channels(filters * alpha)
        last = f"block_{index}"
        x = kb.layers.MobileNetV3Block(
            channels,
            expanded_filters=expanded,
            kernel_size=kernel_size,
            strides=strides,
            squeeze_filters=squeeze,
            activation=act,
            **_BN,
            name=last,
        )(x)
    return x, stages, stride


# A linear bottleneck's per-channel shift (project_bn's beta) reaches the
# loss only through a 1x1 convolution and a batch norm, which removes it
# in training mode: its gradient is zero up to rounding.
_TEST = {
    "test_overrides": {"input_shape": (32, 32, 3), "num_classes": 10},
    "test_allow_no_gradient": ("*/project_bn/beta",),
}


# keras.applications numbers MobileNetV3's blocks after the first
# ("block_2/expand" is "expanded_conv_2_expand"), calls the squeeze-excite
# convolutions "squeeze_excite_conv" and "squeeze_excite_conv_1", and
# records neither the width (found from the layers' widths) nor
# minimalistic (no squeeze-excite).
_KERAS = KerasTwin(
    layers=(
        (r"^stem_conv$", "conv"),
        (r"^stem_bn$", "conv_bn"),
        (r"^top_conv$", "conv_1"),
        (r"^top_bn$", "conv_1_bn"),
        (r"^head_conv$", "conv_2"),
        (r"/squeeze_excite/reduce_conv$", "/squeeze_excite_conv"),
        (r"/squeeze_excite/expand_conv$", "/squeeze_excite_conv_1"),
        (r"^block_0/", "expanded_conv_"),
        (r"^block_(\d+)/", r"expanded_conv_\1_"),
    ),
    classifier="logits",
    top_arguments=lambda k: {"dropout_rate": k.rate(keras.layers.Dropout, 0.0)},
)


def _twin(model_type: str) -> KerasTwin:
    def arguments(k):
        return {
            "alpha": _infer_alpha(k.model, model_type, k.include_top),
            "minimalistic": k.count("*squeeze_excite*") == 0,
            "include_preprocessing": k.count(keras.layers.Rescaling) > 0,
        }

    name = f"MobileNetV3{model_type.title()}"
    return dataclasses.replace(_KERAS, name=name, arguments=arguments)


@register_model(
    pretrained_cfg=PretrainedCfg("MobileNetV3Small", preprocessing="builtin"),
    **_TEST,
    keras_twin=_twin("small"),
)
def mobilenetv3_small(**overrides) -> MobileNetV3:
    """MobileNetV3-Small for 224x224x3 images (0-255 RGB), 1000 classes."""
    return MobileNetV3(**{"model_type": "small", **overrides})


@register_model(
    pretrained_cfg=PretrainedCfg("MobileNetV3Large", preprocessing="builtin"),
    **_TEST,
    test_covered_by="mobilenetv3_small",
    keras_twin=_twin("large"),
)
def mobilenetv3_large(**overrides) -> MobileNetV3:
    """MobileNetV3-Large for 224x224x3 images (0-255 RGB), 1000 classes."""
    return MobileNetV3(**{"model_type": "large", **overrides})


def _widths(model_type, alpha, include_top):
    head_filters, blocks = MOBILENETV3_SPECS[model_type]
    widths = [round_channels(block[1] * alpha) for block in blocks]
    if include_top:
        widths.append(
            round_channels(head_filters * alpha) if alpha > 1 else head_filters
        )
    return widths


def _infer_alpha(keras_model, model_type, include_top):
    """An alpha that gives every width of `keras_model` (keras.applications
    does not record it). Its published alphas are tried first, then
    multiples of 0.25, 0.05 and 0.01, then the ratios its widths
    suggest; any alpha that gives the same widths builds the same
    model."""
    layers = {layer.name: layer for layer in keras_model.layers}
    _, blocks = MOBILENETV3_SPECS[model_type]
    names = ["expanded_conv_project"] + [
        f"expanded_conv_{index}_project" for index in range(1, len(blocks))
    ]
    if include_top:
        names.append("conv_2")
    # Block widths, then the head's (when there is a head).
    widths = [
        layers[name].filters if name in layers else None for name in names
    ]
    candidates = [
        1.0,
        0.75,
        *(step / 4 for step in range(1, 17)),
        *(step / 20 for step in range(1, 81)),
        *(step / 100 for step in range(1, 401)),
        *(
            width / block[1]
            for width, block in zip(widths[: len(blocks)], blocks, strict=True)
            if width is not None
        ),
    ]
    for alpha in candidates:
        if _widths(model_type, alpha, include_top) == widths:
            return alpha
    raise ValueError(
        f"Cannot port {keras_model.name!r}: no width multiplier gives its "
        f"block widths {widths}."
    )
