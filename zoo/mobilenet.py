"""MobileNet (Howard et al., 2017, "MobileNets: Efficient Convolutional
Neural Networks for Mobile Vision Applications") and MobileNetV2
(Sandler et al., 2018, "MobileNetV2: Inverted Residuals and Linear
Bottlenecks"), laid out exactly as keras.applications.MobileNet and
MobileNetV2 build them, so that their weights port one to one.

- `mobilenet`: a stride-2 3x3 stem convolution, 13
  `DepthwiseSeparableBlock`s, and a head of global pooling, dropout and
  a 1x1 convolution (`logits`) as the classifier. `alpha` scales every
  width (truncated, as keras.applications does), `depth_multiplier`
  the depthwise outputs per channel.
- `mobilenetv2`: a stride-2 3x3 stem convolution, 17 `InvertedResidual`
  blocks in seven groups, a 1x1 convolution to 1280 channels, then the
  head. `alpha` scales every width, rounded as keras.applications
  rounds it.
"""

from __future__ import annotations

from collections.abc import Callable

import keras

import kerasblocks as kb
from kerasblocks._validation import rate as check_rate
from kerasblocks.layers.mobile import round_channels as round_channels
from zoo._image import ImageHead, ImageModel, Stage
from zoo._keras_twin import KerasTwin
from zoo._registry import register_model
from zoo.pretrained import PretrainedCfg

# (filters, strides) of MobileNet's depthwise separable blocks (the
# paper's Table 1).
V1_BLOCKS = (
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    *((512, 1),) * 5,
    (1024, 2),
    (1024, 1),
)
# (filters, expansion, strides of the first block, blocks) per group.
BLOCKS = (
    (16, 1, 1, 1),
    (24, 6, 2, 2),
    (32, 6, 2, 3),
    (64, 6, 2, 4),
    (96, 6, 1, 3),
    (160, 6, 2, 3),
    (320, 6, 1, 1),
)
# keras.applications' batch-norm settings for MobileNetV2.
_BN = {"momentum": 0.999, "epsilon": 1e-3}


def check_alpha(alpha) -> None:
    """Raises unless `alpha` (a width multiplier) is a positive number."""
    if (
        isinstance(alpha, bool)
        or not isinstance(alpha, (int, float))
        or not alpha > 0
    ):
        raise ValueError(f"alpha must be a positive number. Received: {alpha=}")


def conv_classifier(head: ImageHead, name: str, dropout_rate: float):
    """keras.applications' MobileNet top, applied to a pooled (1, 1, c)
    map: dropout (when `dropout_rate` > 0), a 1x1 convolution with
    `num_classes` filters named `name`, and a flatten; the head then adds
    the classifier activation as the layer "predictions"."""

    def top(x):
        if dropout_rate > 0:
            x = keras.layers.Dropout(dropout_rate, name="dropout")(x)
        x = keras.layers.Conv2D(head.num_classes, 1, name=name)(x)
        return keras.layers.Flatten(name="flatten")(x)

    return top


@kb.register(package="zoo")
class MobileNet(ImageModel):
    """MobileNet (V1) with width and depth multipliers.

    Layer names: `stem_conv`, `stem_bn`, `stem_relu`, `block_0` ...
    `block_12` (`kerasblocks.layers.DepthwiseSeparableBlock`), then the
    head: `avg_pool` (keeping a 1x1 map), `dropout` (when `dropout` >
    0), `logits` (a 1x1 convolution with `num_classes` filters),
    `flatten`, `predictions` (the classifier activation).
    `features_only` gives the outputs of
    `block_0` (stride 2), `block_2` (4), `block_4` (8), `block_10` (16)
    and `block_12` (32).

    Args:
        alpha: width multiplier; every width is `int(filters * alpha)`.
        depth_multiplier: depthwise outputs per input channel (the
            paper's resolution multiplier is the input size instead).
        dropout: dropout rate before the classifier.
        input_shape, num_classes, include_top, pooling,
            classifier_activation: as in keras.applications.
        features_only: output the feature map of each stride instead.

    Example:

    >>> import zoo
    >>> model = zoo.create_model("mobilenet", input_shape=(64, 64, 3),
    ...                          alpha=0.25, num_classes=10)
    >>> model.output_shape, model.get_layer("block_12").filters
    ((None, 10), 256)
    """

    def __init__(
        self,
        *,
        alpha: float = 1.0,
        depth_multiplier: int = 1,
        dropout: float = 1e-3,
        input_shape: tuple[int, int, int] = (224, 224, 3),
        num_classes: int = 1000,
        include_top: bool = True,
        pooling: str | None = None,
        classifier_activation: str | Callable | None = "softmax",
        features_only: bool = False,
        name: str = "mobilenet",
        **kwargs,
    ):
        check_alpha(alpha)
        check_rate("dropout", dropout)
        head = ImageHead(
            "MobileNet",
            input_shape=input_shape,
            num_classes=num_classes,
            include_top=include_top,
            pooling=pooling,
            classifier_activation=classifier_activation,
            features_only=features_only,
            min_input_size=32,
        )
        inputs = head.inputs()
        x = keras.layers.Conv2D(
            int(32 * alpha),
            3,
            strides=2,
            padding="same",
            use_bias=False,
            name="stem_conv",
        )(inputs)
        x = keras.layers.BatchNormalization(epsilon=1e-3, name="stem_bn")(x)
        x = keras.layers.ReLU(6.0, name="stem_relu")(x)
        stages, stride = [], 2
        for index, (filters, strides) in enumerate(V1_BLOCKS):
            if strides == 2:
                stages.append(Stage(f"block_{index - 1}", x, stride))
                stride *= 2
            x = kb.layers.DepthwiseSeparableBlock(
                int(filters * alpha),
                strides=strides,
                depth_multiplier=depth_multiplier,
                name=f"block_{index}",
            )(x)
        stages.append(Stage(f"block_{len(V1_BLOCKS) - 1}", x, stride))
        pool = keras.layers.GlobalAveragePooling2D(
            keepdims=True, name="avg_pool"
        )
        classify = conv_classifier(head, "logits", dropout)
        outputs = head.outputs(
            stages, lambda x: classify(pool(x)), dense_classifier=False
        )
        self._finish(head, inputs, outputs, name, kwargs)


# keras.applications counts MobileNet's blocks from 1, abbreviates their
# parts ("block_0/depthwise_bn" is "conv_dw_1_bn") and calls its
# classifier "conv_preds"; the name carries the width.
_KERAS_V1 = KerasTwin(
    name="mobilenet_*",
    layers=(
        (r"^stem_conv$", "conv1"),
        (r"^stem_bn$", "conv1_bn"),
        (r"^logits$", "conv_preds"),
        (
            r"^block_(\d+)/([dp])\w+wise(_bn)?$",
            lambda m: f"conv_{m[2]}w_{int(m[1]) + 1}{m[3] or ''}",
        ),
    ),
    classifier="conv_preds",
    arguments=lambda k: {
        "alpha": k.number_in_name(
            r"mobilenet_(\d+(?:\.\d+)?)_\d+", "mobilenet_<alpha>_<rows>"
        ),
        # The depthwise kernel is (3, 3, channels, depth_multiplier).
        "depth_multiplier": int(
            k.model.get_layer("conv_dw_1").kernel.shape[-1]
        ),
    },
    top_arguments=lambda k: {"dropout": k.rate("dropout", None)},
)
# MobileNetV2: keras.applications calls its first block "expanded_conv"
# and its batch norms "_BN".
_KERAS_V2 = KerasTwin(
    name="mobilenetv2_*",
    layers=(
        (r"^stem_conv$", "Conv1"),
        (r"^stem_bn$", "bn_Conv1"),
        (r"^top_conv$", "Conv_1"),
        (r"^top_bn$", "Conv_1_bn"),
        (r"^(block_\d+/\w+)_bn$", r"\1_BN"),
        (r"^block_0/", "expanded_conv_"),
    ),
    arguments=lambda k: {
        "alpha": k.number_in_name(
            r"mobilenetv2_(\d+(?:\.\d+)?)_\d+", "mobilenetv2_<alpha>_<rows>"
        ),
    },
)


@register_model(
    pretrained_cfg=PretrainedCfg("MobileNet"),
    test_overrides={"input_shape": (32, 32, 3), "alpha": 0.5},
    keras_twin=_KERAS_V1,
)
def mobilenet(**overrides) -> MobileNet:
    """MobileNet (alpha 1.0) for 224x224x3 images, 1000 classes."""
    return MobileNet(**overrides)


@kb.register(package="zoo")
class MobileNetV2(ImageModel):
    """MobileNetV2 with a width multiplier.

    Layer names: `stem_conv`, `stem_bn`, `stem_relu`, `block_0` ...
    `block_16` (`kerasblocks.layers.InvertedResidual`), `top_conv`,
    `top_bn`, `top_relu`, then the head (`avg_pool`, `predictions`).
    `features_only` gives the outputs of `block_0` (stride 2), `block_2`
    (4), `block_5` (8), `block_12` (16) and `top_relu` (32).

    Args:
        alpha: width multiplier; block widths are `round_channels(
            int(filters * alpha))`, the stem `round_channels(32 * alpha)`,
            the last convolution 1280 (`round_channels(1280 * alpha)`
            when alpha > 1).
        input_shape, num_classes, include_top, pooling,
            classifier_activation: as in keras.applications.
        features_only: output the feature map of each stride instead.

    Example:

    >>> import zoo
    >>> model = zoo.create_model("mobilenetv2", input_shape=(96, 96, 3),
    ...                          alpha=0.5, num_classes=10)
    >>> model.output_shape, model.get_layer("block_16").filters
    ((None, 10), 160)
    """

    def __init__(
        self,
        *,
        alpha: float = 1.0,
        input_shape: tuple[int, int, int] = (224, 224, 3),
        num_classes: int = 1000,
        include_top: bool = True,
        pooling: str | None = None,
        classifier_activation: str | Callable | None = "softmax",
        features_only: bool = False,
        name: str = "mobilenetv2",
        **kwargs,
    ):
        check_alpha(alpha)
        head = ImageHead(
            "MobileNetV2",
            input_shape=input_shape,
            num_classes=num_classes,
            include_top=include_top,
            pooling=pooling,
            classifier_activation=classifier_activation,
            features_only=features_only,
            min_input_size=32,
        )
        inputs = head.inputs()
        x = keras.layers.Conv2D(
            round_channels(32 * alpha),
            3,
            strides=2,
            padding="same",
            use_bias=False,
            name="stem_conv",
        )(inputs)
        x = keras.layers.BatchNormalization(**_BN, name="stem_bn")(x)
        x = keras.layers.ReLU(6.0, name="stem_relu")(x)
        stages, stride, index = [], 2, 0
        for filters, expansion, strides, repeats in BLOCKS:
            if strides == 2 and index:
                stages.append(Stage(f"block_{index - 1}", x, stride))
            stride *= strides
            for repeat in range(repeats):
                x = kb.layers.InvertedResidual(
                    round_channels(int(filters * alpha)),
                    expansion=expansion,
                    strides=strides if repeat == 0 else 1,
                    **_BN,
                    name=f"block_{index}",
                )(x)
                index += 1
        last = round_channels(1280 * alpha) if alpha > 1.0 else 1280
        x = keras.layers.Conv2D(last, 1, use_bias=False, name="top_conv")(x)
        x = keras.layers.BatchNormalization(**_BN, name="top_bn")(x)
        x = keras.layers.ReLU(6.0, name="top_relu")(x)
        stages.append(Stage("top_relu", x, stride))
        outputs = head.outputs(stages)
        self._finish(head, inputs, outputs, name, kwargs)


# A linear bottleneck's per-channel shift (project_bn's beta) reaches the
# loss only through a 1x1 convolution and a batch norm, which removes it
# in training mode: its gradient is zero up to rounding.
@register_model(
    pretrained_cfg=PretrainedCfg("MobileNetV2"),
    test_overrides={"input_shape": (32, 32, 3)},
    test_allow_no_gradient=("*/project_bn/beta",),
    keras_twin=_KERAS_V2,
)
def mobilenetv2(**overrides) -> MobileNetV2:
    """MobileNetV2 (alpha 1.0) for 224x224x3 images, 1000 classes."""
    return MobileNetV2(**overrides)
