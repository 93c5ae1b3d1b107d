"""Inception-v3 (Szegedy et al., 2016, "Rethinking the Inception
Architecture for Computer Vision"), laid out exactly as
keras.applications.InceptionV3 builds it, so that its weights port one
to one.

A stem of five `ConvBN` units and two max pools (299 -> 35), three
35x35 `InceptionA` modules, the `InceptionB` reduction, four 17x17
`InceptionC` modules with factorized 7x7 convolutions, the `InceptionD`
reduction and two 8x8 `InceptionE` modules, then the head. The stem is
shared with Inception-ResNet-v2 (`zoo.inception_resnet_v2`).
"""

from __future__ import annotations

from collections.abc import Callable

import keras

import kerasblocks as kb
from zoo._image import ImageHead, ImageModel, Stage
from zoo._keras_twin import KerasTwin
from zoo._registry import register_model
from zoo.pretrained import PretrainedCfg

# (name, block, arguments) of the modules, in order (the paper's Table 1
# with keras.applications' names).
MODULES = (
    ("mixed0", "InceptionA", {"pool_filters": 32}),
    ("mixed1", "InceptionA", {"pool_filters": 64}),
    ("mixed2", "InceptionA", {"pool_filters": 64}),
    ("mixed3", "InceptionB", {}),
    ("mixed4", "InceptionC", {"filters_7x7": 128}),
    ("mixed5", "InceptionC", {"filters_7x7": 160}),
    ("mixed6", "InceptionC", {"filters_7x7": 160}),
    ("mixed7", "InceptionC", {"filters_7x7": 192}),
    ("mixed8", "InceptionD", {}),
    ("mixed9", "InceptionE", {}),
    ("mixed10", "InceptionE", {}),
)
# The feature maps `features_only` gives, with their strides.
FEATURES = {"mixed2": 8, "mixed7": 16, "mixed10": 32}
# (filters, kernel size, padding) of the stem's units; a 3x3 max pool of
# stride 2 follows the third and the fifth.
STEM = ((32, 3, "valid"), (32, 3, "valid"), (64, 3, "same"))
STEM_2 = ((80, 1, "valid"), (192, 3, "valid"))


def inception_stem(inputs) -> tuple[keras.KerasTensor, list[Stage]]:
    """Inception-v3's stem (`stem_conv1` ... `stem_conv5`, `stem_pool1`,
    `stem_pool2`): the output and the feature stages at strides 2
    (`stem_conv3`) and 4 (`stem_conv5`)."""
    x, stages = inputs, []
    for index, (filters, kernel_size, padding) in enumerate(STEM + STEM_2):
        if index == len(STEM):
            stages.append(Stage(f"stem_conv{index}", x, 2))
            x = keras.layers.MaxPooling2D(3, strides=2, name="stem_pool1")(x)
        x = kb.layers.ConvBN(
            filters,
            kernel_size,
            strides=2 if index == 0 else 1,
            padding=padding,
            name=f"stem_conv{index + 1}",
        )(x)
    stages.append(Stage(f"stem_conv{len(STEM) + len(STEM_2)}", x, 4))
    x = keras.layers.MaxPooling2D(3, strides=2, name="stem_pool2")(x)
    return x, stages


@kb.register(package="zoo")
class InceptionV3(ImageModel):
    """Inception-v3.

    Layer names: the stem (`stem_conv1` ... `stem_conv5`, each a
    `kerasblocks.layers.ConvBN`, and `stem_pool1`, `stem_pool2`), the
    modules `mixed0` ... `mixed10` (see `MODULES`), then the head
    (`avg_pool`, `predictions`). `features_only` gives `stem_conv3`
    (stride 2), `stem_conv5` (4), `mixed2` (8), `mixed7` (16) and
    `mixed10` (32).

    Args:
        input_shape, num_classes, include_top, pooling,
            classifier_activation: as in keras.applications (height and
            width at least 75).
        features_only: output the feature map of each stride instead.

    Example:

    >>> import zoo
    >>> model = zoo.create_model("inceptionv3", input_shape=(75, 75, 3),
    ...                          num_classes=10)
    >>> model.output_shape, model.get_layer("mixed10").output.shape
    ((None, 10), (None, 1, 1, 2048))
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
        name: str = "inceptionv3",
        **kwargs,
    ):
        head = ImageHead(
            "InceptionV3",
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
        for module, block, arguments in MODULES:
            x = getattr(kb.layers, block)(**arguments, name=module)(x)
            if module in FEATURES:
                stages.append(Stage(module, x, FEATURES[module]))
        outputs = head.outputs(stages)
        self._finish(head, inputs, outputs, name, kwargs)


# keras.applications leaves the conv-bn units unnamed: they pair, in
# order, with the auto-named conv2d and batch_normalization layers.
CONV_BN_UNITS = (
    (r"^.*/conv$", "conv2d#"),
    (r"^.*/bn$", "batch_normalization#"),
)
_KERAS = KerasTwin(layers=CONV_BN_UNITS)


@register_model(
    pretrained_cfg=PretrainedCfg("InceptionV3", input_size=(299, 299, 3)),
    keras_twin=_KERAS.named("inception_v3"),
    test_overrides={"input_shape": (75, 75, 3), "num_classes": 5},
)
def inceptionv3(**overrides) -> InceptionV3:
    """Inception-v3 for 299x299x3 images, 1000 classes."""
    return InceptionV3(**overrides)
