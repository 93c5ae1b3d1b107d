"""RegNet (Radosavovic et al., 2020, "Designing Network Design Spaces"):
the AnyNet design space of the book's section "Designing Convolution
Network Architectures", its `RegNetX32` instance, and the paper's
RegNetX and RegNetY models of 200, 400 and 600 MFLOPs.

Every stage starts with a strided block with a projection shortcut, as
in the book and the paper. The blocks are `kerasblocks.layers.
ResNeXtBlock`s, which (like the book's) give every convolution a bias
and use Keras's batch-norm defaults; the paper's convolutions have no
bias, so the paper-sized models have the paper's parameters plus those
biases (e.g. 10,424 more for RegNetX-200MF: 2,695,216 trainable weights
instead of 2,684,792).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras

import kerasblocks as kb
from kerasblocks._validation import positive_int
from kerasblocks.layers.regularization import linear_drop_path_rates
from zoo._image import ImageHead, ImageModel, Stage
from zoo._registry import register_model

# name: (depths, widths, group width, squeeze-excitation ratio), with a
# 32-channel stem and bottleneck ratio 1 (the paper's Table 3 models and
# the book's RegNetX32).
REGNET_SPECS = {
    "regnetx32": ((4, 6), (32, 80), 16, 0.0),
    "regnetx_002": ((1, 1, 4, 7), (24, 56, 152, 368), 8, 0.0),
    "regnetx_004": ((1, 2, 7, 12), (32, 64, 160, 384), 16, 0.0),
    "regnetx_006": ((1, 3, 5, 7), (48, 96, 240, 528), 24, 0.0),
    "regnety_002": ((1, 1, 4, 7), (24, 56, 152, 368), 8, 0.25),
    "regnety_004": ((1, 3, 6, 6), (48, 104, 208, 440), 8, 0.25),
    "regnety_006": ((1, 3, 7, 4), (48, 112, 256, 608), 16, 0.25),
}


def uniform_stages(
    depths: Sequence[int],
    widths: Sequence[int],
    group_width: int,
    bottleneck_ratio: float = 1.0,
    se_ratio: float = 0.0,
) -> list[list]:
    """RegNet's stages: one group width, bottleneck ratio and SE ratio.

    Returns:
        `[[depth, width, group_width, bottleneck_ratio, se_ratio], ...]`,
        the `stages` argument of `RegNet`.

    Example:

    >>> from zoo.regnet import uniform_stages
    >>> uniform_stages((4, 6), (32, 80), 16)
    [[4, 32, 16, 1.0, 0.0], [6, 80, 16, 1.0, 0.0]]
    """
    if len(depths) != len(widths):
        raise ValueError(
            "depths and widths must have one entry per stage. Received: "
            f"{depths=}, {widths=}"
        )
    return [
        [depth, width, group_width, float(bottleneck_ratio), float(se_ratio)]
        for depth, width in zip(depths, widths, strict=True)
    ]


def _check_stage(index, stage):
    valid = isinstance(stage, (list, tuple)) and len(stage) == 5
    if valid:
        depth, width, group_width, _, _ = stage
        valid = all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 1
            for v in (depth, width, group_width)
        )
    if not valid:
        raise ValueError(
            "Each stage must be (depth, width, group_width, "
            "bottleneck_ratio, se_ratio) with positive int depth, width "
            f"and group_width. Received: stages[{index}]={stage!r}"
        )


@kb.register(package="zoo")
class RegNet(ImageModel):
    """An AnyNet: a stem, stages of ResNeXt blocks, global pooling.

    The stem is a 3x3/2 convolution of `stem_filters`, batch norm and
    ReLU. Stage `i` is `depth` `ResNeXtBlock(width, group_width,
    bottleneck_ratio, se_ratio=se_ratio)`s, the first with stride 2 and a
    projection shortcut.

    Layer names: `stem_conv`, `stem_bn`, `stem_relu`, then
    `stage{i}_block{j}` (from 1), `avg_pool`, `predictions`.

    Args:
        stages: one `(depth, width, group_width, bottleneck_ratio,
            se_ratio)` per stage (see `uniform_stages`); the default is
            the book's RegNetX32.
        stem_filters: channels of the stem convolution.
        use_bias: convolutions with biases (the book's; the paper's have
            none).
        bn_epsilon, bn_momentum: batch-norm settings (the paper's are
            1e-5 and 0.9).
        drop_path_rate: stochastic depth of the last block; block `k` of
            `n` drops its branch with probability `drop_path_rate * k /
            (n - 1)` in training (timm's rule). 0 adds no layer.
        zero_init_last: start each block's `bn3` scale at zero, so that
            every block starts as its shortcut.
        input_shape, num_classes, include_top, pooling,
            classifier_activation: as in keras.applications.
        features_only: output the stem's and each stage's feature maps.

    Example:

    >>> from zoo.regnet import RegNet, uniform_stages
    >>> model = RegNet(uniform_stages((1, 2), (16, 24), 8),
    ...                input_shape=(32, 32, 3), num_classes=5)
    >>> model.get_layer("stage2_block2").output.shape
    (None, 4, 4, 24)
    """

    def __init__(
        self,
        stages: Sequence[Sequence] = (
            (4, 32, 16, 1.0, 0.0),
            (6, 80, 16, 1.0, 0.0),
        ),
        *,
        stem_filters: int = 32,
        use_bias: bool = True,
        bn_epsilon: float = 1e-3,
        bn_momentum: float = 0.99,
        drop_path_rate: float = 0.0,
        zero_init_last: bool = False,
        input_shape: tuple[int, int, int] = (224, 224, 3),
        num_classes: int = 1000,
        include_top: bool = True,
        pooling: str | None = None,
        classifier_activation: str | Callable | None = "softmax",
        features_only: bool = False,
        name: str = "regnet",
        **kwargs,
    ):
        if not isinstance(stages, (list, tuple)) or not stages:
            raise ValueError(
                f"stages must be a non-empty sequence. Received: {stages=}"
            )
        for index, stage in enumerate(stages):
            _check_stage(index, stage)
        positive_int("stem_filters", stem_filters)
        head = ImageHead(
            "RegNet",
            input_shape=input_shape,
            num_classes=num_classes,
            include_top=include_top,
            pooling=pooling,
            classifier_activation=classifier_activation,
            features_only=features_only,
            # Stride 2 in the stem and in each stage.
            min_input_size=2 ** (len(stages) + 1),
        )
        batch_norm = {"epsilon": bn_epsilon, "momentum": bn_momentum}
        inputs = head.inputs()
        x = keras.layers.Conv2D(
            stem_filters,
            3,
            strides=2,
            padding="same",
            use_bias=use_bias,
            name="stem_conv",
        )(inputs)
        x = keras.layers.BatchNormalization(**batch_norm, name="stem_bn")(x)
        x = keras.layers.Activation("relu", name="stem_relu")(x)
        feature_maps = [Stage("stem", x, 2)]
        feature_maps += _stages(
            x,
            stages,
            linear_drop_path_rates(drop_path_rate, sum(s[0] for s in stages)),
            use_bias=use_bias,
            zero_init_last=zero_init_last,
            **batch_norm,
        )
        outputs = head.outputs(feature_maps)
        self._finish(head, inputs, outputs, name, kwargs)


def _stages(x, stages, drop_path_rates, **block_options):
    """The stages of ResNeXt blocks on the stem's output `x` (stride
    2), each starting with a stride-2 projection block; the blocks take
    `block_options` and the next of `drop_path_rates`."""
    rates = iter(drop_path_rates)
    feature_maps, stride = [], 2
    for i, stage in enumerate(stages, start=1):
        depth, width, group_width, bottleneck_ratio, se_ratio = stage
        stride *= 2
        for j in range(1, depth + 1):
            x = kb.layers.ResNeXtBlock(
                width,
                group_width,
                bottleneck_ratio,
                strides=2 if j == 1 else 1,
                use_projection=j == 1,
                se_ratio=se_ratio,
                drop_path_rate=next(rates),
                name=f"stage{i}_block{j}",
                **block_options,
            )(x)
        feature_maps.append(Stage(f"stage{i}", x, stride))
    return feature_maps


def _regnet(name: str, overrides) -> RegNet:
    depths, widths, group_width, se_ratio = REGNET_SPECS[name]
    return RegNet(
        **{
            "stages": uniform_stages(
                depths, widths, group_width, se_ratio=se_ratio
            ),
            "name": name,
            # The paper's (pycls's) bias-free convolutions and batch-norm
            # settings, so the counts are the published ones.
            "use_bias": False,
            "bn_epsilon": 1e-5,
            "bn_momentum": 0.9,
            **overrides,
        }
    )


# 64x64 leaves a 2x2 final feature map: at 1x1, batch norm of a batch of 2
# in training mode outputs about +-1 whatever its input, and the gradients
# reaching earlier weights nearly vanish.
_SMALL = {"input_shape": (64, 64, 3)}


@register_model(test_overrides={"input_shape": (32, 32, 1)})
def regnetx32(**overrides) -> RegNet:
    """The book's RegNetX32: depths (4, 6), widths (32, 80), 96x96x1."""
    return _regnet(
        "regnetx32",
        {
            "input_shape": (96, 96, 1),
            "num_classes": 10,
            # The book's convolutions have biases and Keras's BN defaults.
            "use_bias": True,
            "bn_epsilon": 1e-3,
            "bn_momentum": 0.99,
            **overrides,
        },
    )


@register_model(test_overrides=_SMALL)
def regnetx_002(**overrides) -> RegNet:
    """RegNetX-200MF (the paper's 2.7M parameters)."""
    return _regnet("regnetx_002", overrides)


@register_model(test_overrides=_SMALL, test_covered_by="regnetx_002")
def regnetx_004(**overrides) -> RegNet:
    """RegNetX-400MF (the paper's 5.2M parameters)."""
    return _regnet("regnetx_004", overrides)


@register_model(test_overrides=_SMALL, test_covered_by="regnetx_002")
def regnetx_006(**overrides) -> RegNet:
    """RegNetX-600MF (the paper's 6.2M parameters)."""
    return _regnet("regnetx_006", overrides)


@register_model(test_overrides=_SMALL)
def regnety_002(**overrides) -> RegNet:
    """RegNetY-200MF (the paper's 3.2M parameters)."""
    return _regnet("regnety_002", overrides)


@register_model(test_overrides=_SMALL, test_covered_by="regnety_002")
def regnety_004(**overrides) -> RegNet:
    """RegNetY-400MF (the paper's 4.3M parameters)."""
    return _regnet("regnety_004", overrides)


@register_model(test_overrides=_SMALL, test_covered_by="regnety_002")
def regnety_006(**overrides) -> RegNet:
    """RegNetY-600MF (the paper's 6.1M parameters)."""
    return _regnet("regnety_006", overrides)
