"""DenseNet (Huang et al., 2017, "Densely Connected Convolutional
Networks"): the book's DenseNet (section "Densely Connected Networks")
and keras.applications' DenseNet-121/169/201, whose weights port with
`zoo.from_keras_applications`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras

import kerasblocks as kb
from kerasblocks._validation import positive_int
from zoo._image import ImageHead, ImageModel, Stage
from zoo._keras_twin import KerasTwin
from zoo._registry import register_model
from zoo.pretrained import PretrainedCfg

# Conv blocks per dense block, by depth (keras.applications' table).
DENSENET_BLOCKS = {
    121: (6, 12, 24, 16),
    169: (6, 12, 32, 32),
    201: (6, 12, 48, 32),
}
LAYOUTS = ("book", "applications")
# keras.applications' batch-norm epsilon (the original Torch models').
_APPLICATIONS_EPSILON = 1.001e-5
_KERAS_EPSILON = 1e-3


@kb.register(package="zoo")
class DenseNet(ImageModel):
    """DenseNet: a stem, dense blocks joined by transitions, BN-ReLU.

    The stem is a 7x7/2 convolution of `stem_filters`, batch norm, ReLU
    and a 3x3/2 max pooling. Dense block `i` adds `blocks[i] *
    growth_rate` channels; each transition multiplies the channels by
    `reduction` and halves the resolution. Batch norm and ReLU finish
    the features.

    Layer names are keras.applications': `conv1_conv`, `conv1_bn`,
    `pool1`, dense blocks `conv2`..`conv5`, transitions `pool2`..`pool4`,
    then `bn`, `relu`, `avg_pool`, `predictions`.

    Args:
        blocks: conv blocks in each dense block.
        growth_rate: channels each conv block adds.
        stem_filters: channels of the stem convolution.
        reduction: channel factor of each transition (the book halves).
        layout: "book" (convolutions with bias, Keras's default
            batch-norm epsilon, "same" padding in the stem, no
            bottleneck) or "applications" (keras.applications'
            DenseNet-BC: 1x1 bottlenecks, no bias, epsilon 1.001e-5,
            explicit zero padding in the stem).
        input_shape, num_classes, include_top, pooling,
            classifier_activation: as in keras.applications.
        features_only: output the stem's and each dense block's
            feature maps (strides 2, 4, 8, 16, 32), the last one after
            the final batch norm and ReLU.

    Example:

    >>> from zoo.densenet import DenseNet
    >>> model = DenseNet((2, 2), growth_rate=8, input_shape=(32, 32, 1))
    >>> model.get_layer("conv3").output.shape
    (None, 4, 4, 56)
    """

    def __init__(
        self,
        blocks: Sequence[int] = DENSENET_BLOCKS[121],
        *,
        growth_rate: int = 32,
        stem_filters: int = 64,
        reduction: float = 0.5,
        layout: str = "applications",
        input_shape: tuple[int, int, int] = (224, 224, 3),
        num_classes: int = 1000,
        include_top: bool = True,
        pooling: str | None = None,
        classifier_activation: str | Callable | None = "softmax",
        features_only: bool = False,
        name: str = "densenet",
        **kwargs,
    ):
        _check_arguments(blocks, growth_rate, stem_filters, reduction, layout)
        head = ImageHead(
            "DenseNet",
            input_shape=input_shape,
            num_classes=num_classes,
            include_top=include_top,
            pooling=pooling,
            classifier_activation=classifier_activation,
            features_only=features_only,
            # Stride 4 in the stem, then 2 per transition.
            min_input_size=2 ** (len(blocks) + 1),
        )
        book = layout == "book"
        epsilon = _KERAS_EPSILON if book else _APPLICATIONS_EPSILON
        inputs = head.inputs()
        x = _stem(inputs, stem_filters, book, epsilon)
        stages = [Stage("conv1", x, 2)]
        if not book:
            x = keras.layers.ZeroPadding2D(1, name="pool1_pad")(x)
        x = keras.layers.MaxPooling2D(
            3, strides=2, padding="same" if book else "valid", name="pool1"
        )(x)
        x, stride = _dense_stages(
            x, blocks, growth_rate, reduction, book, epsilon, stages
        )
        x = keras.layers.BatchNormalization(epsilon=epsilon, name="bn")(x)
        x = keras.layers.Activation("relu", name="relu")(x)
        stages.append(Stage(f"conv{len(blocks) + 1}", x, stride))
        outputs = head.outputs(stages)
        self._finish(head, inputs, outputs, name, kwargs)


def _check_arguments(blocks, growth_rate, stem_filters, reduction, layout):
    if not isinstance(blocks, (list, tuple)) or not blocks:
        raise ValueError(
            f"blocks must be a non-empty sequence of positive ints. "
            f"Received: {blocks=}"
        )
    for count in blocks:
        positive_int("blocks entries", count)
    positive_int("growth_rate", growth_rate)
    positive_int("stem_filters", stem_filters)
    if isinstance(reduction, bool) or not 0 < reduction <= 1:
        raise ValueError(f"reduction must be in (0, 1]. Received: {reduction=}")
    if layout not in LAYOUTS:
        raise ValueError(
            f"layout must be one of {LAYOUTS}. Received: {layout=}"
        )


def _stem(x, stem_filters, book, epsilon):
    """The 7x7/2 convolution, batch norm and ReLU (stage "conv1")."""
    if not book:
        x = keras.layers.ZeroPadding2D(3, name="conv1_pad")(x)
    x = keras.layers.Conv2D(
        stem_filters,
        7,
        strides=2,
        padding="same" if book else "valid",
        use_bias=book,
        name="conv1_conv",
    )(x)
    x = keras.layers.BatchNormalization(epsilon=epsilon, name="conv1_bn")(x)
    return keras.layers.Activation("relu", name="conv1_relu")(x)


def _dense_stages(x, blocks, growth_rate, reduction, book, epsilon, stages):
    """The dense blocks, each but the first after a transition, on the
    stem's pooled output (stride 4); appends every block but the last
    to `stages` and returns the last one's output and stride."""
    stride = 4
    for index, count in enumerate(blocks):
        if index:
            x = kb.layers.TransitionBlock(
                int(x.shape[-1] * reduction),
                use_bias=book,
                epsilon=epsilon,
                name=f"pool{index + 1}",
            )(x)
            stride *= 2
        x = kb.layers.DenseBlock(
            count,
            growth_rate,
            bottleneck=not book,
            use_bias=book,
            epsilon=epsilon,
            name=f"conv{index + 2}",
        )(x)
        if index < len(blocks) - 1:
            stages.append(Stage(f"conv{index + 2}", x, stride))
    return x, stride


# 64x64 leaves a 2x2 final feature map: at 1x1, the final batch norm of a
# batch of 2 in training mode outputs about +-1 whatever its input, so
# every earlier weight gets an almost-zero gradient.
_SMALL = {"input_shape": (64, 64, 3)}
# Each channel of conv1_bn reaches only per-channel batch norms (through
# ReLU, max pooling and concatenations, which commute with a positive
# scale), so in training mode the loss does not depend on conv1_bn's
# gamma at beta=0: its gradient is zero but for the epsilon's effect.
_NO_GRADIENT = ("conv1_bn/gamma",)


@register_model(
    test_overrides={"input_shape": (64, 64, 1)},
    test_allow_no_gradient=_NO_GRADIENT,
)
def densenet(**overrides) -> DenseNet:
    """The book's DenseNet: 4 blocks of 4 convs, growth 32, 96x96x1."""
    return DenseNet(
        **{
            "blocks": (4, 4, 4, 4),
            "layout": "book",
            "input_shape": (96, 96, 1),
            "num_classes": 10,
            "name": "densenet",
            **overrides,
        }
    )


def _applications(depth: int, overrides) -> DenseNet:
    return DenseNet(
        **{
            "blocks": DENSENET_BLOCKS[depth],
            "name": f"densenet{depth}",
            **overrides,
        }
    )


# keras.applications names "conv2/block1_0_bn" "conv2_block1_0_bn".
_KERAS = KerasTwin()


@register_model(
    pretrained_cfg=PretrainedCfg("DenseNet121", preprocessing="torch"),
    keras_twin=_KERAS.named("densenet121"),
    test_overrides=_SMALL,
    test_allow_no_gradient=_NO_GRADIENT,
)
def densenet121(**overrides) -> DenseNet:
    """keras.applications' DenseNet-121 (8,062,504 parameters)."""
    return _applications(121, overrides)


@register_model(
    pretrained_cfg=PretrainedCfg("DenseNet169", preprocessing="torch"),
    keras_twin=_KERAS.named("densenet169"),
    test_overrides=_SMALL,
    test_allow_no_gradient=_NO_GRADIENT,
    test_covered_by="densenet121",
)
def densenet169(**overrides) -> DenseNet:
    """keras.applications' DenseNet-169 (14,307,880 parameters)."""
    return _applications(169, overrides)


@register_model(
    pretrained_cfg=PretrainedCfg("DenseNet201", preprocessing="torch"),
    keras_twin=_KERAS.named("densenet201"),
    test_overrides=_SMALL,
    test_allow_no_gradient=_NO_GRADIENT,
    test_covered_by="densenet121",
)
def densenet201(**overrides) -> DenseNet:
    """keras.applications' DenseNet-201 (20,242,984 parameters)."""
    return _applications(201, overrides)
