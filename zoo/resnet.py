"""ResNet (He et al., 2016, "Deep Residual Learning for Image
Recognition"; v2: "Identity Mappings in Deep Residual Networks") and
ResNeXt (Xie et al., 2017, "Aggregated Residual Transformations for Deep
Neural Networks"), as in the book's section "Residual Networks (ResNet)
and ResNeXt" and as keras.applications' ImageNet ResNets.

- `resnet18`, `resnet34`: the book's layout (96x96x1 inputs, 10
  classes): a 7x7/2 "same" convolution, batch norm, ReLU and a 3x3/2
  max pool, then four stages of `BasicBlock`s.
- `resnext`: the same layout with `ResNeXtBlock`s (group width 16,
  bottleneck ratio 1, the book's `ResNeXtBlock(32, 16, 1)` settings).
- `resnet50`, `resnet101`, `resnet152` and their `...v2` variants: the
  keras.applications models, layer for layer, so that
  `zoo.from_keras_applications` copies their weights one to one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras

import kerasblocks as kb
from kerasblocks.layers.regularization import linear_drop_path_rates
from kerasblocks.layers.residual import IMAGENET_EPSILON
from zoo._image import ImageHead, ImageModel, Stage
from zoo._keras_twin import KerasTwin
from zoo._registry import register_model
from zoo.pretrained import PretrainedCfg

# Depth -> (block type, blocks per stage), as in the paper's Table 1.
RESNET_SPECS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
BLOCK_TYPES = ("basic", "bottleneck", "resnext")
STEMS = ("book", "imagenet")
_STEM_FILTERS = 64
# keras.applications' smallest input: its five stride-2 steps (stem
# convolution and pool, three stages) leave a 1x1 feature map.
_MIN_INPUT_SIZE = 32


def _check_depths(depths, widths):
    for name, values in (("depths", depths), ("widths", widths)):
        if not isinstance(values, (list, tuple)) or not values:
            raise ValueError(
                f"{name} must be a non-empty sequence of positive ints. "
                f"Received: {name}={values!r}"
            )
        for value in values:
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or value < 1
            ):
                raise ValueError(
                    f"{name} must hold positive ints. Received: "
                    f"{name}={values!r}"
                )
    if len(depths) != len(widths):
        raise ValueError(
            "depths and widths need one entry per stage. Received: "
            f"depths={depths!r}, widths={widths!r}"
        )


@kb.register(package="zoo")
class ResNet(ImageModel):
    """A ResNet or ResNeXt: a stem, stages of residual blocks, a head.

    Stage `i` (layers `conv{i+2}_block{j+1}`) stacks `depths[i]` blocks
    of `widths[i]` filters. Post-activation stages (v1, and the book's)
    downsample in their first block (except the first stage); the
    pre-activation stages of keras.applications' ResNetV2 downsample in
    their last block (except the last stage), start with a projection
    block, and are followed by `post_bn` and `post_relu`. A block gets a
    1x1 projection shortcut where its input and output shapes differ.

    The "imagenet" stem is keras.applications': zero padding 3, a 7x7/2
    convolution (`conv1_conv`), batch norm and ReLU (not with `preact`),
    zero padding 1 and a 3x3/2 max pool (`pool1_pool`). The "book" stem
    pads "same" instead, and uses Keras's default batch norm.

    Args:
        depth: a row of `RESNET_SPECS` (18, 34, 50, 101, 152) giving the
            block type and blocks per stage; None to give both.
        block_type: "basic" (`BasicBlock`), "bottleneck"
            (`BottleneckBlock`, 4x expansion) or "resnext"
            (`ResNeXtBlock`); overrides the depth's.
        depths: blocks per stage; overrides the depth's.
        widths: filters of each stage's blocks (bottleneck blocks output
            four times as many).
        stem: "imagenet" or "book".
        preact: pre-activation (v2) bottleneck blocks.
        group_width: the ResNeXt blocks' channels per group.
        bottleneck_ratio: the ResNeXt blocks' bottleneck ratio.
        drop_path_rate: stochastic depth of the last block; block `k` of
            `n` drops its branch with probability `drop_path_rate * k /
            (n - 1)` in training (timm's rule). 0 adds no layer.
        zero_init_last: start each block's last batch-norm scale (v2:
            its last convolution) at zero, so that every block starts as
            its shortcut.
        input_shape, num_classes, include_top, pooling,
            classifier_activation: as in keras.applications.
        features_only: output the four stages' feature maps.

    Example:

    >>> from zoo.resnet import ResNet
    >>> model = ResNet(18, stem="book", input_shape=(96, 96, 1),
    ...                num_classes=10)
    >>> model.output_shape
    (None, 10)
    """

    def __init__(
        self,
        depth: int | None = 50,
        *,
        block_type: str | None = None,
        depths: Sequence[int] | None = None,
        widths: Sequence[int] = (64, 128, 256, 512),
        stem: str = "imagenet",
        preact: bool = False,
        group_width: int = 16,
        bottleneck_ratio: float = 1.0,
        drop_path_rate: float = 0.0,
        zero_init_last: bool = False,
        input_shape: tuple[int, int, int] = (224, 224, 3),
        num_classes: int = 1000,
        include_top: bool = True,
        pooling: str | None = None,
        classifier_activation: str | Callable | None = "softmax",
        features_only: bool = False,
        name: str = "resnet",
        **kwargs,
    ):
        block_type, depths = _resolve_blocks(
            depth, block_type, depths, widths, stem, preact
        )
        head = ImageHead(
            "ResNet",
            input_shape=input_shape,
            num_classes=num_classes,
            include_top=include_top,
            pooling=pooling,
            classifier_activation=classifier_activation,
            features_only=features_only,
            min_input_size=_MIN_INPUT_SIZE,
        )
        make_block = _block_maker(
            block_type,
            preact=preact,
            group_width=group_width,
            bottleneck_ratio=bottleneck_ratio,
            zero_init_last=zero_init_last,
            drop_path_rates=linear_drop_path_rates(drop_path_rate, sum(depths)),
        )
        inputs = head.inputs()
        x = _stem(inputs, stem, preact)
        stages = _stages(x, depths, widths, block_type, preact, make_block)
        outputs = head.outputs(stages)
        self._finish(head, inputs, outputs, name, kwargs)


def _resolve_blocks(depth, block_type, depths, widths, stem, preact):
    """The block type and blocks per stage, from `depth`'s row of
    `RESNET_SPECS` and what the caller gave; checks the architecture's
    arguments."""
    if depth is not None and depth not in RESNET_SPECS:
        raise ValueError(
            f"depth must be one of {sorted(RESNET_SPECS)} or None. "
            f"Received: {depth=}"
        )
    if depth is None and (block_type is None or depths is None):
        raise ValueError(
            "Without a depth, give block_type and depths. Received: "
            f"{block_type=}, {depths=}"
        )
    spec_type, spec_depths = RESNET_SPECS.get(depth, (None, None))
    block_type = block_type or spec_type
    depths = tuple(spec_depths if depths is None else depths)
    if block_type not in BLOCK_TYPES:
        raise ValueError(
            f"block_type must be one of {BLOCK_TYPES}. Received: {block_type=}"
        )
    _check_depths(depths, widths)
    if stem not in STEMS:
        raise ValueError(f"stem must be one of {STEMS}. Received: {stem=}")
    if not isinstance(preact, bool):
        raise ValueError(f"preact must be a bool. Received: {preact=}")
    if preact and block_type != "bottleneck":
        raise ValueError(
            "preact (ResNetV2) needs bottleneck blocks. Received: "
            f"{block_type=}"
        )
    return block_type, depths


def _block_maker(
    block_type,
    *,
    preact,
    group_width,
    bottleneck_ratio,
    zero_init_last,
    drop_path_rates,
):
    """`make_block(width, strides, projection, name)`: the next block of
    the network, with the next of `drop_path_rates`."""
    rates = iter(drop_path_rates)

    def make_block(width, strides, projection, block_name):
        options = {
            "strides": strides,
            "use_projection": projection,
            "drop_path_rate": next(rates),
            "zero_init_last": zero_init_last,
            "name": block_name,
        }
        if block_type == "basic":
            return kb.layers.BasicBlock(width, **options)
        if block_type == "resnext":
            return kb.layers.ResNeXtBlock(
                width, group_width, bottleneck_ratio, **options
            )
        return kb.layers.BottleneckBlock(width, preact=preact, **options)

    return make_block


def _stages(x, depths, widths, block_type, preact, make_block):
    """The residual stages on the stem's output `x` (stride 4)."""
    stride, stages = 4, []
    last_stage = len(depths) - 1
    for i, (count, width) in enumerate(zip(depths, widths, strict=True)):
        out_channels = 4 * width if block_type == "bottleneck" else width
        for j in range(count):
            if preact:
                # keras.applications' ResNetV2: the first block
                # projects, the last one downsamples.
                down = j == count - 1 and i != last_stage
                projection = j == 0
            else:
                down = j == 0 and i > 0
                projection = down or x.shape[-1] != out_channels
            x = make_block(
                width,
                2 if down else 1,
                projection,
                f"conv{i + 2}_block{j + 1}",
            )(x)
            stride *= 2 if down else 1
        if preact and i == last_stage:
            x = keras.layers.BatchNormalization(
                epsilon=IMAGENET_EPSILON, name="post_bn"
            )(x)
            x = keras.layers.Activation("relu", name="post_relu")(x)
        stages.append(Stage(f"conv{i + 2}", x, stride))
    return stages


def _stem(x, stem, preact):
    if stem == "book":
        x = keras.layers.Conv2D(
            _STEM_FILTERS, 7, strides=2, padding="same", name="conv1_conv"
        )(x)
        x = keras.layers.BatchNormalization(name="conv1_bn")(x)
        x = keras.layers.Activation("relu", name="conv1_relu")(x)
        return keras.layers.MaxPooling2D(
            3, strides=2, padding="same", name="pool1_pool"
        )(x)
    x = keras.layers.ZeroPadding2D(3, name="conv1_pad")(x)
    x = keras.layers.Conv2D(_STEM_FILTERS, 7, strides=2, name="conv1_conv")(x)
    if not preact:
        x = keras.layers.BatchNormalization(
            epsilon=IMAGENET_EPSILON, name="conv1_bn"
        )(x)
        x = keras.layers.Activation("relu", name="conv1_relu")(x)
    x = keras.layers.ZeroPadding2D(1, name="pool1_pad")(x)
    return keras.layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)


_BOOK = {"stem": "book", "input_shape": (96, 96, 1), "num_classes": 10}
_SMALL_BOOK = {"input_shape": (32, 32, 1)}
_SMALL = {"input_shape": (32, 32, 3)}


# Zoo block sublayers -> keras.applications' names
# ("conv2_block1/conv1" is "conv2_block1_1_conv").
_KERAS = KerasTwin(
    layers=(
        (r"/shortcut_(conv|bn)$", r"_0_\1"),
        (r"/(conv|bn)(\d)$", r"_\2_\1"),
    )
)


@register_model(test_overrides=_SMALL_BOOK)
def resnet18(**overrides) -> ResNet:
    """ResNet-18 as in the book: 96x96x1 images, 10 classes."""
    return ResNet(**{"depth": 18, **_BOOK, "name": "resnet18", **overrides})


@register_model(test_overrides=_SMALL_BOOK, test_covered_by="resnet18")
def resnet34(**overrides) -> ResNet:
    """ResNet-34 in the book's layout: 96x96x1 images, 10 classes."""
    return ResNet(**{"depth": 34, **_BOOK, "name": "resnet34", **overrides})


@register_model(test_overrides=_SMALL_BOOK)
def resnext(**overrides) -> ResNet:
    """ResNeXt in the book's ResNet-18 layout (group width 16,
    bottleneck ratio 1): 96x96x1 images, 10 classes."""
    return ResNet(
        **{
            "depth": 18,
            "block_type": "resnext",
            "group_width": 16,
            "bottleneck_ratio": 1.0,
            **_BOOK,
            "name": "resnext",
            **overrides,
        }
    )


def _imagenet(depth, preact, name, overrides):
    return ResNet(
        **{"depth": depth, "preact": preact, "name": name, **overrides}
    )


@register_model(
    pretrained_cfg=PretrainedCfg("ResNet50", preprocessing="caffe"),
    test_overrides=_SMALL,
    keras_twin=_KERAS.named("resnet50"),
)
def resnet50(**overrides) -> ResNet:
    """ResNet-50 (v1), as keras.applications.ResNet50."""
    return _imagenet(50, False, "resnet50", overrides)


@register_model(
    pretrained_cfg=PretrainedCfg("ResNet101", preprocessing="caffe"),
    test_overrides=_SMALL,
    test_covered_by="resnet50",
    keras_twin=_KERAS.named("resnet101"),
)
def resnet101(**overrides) -> ResNet:
    """ResNet-101 (v1), as keras.applications.ResNet101."""
    return _imagenet(101, False, "resnet101", overrides)


@register_model(
    pretrained_cfg=PretrainedCfg("ResNet152", preprocessing="caffe"),
    test_overrides=_SMALL,
    test_covered_by="resnet50",
    keras_twin=_KERAS.named("resnet152"),
)
def resnet152(**overrides) -> ResNet:
    """ResNet-152 (v1), as keras.applications.ResNet152."""
    return _imagenet(152, False, "resnet152", overrides)


@register_model(
    pretrained_cfg=PretrainedCfg("ResNet50V2"),
    test_overrides=_SMALL,
    keras_twin=_KERAS.named("resnet50v2"),
)
def resnet50v2(**overrides) -> ResNet:
    """ResNet-50 v2 (pre-activation), as keras.applications.ResNet50V2."""
    return _imagenet(50, True, "resnet50v2", overrides)


@register_model(
    pretrained_cfg=PretrainedCfg("ResNet101V2"),
    test_overrides=_SMALL,
    test_covered_by="resnet50v2",
    keras_twin=_KERAS.named("resnet101v2"),
)
def resnet101v2(**overrides) -> ResNet:
    """ResNet-101 v2 (pre-activation), as keras.applications.ResNet101V2."""
    return _imagenet(101, True, "resnet101v2", overrides)


@register_model(
    pretrained_cfg=PretrainedCfg("ResNet152V2"),
    test_overrides=_SMALL,
    test_covered_by="resnet50v2",
    keras_twin=_KERAS.named("resnet152v2"),
)
def resnet152v2(**overrides) -> ResNet:
    """ResNet-152 v2 (pre-activation), as keras.applications.ResNet152V2."""
    return _imagenet(152, True, "resnet152v2", overrides)
