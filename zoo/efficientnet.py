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
from zoo._efficientnet import (
    TEST_FULL_OVERRIDES,
    TEST_NO_GRADIENT,
    TEST_OVERRIDES,
    blocks_and_top,
    conv_bn_act,
    finish,
    keras_twin,
    start,
)
from zoo._image import ImageModel
from zoo._registry import register_model
from zoo.mobilenet import round_channels
from zoo.pretrained import PretrainedCfg

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
        zero_init_last: start the last batch-norm scale (`project_bn`'s
            gamma) of every block with an identity shortcut at zero, so
            that each such block starts as the identity.
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
        zero_init_last: bool = False,
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
        rate, head = start(
            self,
            "EfficientNet",
            width_coefficient=width_coefficient,
            depth_coefficient=depth_coefficient,
            dropout_rate=dropout_rate,
            drop_connect_rate=drop_connect_rate,
            drop_path_rate=drop_path_rate,
            input_shape=input_shape,
            num_classes=num_classes,
            include_top=include_top,
            pooling=pooling,
            classifier_activation=classifier_activation,
            features_only=features_only,
        )
        if stddev_rescaling and head.input_shape[-1] != 3:
            raise ValueError(
                "EfficientNet: stddev_rescaling scales RGB channels and needs "
                f"3 input channels. Received: input_shape={head.input_shape}"
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
        stages = [
            (
                kb.layers.MBConv,
                math.ceil(depth_coefficient * repeats),
                strides,
                {
                    "filters": width(filters),
                    "expansion": expansion,
                    "kernel_size": kernel_size,
                },
            )
            for kernel_size, repeats, filters, expansion, strides in STAGES
        ]
        outputs = blocks_and_top(
            x,
            stages,
            rate=rate,
            total=sum(stage[1] for stage in stages),
            zero_init_last=zero_init_last,
            top_filters=width(1280),
            momentum=0.99,
        )
        finish(self, head, inputs, outputs, dropout_rate, name, kwargs)


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


def _imagenet(variant: str, size: int, crop: float) -> PretrainedCfg:
    """keras.applications' EfficientNet<variant> weights: their size,
    and timm's crop fraction."""
    return PretrainedCfg(
        f"EfficientNet{variant}",
        (size, size, 3),
        interpolation="bicubic",
        crop_fraction=crop,
        preprocessing="builtin",
    )


_KERAS = keras_twin(
    "dwconv",
    lambda k: {
        # keras.applications adds a second rescaling for its ImageNet
        # file (zoo.pretrained's _IMAGENET_LAYOUT).
        "stddev_rescaling": k.count(keras.layers.Rescaling) > 1
    },
)


@register_model(
    pretrained_cfg=_imagenet("B0", 224, 0.875),
    keras_twin=_KERAS.named("efficientnetb0"),
    test_overrides=TEST_FULL_OVERRIDES,
    test_allow_no_gradient=TEST_NO_GRADIENT,
)
def efficientnet_b0(**overrides) -> EfficientNet:
    """EfficientNet-B0 for 224x224x3 images (0-255 RGB), 1000 classes."""
    return _efficientnet("b0", overrides)


@register_model(
    pretrained_cfg=_imagenet("B1", 240, 0.882),
    keras_twin=_KERAS.named("efficientnetb1"),
    test_overrides=TEST_OVERRIDES,
    test_covered_by="efficientnet_b0",
)
def efficientnet_b1(**overrides) -> EfficientNet:
    """EfficientNet-B1 for 240x240x3 images (0-255 RGB), 1000 classes."""
    return _efficientnet("b1", overrides)


@register_model(
    pretrained_cfg=_imagenet("B2", 260, 0.89),
    keras_twin=_KERAS.named("efficientnetb2"),
    test_overrides=TEST_OVERRIDES,
    test_covered_by="efficientnet_b0",
)
def efficientnet_b2(**overrides) -> EfficientNet:
    """EfficientNet-B2 for 260x260x3 images (0-255 RGB), 1000 classes."""
    return _efficientnet("b2", overrides)


@register_model(
    pretrained_cfg=_imagenet("B3", 300, 0.904),
    keras_twin=_KERAS.named("efficientnetb3"),
    test_overrides=TEST_OVERRIDES,
    test_covered_by="efficientnet_b0",
)
def efficientnet_b3(**overrides) -> EfficientNet:
    """EfficientNet-B3 for 300x300x3 images (0-255 RGB), 1000 classes."""
    return _efficientnet("b3", overrides)


@register_model(
    pretrained_cfg=_imagenet("B4", 380, 0.922),
    keras_twin=_KERAS.named("efficientnetb4"),
    test_overrides=TEST_OVERRIDES,
    test_covered_by="efficientnet_b0",
)
def efficientnet_b4(**overrides) -> EfficientNet:
    """EfficientNet-B4 for 380x380x3 images (0-255 RGB), 1000 classes."""
    return _efficientnet("b4", overrides)


@register_model(
    pretrained_cfg=_imagenet("B5", 456, 0.934),
    keras_twin=_KERAS.named("efficientnetb5"),
    test_overrides=TEST_OVERRIDES,
    test_covered_by="efficientnet_b0",
)
def efficientnet_b5(**overrides) -> EfficientNet:
    """EfficientNet-B5 for 456x456x3 images (0-255 RGB), 1000 classes."""
    return _efficientnet("b5", overrides)


@register_model(
    pretrained_cfg=_imagenet("B6", 528, 0.942),
    keras_twin=_KERAS.named("efficientnetb6"),
    test_overrides=TEST_OVERRIDES,
    test_covered_by="efficientnet_b0",
)
def efficientnet_b6(**overrides) -> EfficientNet:
    """EfficientNet-B6 for 528x528x3 images (0-255 RGB), 1000 classes."""
    return _efficientnet("b6", overrides)


@register_model(
    pretrained_cfg=_imagenet("B7", 600, 0.949),
    keras_twin=_KERAS.named("efficientnetb7"),
    test_overrides=TEST_OVERRIDES,
    test_covered_by="efficientnet_b0",
)
def efficientnet_b7(**overrides) -> EfficientNet:
    """EfficientNet-B7 for 600x600x3 images (0-255 RGB), 1000 classes."""
    return _efficientnet("b7", overrides)
