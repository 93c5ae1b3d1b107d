"""EfficientNetV2 (Tan & Le, 2021, "EfficientNetV2: Smaller Models and
Faster Training"), laid out exactly as keras.applications.EfficientNetV2B0
... B3, S, M and L build it, so that their weights port one to one.

The model takes raw 0-255 images and, with `include_preprocessing`,
scales them itself. Then a stride-2 3x3 stem convolution, stages of
`FusedMBConv` blocks (the early, high-resolution stages) and `MBConv`
blocks with squeeze-and-excitation, a 1x1 convolution to 1280 channels
and the head. S, M and L have their own stage tables (the paper's
Table 4 and appendix); B0 ... B3 scale one baseline table by width and
depth coefficients, as EfficientNet does.
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
from zoo.pretrained import PretrainedCfg

# Stage table -> (stem filters, stages); a stage is (block type,
# repeats, filters, expansion, strides of the first block, squeeze
# ratio). Every kernel is 3x3.
STAGES = {
    "b": (
        32,
        (
            ("fused", 1, 16, 1, 1, 0.0),
            ("fused", 2, 32, 4, 2, 0.0),
            ("fused", 2, 48, 4, 2, 0.0),
            ("mbconv", 3, 96, 4, 2, 0.25),
            ("mbconv", 5, 112, 6, 1, 0.25),
            ("mbconv", 8, 192, 6, 2, 0.25),
        ),
    ),
    "s": (
        24,
        (
            ("fused", 2, 24, 1, 1, 0.0),
            ("fused", 4, 48, 4, 2, 0.0),
            ("fused", 4, 64, 4, 2, 0.0),
            ("mbconv", 6, 128, 4, 2, 0.25),
            ("mbconv", 9, 160, 6, 1, 0.25),
            ("mbconv", 15, 256, 6, 2, 0.25),
        ),
    ),
    "m": (
        24,
        (
            ("fused", 3, 24, 1, 1, 0.0),
            ("fused", 5, 48, 4, 2, 0.0),
            ("fused", 5, 80, 4, 2, 0.0),
            ("mbconv", 7, 160, 4, 2, 0.25),
            ("mbconv", 14, 176, 6, 1, 0.25),
            ("mbconv", 18, 304, 6, 2, 0.25),
            ("mbconv", 5, 512, 6, 1, 0.25),
        ),
    ),
    "l": (
        32,
        (
            ("fused", 4, 32, 1, 1, 0.0),
            ("fused", 7, 64, 4, 2, 0.0),
            ("fused", 7, 96, 4, 2, 0.0),
            ("mbconv", 10, 192, 4, 2, 0.25),
            ("mbconv", 19, 224, 6, 1, 0.25),
            ("mbconv", 25, 384, 6, 2, 0.25),
            ("mbconv", 7, 640, 6, 1, 0.25),
        ),
    ),
}
# Variant -> (stage table, width coefficient, depth coefficient, image
# size), keras.applications' values. All use dropout 0.2.
VARIANTS = {
    "b0": ("b", 1.0, 1.0, 224),
    "b1": ("b", 1.0, 1.1, 240),
    "b2": ("b", 1.1, 1.2, 260),
    "b3": ("b", 1.2, 1.4, 300),
    "s": ("s", 1.0, 1.0, 384),
    "m": ("m", 1.0, 1.0, 480),
    "l": ("l", 1.0, 1.0, 480),
}
_BLOCKS = {"fused": kb.layers.FusedMBConv, "mbconv": kb.layers.MBConv}
# keras.applications' batch-norm momentum for EfficientNetV2.
_MOMENTUM = 0.9
# ImageNet's RGB statistics on the 0-1 scale (the B models' inputs).
_MEAN = (0.485, 0.456, 0.406)
_VARIANCE = (0.229**2, 0.224**2, 0.225**2)


def round_filters(filters: float, width_coefficient: float) -> int:
    """A width scaled and rounded to the nearest multiple of 8 (at least
    8), keras.applications' rule for EfficientNetV2."""
    return max(8, int(filters * width_coefficient + 4) // 8 * 8)


@kb.register(package="zoo")
class EfficientNetV2(ImageModel):
    """EfficientNetV2 from a stage table, width and depth coefficients.

    Layer names: with `include_preprocessing`, `rescaling` (and, for the
    "b" table and RGB inputs, `normalization` with ImageNet's mean and
    variance; the other tables and other inputs are scaled to [-1, 1]
    instead), as keras.applications does; `stem_conv`, `stem_bn`,
    `stem_activation`; `block{s}{letter}` (`kerasblocks.layers.
    FusedMBConv` or `MBConv`; stage `s` from 1, its blocks a, b, c,
    ...); `top_conv`, `top_bn`, `top_activation`; then the head
    (`avg_pool`, `top_dropout`, `predictions`). `features_only` gives
    the last block before each stride-2 stage (strides 2, 4, 8, 16) and
    `top_activation` (stride 32).

    Args:
        stages: the stage table, a key of `STAGES`: "b" (B0 ... B3),
            "s", "m" or "l".
        width_coefficient: multiplies every width (rounded to a multiple
            of 8).
        depth_coefficient: multiplies every stage's depth (rounded up).
        dropout_rate: dropout before the classifier.
        drop_connect_rate: stochastic depth rate; block `i` drops its
            residual branch with probability `drop_connect_rate * i / n`
            in training, where `n` counts the table's blocks before depth
            scaling (keras.applications' schedule). Default 0.2.
        drop_path_rate: the same rate under timm's name.
        zero_init_last: start the last batch-norm scale (`project_bn`'s
            gamma) of every block with an identity shortcut at zero, so
            that each such block starts as the identity.
        include_preprocessing: scale raw 0-255 inputs in the model.
        input_shape, num_classes, include_top, pooling,
            classifier_activation: as in keras.applications.
        features_only: output the feature map of each stride instead.

    Example:

    >>> import zoo
    >>> model = zoo.create_model("efficientnetv2_b0",
    ...                          input_shape=(64, 64, 3), num_classes=10)
    >>> model.output_shape, type(model.get_layer("block1a")).__name__
    ((None, 10), 'FusedMBConv')
    """

    def __init__(
        self,
        *,
        stages: str = "b",
        width_coefficient: float = 1.0,
        depth_coefficient: float = 1.0,
        dropout_rate: float = 0.2,
        drop_connect_rate: float | None = None,
        drop_path_rate: float | None = None,
        zero_init_last: bool = False,
        include_preprocessing: bool = True,
        input_shape: tuple[int, int, int] = (224, 224, 3),
        num_classes: int = 1000,
        include_top: bool = True,
        pooling: str | None = None,
        classifier_activation: str | Callable | None = "softmax",
        features_only: bool = False,
        name: str = "efficientnetv2",
        **kwargs,
    ):
        if stages not in STAGES:
            raise ValueError(
                f"stages must be one of {sorted(STAGES)}. Received: {stages=}"
            )
        rate, head = start(
            self,
            "EfficientNetV2",
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
        stem_filters, table = STAGES[stages]
        inputs = head.inputs()
        x = inputs
        if include_preprocessing:
            x = _preprocessing(x, imagenet_statistics=stages == "b")
        x = conv_bn_act(
            x,
            round_filters(stem_filters, width_coefficient),
            3,
            "stem",
            strides=2,
            momentum=_MOMENTUM,
        )
        outputs = blocks_and_top(
            x,
            _stage_blocks(table, width_coefficient, depth_coefficient),
            rate=rate,
            # keras.applications divides by the unscaled number of
            # blocks, so the deeper B1 ... B3 end above `rate`.
            total=sum(stage[1] for stage in table),
            zero_init_last=zero_init_last,
            top_filters=round_filters(1280, width_coefficient),
            momentum=_MOMENTUM,
        )
        finish(self, head, inputs, outputs, dropout_rate, name, kwargs)


def _preprocessing(x, imagenet_statistics):
    """keras.applications' input scaling: RGB inputs of the "b" table
    normalized with ImageNet's statistics, anything else to [-1, 1]."""
    if imagenet_statistics and x.shape[-1] == 3:
        x = keras.layers.Rescaling(1.0 / 255.0, name="rescaling")(x)
        return keras.layers.Normalization(
            mean=list(_MEAN),
            variance=list(_VARIANCE),
            name="normalization",
        )(x)
    return keras.layers.Rescaling(1.0 / 128.0, offset=-1.0, name="rescaling")(x)


def _stage_blocks(table, width_coefficient, depth_coefficient):
    """`blocks_and_top`'s stages from a `STAGES` table, scaled."""
    return [
        (
            _BLOCKS[kind],
            math.ceil(depth_coefficient * repeats),
            strides,
            {
                "filters": round_filters(filters, width_coefficient),
                "expansion": expansion,
                "se_ratio": se,
            },
        )
        for kind, repeats, filters, expansion, strides, se in table
    ]


def _efficientnetv2(variant: str, overrides: dict) -> EfficientNetV2:
    stages, width, depth, size = VARIANTS[variant]
    return EfficientNetV2(
        **{
            "stages": stages,
            "width_coefficient": width,
            "depth_coefficient": depth,
            "input_shape": (size, size, 3),
            "name": f"efficientnetv2_{variant}",
            **overrides,
        }
    )


def _imagenet(variant: str, size: int) -> PretrainedCfg:
    """keras.applications' EfficientNetV2<variant> weights, evaluated
    uncropped at their size."""
    return PretrainedCfg(
        f"EfficientNetV2{variant}",
        (size, size, 3),
        interpolation="bicubic",
        crop_fraction=1.0,
        preprocessing="builtin",
    )


_KERAS = keras_twin(
    "dwconv2",
    lambda k: {"include_preprocessing": k.count(keras.layers.Rescaling) > 0},
)


@register_model(
    pretrained_cfg=_imagenet("B0", 224),
    keras_twin=_KERAS.named("efficientnetv2-b0"),
    test_overrides=TEST_FULL_OVERRIDES,
    test_allow_no_gradient=TEST_NO_GRADIENT,
)
def efficientnetv2_b0(**overrides) -> EfficientNetV2:
    """EfficientNetV2-B0 for 224x224x3 images (0-255 RGB), 1000 classes."""
    return _efficientnetv2("b0", overrides)


@register_model(
    pretrained_cfg=_imagenet("B1", 240),
    keras_twin=_KERAS.named("efficientnetv2-b1"),
    test_overrides=TEST_OVERRIDES,
    test_covered_by="efficientnetv2_b0",
)
def efficientnetv2_b1(**overrides) -> EfficientNetV2:
    """EfficientNetV2-B1 for 240x240x3 images (0-255 RGB), 1000 classes."""
    return _efficientnetv2("b1", overrides)


@register_model(
    pretrained_cfg=_imagenet("B2", 260),
    keras_twin=_KERAS.named("efficientnetv2-b2"),
    test_overrides=TEST_OVERRIDES,
    test_covered_by="efficientnetv2_b0",
)
def efficientnetv2_b2(**overrides) -> EfficientNetV2:
    """EfficientNetV2-B2 for 260x260x3 images (0-255 RGB), 1000 classes."""
    return _efficientnetv2("b2", overrides)


@register_model(
    pretrained_cfg=_imagenet("B3", 300),
    keras_twin=_KERAS.named("efficientnetv2-b3"),
    test_overrides=TEST_OVERRIDES,
    test_covered_by="efficientnetv2_b0",
)
def efficientnetv2_b3(**overrides) -> EfficientNetV2:
    """EfficientNetV2-B3 for 300x300x3 images (0-255 RGB), 1000 classes."""
    return _efficientnetv2("b3", overrides)


@register_model(
    pretrained_cfg=_imagenet("S", 384),
    keras_twin=_KERAS.named("efficientnetv2-s"),
    test_overrides=TEST_OVERRIDES,
    test_covered_by="efficientnetv2_b0",
)
def efficientnetv2_s(**overrides) -> EfficientNetV2:
    """EfficientNetV2-S for 384x384x3 images (0-255 RGB), 1000 classes."""
    return _efficientnetv2("s", overrides)


@register_model(
    pretrained_cfg=_imagenet("M", 480),
    keras_twin=_KERAS.named("efficientnetv2-m"),
    test_overrides=TEST_OVERRIDES,
    test_covered_by="efficientnetv2_b0",
)
def efficientnetv2_m(**overrides) -> EfficientNetV2:
    """EfficientNetV2-M for 480x480x3 images (0-255 RGB), 1000 classes."""
    return _efficientnetv2("m", overrides)


@register_model(
    pretrained_cfg=_imagenet("L", 480),
    keras_twin=_KERAS.named("efficientnetv2-l"),
    test_overrides=TEST_OVERRIDES,
    test_covered_by="efficientnetv2_b0",
)
def efficientnetv2_l(**overrides) -> EfficientNetV2:
    """EfficientNetV2-L for 480x480x3 images (0-255 RGB), 1000 classes."""
    return _efficientnetv2("l", overrides)
