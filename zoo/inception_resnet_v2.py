"""Inception-ResNet-v2 (Szegedy et al., 2017, "Inception-v4,
Inception-ResNet and the Impact of Residual Connections on Learning"),
laid out exactly as keras.applications.InceptionResNetV2 builds it, so
that its weights port one to one.

Inception-v3's stem (`zoo.inception_v3.inception_stem`), an
`InceptionA` module (`mixed_5b`), ten 35x35 residual blocks, the
`InceptionB` reduction (`mixed_6a`), twenty 17x17 blocks, the
`InceptionResNetReduction` (`mixed_7a`), ten 8x8 blocks (the last one
unscaled and without activation, as keras.applications has it) and a
1x1 `ConvBN` to 1536 channels (`conv_7b`), then the head.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import kerasblocks as kb
from zoo._image import ImageHead, ImageModel, Stage
from zoo._keras_twin import KerasTwin
from zoo._registry import register_model
from zoo.inception_v3 import CONV_BN_UNITS, inception_stem
from zoo.pretrained import PretrainedCfg

# The paper's residual scales (section 3.3): scaling the residuals down
# kept the wide network from "dying" early in training.
BLOCK35_SCALE = 0.17
BLOCK17_SCALE = 0.1
BLOCK8_SCALE = 0.2
# (block type, residual scale, the reduction after the group) per grid
# size, and the blocks in each group.
GROUPS = (
    ("block35", BLOCK35_SCALE, "mixed_6a"),
    ("block17", BLOCK17_SCALE, "mixed_7a"),
    ("block8", BLOCK8_SCALE, None),
)
DEPTHS = (10, 20, 10)


def _reduction(name):
    if name == "mixed_6a":
        # The Inception-v4 paper's Reduction-A with k, l, m, n = 256,
        # 256, 384, 384.
        return kb.layers.InceptionB(
            384, double_filters=(256, 256, 384), name=name
        )
    return kb.layers.InceptionResNetReduction(name=name)


@kb.register(package="zoo")
class InceptionResNetV2(ImageModel):
    """Inception-ResNet-v2.

    Layer names: the stem (`stem_conv1` ... `stem_conv5`, `stem_pool1`,
    `stem_pool2`), `mixed_5b`, `block35_1` ... `block35_10`,
    `mixed_6a`, `block17_1` ... `block17_20`, `mixed_7a`, `block8_1` ...
    `block8_10` (`kerasblocks.layers.InceptionResNetBlock`), `conv_7b`,
    then the head (`avg_pool`, `predictions`). `features_only` gives
    `stem_conv3` (stride 2), `stem_conv5` (4), `block35_10` (8),
    `block17_20` (16) and `conv_7b` (32).

    Args:
        depths: residual blocks per grid size (35x35, 17x17, 8x8); the
            last 8x8 block is unscaled and has no activation, so the
            last entry is at least 2. keras.applications' layout is
            the default; fewer blocks make small test models.
        input_shape, num_classes, include_top, pooling,
            classifier_activation: as in keras.applications (height and
            width at least 75).
        features_only: output the feature map of each stride instead.

    Example:

    >>> import zoo
    >>> model = zoo.create_model("inception_resnet_v2",
    ...                          input_shape=(75, 75, 3), include_top=False,
    ...                          depths=(1, 3, 2))
    >>> model.output_shape
    (None, 1, 1, 1536)
    >>> model.get_layer("block17_3").scale, model.get_layer("block8_2").scale
    (0.1, 1.0)
    """

    def __init__(
        self,
        *,
        depths: Sequence[int] = DEPTHS,
        input_shape: tuple[int, int, int] = (299, 299, 3),
        num_classes: int = 1000,
        include_top: bool = True,
        pooling: str | None = None,
        classifier_activation: str | Callable | None = "softmax",
        features_only: bool = False,
        name: str = "inception_resnet_v2",
        **kwargs,
    ):
        if (
            not isinstance(depths, (tuple, list))
            or len(depths) != 3
            or any(
                isinstance(d, bool) or not isinstance(d, int) for d in depths
            )
            or min(depths) < 1
            or depths[2] < 2
        ):
            raise ValueError(
                "depths must be 3 positive ints, the last at least 2. "
                f"Received: {depths=}"
            )
        head = ImageHead(
            "InceptionResNetV2",
            input_shape=input_shape,
            num_classes=num_classes,
            include_top=include_top,
            pooling=pooling,
            classifier_activation=classifier_activation,
            features_only=features_only,
            min_input_size=75,
        )
        inputs = head.inputs()
        x, stages = inception_stem(inputs)
        x = kb.layers.InceptionA(64, filters_1x1=96, name="mixed_5b")(x)
        stride = 8
        for (block_type, scale, reduction), repeats in zip(
            GROUPS, depths, strict=True
        ):
            for index in range(1, repeats + 1):
                last = reduction is None and index == repeats
                x = kb.layers.InceptionResNetBlock(
                    block_type,
                    scale=1.0 if last else scale,
                    activation=None if last else "relu",
                    name=f"{block_type}_{index}",
                )(x)
            if reduction is not None:
                stages.append(Stage(f"{block_type}_{repeats}", x, stride))
                x = _reduction(reduction)(x)
                stride *= 2
        x = kb.layers.ConvBN(1536, 1, name="conv_7b")(x)
        stages.append(Stage("conv_7b", x, stride))
        outputs = head.outputs(stages)
        self._finish(head, inputs, outputs, name, kwargs)


# Two blocks of the last group keep its unscaled last block and a scaled
# one in the suite; the full depths are checked by the golden and the
# porting tests.
# keras.applications names conv_7b and the blocks' projections
# ("block35_1/conv" is "block35_1_conv"), not the other conv-bn units.
_KERAS = KerasTwin(
    layers=(
        (r"^conv_7b/conv$", "conv_7b"),
        (r"^conv_7b/bn$", "conv_7b_bn"),
        (r"^(block\d+_\d+)/conv$", r"\1_conv"),
        *CONV_BN_UNITS,
    )
)


@register_model(
    pretrained_cfg=PretrainedCfg("InceptionResNetV2", input_size=(299, 299, 3)),
    keras_twin=_KERAS.named("inception_resnet_v2"),
    test_overrides={
        "input_shape": (75, 75, 3),
        "num_classes": 5,
        "depths": (1, 1, 2),
    },
)
def inception_resnet_v2(**overrides) -> InceptionResNetV2:
    """Inception-ResNet-v2 for 299x299x3 images, 1000 classes."""
    return InceptionResNetV2(**overrides)
