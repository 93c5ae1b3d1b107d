"""Xception (Chollet, 2017, "Xception: Deep Learning with Depthwise
Separable Convolutions"), laid out exactly as keras.applications.Xception
builds it, so that its weights port one to one.

The entry flow (two unpadded 3x3 convolutions, then three downsampling
`XceptionBlock`s), the middle flow (eight 728-wide blocks with identity
shortcuts) and the exit flow (a downsampling block, then two separable
convolutions to 1536 and 2048 channels, each with batch norm and ReLU),
then the head.
"""

from __future__ import annotations

from collections.abc import Callable

import keras

import kerasblocks as kb
from zoo._image import ImageHead, ImageModel, Stage
from zoo._keras_twin import KerasTwin
from zoo._registry import register_model
from zoo.pretrained import PretrainedCfg

# (filters of the separable convolutions, strides) of `block2` to
# `block13`, the paper's Figure 5.
BLOCKS = (
    ((128, 128), 2),
    ((256, 256), 2),
    ((728, 728), 2),
    *(((728, 728, 728), 1),) * 8,
    ((728, 1024), 2),
)
# (filters, kernel size, strides) of the two stem convolutions and the
# two exit-flow separable convolutions.
STEM = ((32, 3, 2), (64, 3, 1))
EXIT = (1536, 2048)
# The blocks whose outputs `features_only` gives, with their strides.
FEATURES = {"block2": 4, "block3": 8, "block12": 16}


def _conv_bn_relu(x, layer, name):
    x = layer(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return keras.layers.Activation("relu", name=f"{name}_act")(x)


@kb.register(package="zoo")
class Xception(ImageModel):
    """Xception.

    Layer names: `block1_conv1`, `block1_conv2` (unpadded 3x3
    convolutions, the first of stride 2), each followed by `..._bn` and
    `..._act`; `block2` ... `block13` (`kerasblocks.layers.XceptionBlock`,
    see `BLOCKS`; `block2` has no ReLU before its first convolution);
    `block14_sepconv1`, `block14_sepconv2` (3x3 separable convolutions),
    each followed by `..._bn` and `..._act`; then the head (`avg_pool`,
    `predictions`). `features_only` gives `block1_conv2_act` (stride 2),
    `block2` (4), `block3` (8), `block12` (16) and `block14_sepconv2_act`
    (32).

    Args:
        input_shape, num_classes, include_top, pooling,
            classifier_activation: as in keras.applications (height and
            width at least 71).
        features_only: output the feature map of each stride instead.

    Example:

    >>> import zoo
    >>> model = zoo.create_model("xception", input_shape=(71, 71, 3),
    ...                          include_top=False, pooling="avg")
    >>> model.output_shape, model.get_layer("block13").filters
    ((None, 2048), (728, 1024))
    """

    def __init__(
        self,
        *,
        input_shape: tuple[int, int, int] = (299, 299, 3),
        num_classes: int = 1000,
        include_top: bool = True,
        pooling: str | None = None,
        classifier_activation: str | Callable | None = "softmax",
        features_only: bool = False,
        name: str = "xception",
        **kwargs,
    ):
        head = ImageHead(
            "Xception",
            input_shape=input_shape,
            num_classes=num_classes,
            include_top=include_top,
            pooling=pooling,
            classifier_activation=classifier_activation,
            features_only=features_only,
            min_input_size=71,
        )
        inputs = head.inputs()
        x = inputs
        for index, (filters, kernel_size, strides) in enumerate(STEM, 1):
            name_ = f"block1_conv{index}"
            conv = keras.layers.Conv2D(
                filters, kernel_size, strides, use_bias=False, name=name_
            )
            x = _conv_bn_relu(x, conv, name_)
        stages = [Stage("block1_conv2_act", x, 2)]
        for index, (filters, strides) in enumerate(BLOCKS, start=2):
            block = f"block{index}"
            x = kb.layers.XceptionBlock(
                filters, strides=strides, pre_activation=index > 2, name=block
            )(x)
            if block in FEATURES:
                stages.append(Stage(block, x, FEATURES[block]))
        for index, filters in enumerate(EXIT, start=1):
            name_ = f"block14_sepconv{index}"
            conv = keras.layers.SeparableConv2D(
                filters, 3, padding="same", use_bias=False, name=name_
            )
            x = _conv_bn_relu(x, conv, name_)
        stages.append(Stage("block14_sepconv2_act", x, 32))
        outputs = head.outputs(stages)
        self._finish(head, inputs, outputs, name, kwargs)


# keras.applications leaves the shortcuts unnamed: they pair, in
# order, with the auto-named conv2d and batch_normalization layers.
_KERAS = KerasTwin(
    layers=(
        (r"^block\d+/shortcut$", "conv2d#"),
        (r"^block\d+/shortcut_bn$", "batch_normalization#"),
    )
)


@register_model(
    pretrained_cfg=PretrainedCfg("Xception", input_size=(299, 299, 3)),
    keras_twin=_KERAS.named("xception"),
    test_overrides={"input_shape": (71, 71, 3), "num_classes": 5},
)
def xception(**overrides) -> Xception:
    """Xception for 299x299x3 images, 1000 classes."""
    return Xception(**overrides)
