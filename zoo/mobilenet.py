"""MobileNetV2 (Sandler et al., 2018, "MobileNetV2: Inverted Residuals and
Linear Bottlenecks"), laid out exactly as keras.applications.MobileNetV2
builds it, so that its weights port one to one.

A stride-2 3x3 stem convolution, 17 `InvertedResidual` blocks in seven
groups, a 1x1 convolution to 1280 channels, then the head. `alpha`
scales every width, rounded as keras.applications rounds it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import keras

import kerasblocks as kb
from zoo._image import ImageHead, ImageModel, Stage
from zoo._porting import register_porter
from zoo._porting_names import gather_sources
from zoo._registry import register_model

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


def round_channels(value: float, divisor: int = 8) -> int:
    """Rounds a width to a multiple of `divisor`, never below `divisor`
    and never more than 10% below `value` (keras.applications' rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


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
        if (
            isinstance(alpha, bool)
            or not isinstance(alpha, (int, float))
            or not alpha > 0
        ):
            raise ValueError(
                f"alpha must be a positive number. Received: {alpha=}"
            )
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
    test_overrides={"input_shape": (32, 32, 3)},
    test_allow_no_gradient=("*/project_bn/beta",),
)
def mobilenetv2(**overrides) -> MobileNetV2:
    """MobileNetV2 (alpha 1.0) for 224x224x3 images, 1000 classes."""
    return MobileNetV2(**overrides)


# Zoo layer names -> keras.applications' (outside the blocks).
_KERAS_LAYERS = {
    "stem_conv": "Conv1",
    "stem_bn": "bn_Conv1",
    "top_conv": "Conv_1",
    "top_bn": "Conv_1_bn",
    "predictions": "predictions",
}
_KERAS_BLOCK_LAYERS = {
    "expand": "expand",
    "expand_bn": "expand_BN",
    "depthwise": "depthwise",
    "depthwise_bn": "depthwise_BN",
    "project": "project",
    "project_bn": "project_BN",
}


def _keras_location(path: str):
    *layers, weight = path.split("/")
    if len(layers) == 2 and layers[0].startswith("block_"):
        block, part = layers
        # keras.applications names its first block "expanded_conv".
        prefix = "expanded_conv" if block == "block_0" else block
        return f"{prefix}_{_KERAS_BLOCK_LAYERS.get(part, part)}", weight
    layer = "/".join(layers)
    return _KERAS_LAYERS.get(layer, layer), weight


@register_porter("mobilenetv2_*")
def _port_mobilenetv2(keras_model, config):
    match = re.fullmatch(r"mobilenetv2_(\d+(?:\.\d+)?)_\d+", keras_model.name)
    if match is None:
        raise ValueError(
            f"Cannot port {keras_model.name!r}: a keras.applications "
            "MobileNetV2 is named 'mobilenetv2_<alpha>_<rows>'."
        )
    model = MobileNetV2(alpha=float(match.group(1)), **config)
    return model, gather_sources(model, keras_model, _keras_location)
