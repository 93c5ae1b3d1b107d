"""NASNet-A (Zoph et al., 2018, "Learning Transferable Architectures for
Scalable Image Recognition"), laid out exactly as keras.applications
builds NASNetMobile and NASNetLarge, so that their weights port one to
one.

A "valid" stride-2 3x3 stem convolution and batch norm, two reduction
cells on the stem, then three stacks of `num_blocks` normal cells with
a reduction cell between stacks; a ReLU and the head. With `filters =
penultimate_filters // 24`, the stacks have `filters`, `filters *
filter_multiplier` and `filters * filter_multiplier ** 2` channels per
operation, the stem cells `filters // filter_multiplier ** 2` and
`filters // filter_multiplier`. The cells are
`kerasblocks.layers.NASNetNormalCell` and `NASNetReductionCell`.
"""

from __future__ import annotations

from collections.abc import Callable

import keras

import kerasblocks as kb
from kerasblocks._validation import positive_int as _positive_int
from kerasblocks.layers.nasnet import adjust_for
from zoo._image import ImageHead, ImageModel, Stage
from zoo._keras_twin import KerasTwin
from zoo._registry import register_model
from zoo.pretrained import PretrainedCfg

# keras.applications' NASNet arguments per variant (NASNet-A "N @ P" is
# num_blocks @ penultimate_filters), and its default input size.
NASNET_SPECS = {
    "mobile": {
        "penultimate_filters": 1056,
        "num_blocks": 4,
        "stem_block_filters": 32,
        "skip_reduction": False,
        "filter_multiplier": 2,
    },
    "large": {
        "penultimate_filters": 4032,
        "num_blocks": 6,
        "stem_block_filters": 96,
        "skip_reduction": True,
        "filter_multiplier": 2,
    },
}
DEFAULT_SIZES = {"mobile": 224, "large": 331}
# keras.applications' batch-norm settings for NASNet.
_BN = {"momentum": 0.9997, "epsilon": 1e-3}


def cell_plan(
    num_blocks: int, filters: int, filter_multiplier: int
) -> list[tuple[str, str, int]]:
    """(kind, keras.applications block id, filters) of every cell, in
    order. Normal cells are numbered 0 .. 3 * num_blocks except
    num_blocks; the reduction cells are "stem_1", "stem_2",
    "reduce_<num_blocks>" and "reduce_<2 * num_blocks>"."""
    m = filter_multiplier
    plan = [
        ("reduction", "stem_1", filters // m**2),
        ("reduction", "stem_2", filters // m),
    ]
    for stack in range(3):
        if stack:
            plan.append(
                (
                    "reduction",
                    f"reduce_{stack * num_blocks}",
                    filters * m**stack,
                )
            )
        first = stack * num_blocks + (1 if stack else 0)
        plan.extend(
            ("normal", str(first + i), filters * m**stack)
            for i in range(num_blocks)
        )
    return plan


def _cell_name(kind: str, block_id: str) -> str:
    return f"{kind}_{block_id.removeprefix('reduce_')}"


@kb.register(package="zoo")
class NASNet(ImageModel):
    """NASNet-A, with keras.applications.NASNet's arguments.

    Layer names: `stem_conv`, `stem_bn`, the cells `reduction_stem_1`,
    `reduction_stem_2`, `normal_0` ... and `reduction_<n>` (numbered as
    keras.applications numbers them; see `cell_plan`), `top_relu`, then
    the head (`avg_pool`, `predictions`). `features_only` gives the
    outputs of `stem_bn` (stride 2), `reduction_stem_1` (4), and the
    last normal cells of the first two stacks (8, 16) and `top_relu`
    (32).

    Args:
        penultimate_filters: channels of the last cells' output; a
            multiple of `24 * filter_multiplier ** 2`.
        num_blocks: normal cells per stack.
        stem_block_filters: filters of the stem convolution.
        skip_reduction: the cell after a reduction cell takes, as its
            `previous`, the reduction cell's own `previous` instead of
            its input.
        filter_multiplier: width ratio between stacks.
        input_shape, num_classes, include_top, pooling,
            classifier_activation: as in keras.applications.
        features_only: output the feature map of each stride instead.

    Example:

    >>> import zoo
    >>> model = zoo.create_model("nasnet_mobile", input_shape=(32, 32, 3),
    ...                          num_classes=10)
    >>> model.output_shape, model.get_layer("normal_12").output.shape[-1]
    ((None, 10), 1056)
    """

    def __init__(
        self,
        *,
        penultimate_filters: int = 4032,
        num_blocks: int = 6,
        stem_block_filters: int = 96,
        skip_reduction: bool = True,
        filter_multiplier: int = 2,
        input_shape: tuple[int, int, int] = (331, 331, 3),
        num_classes: int = 1000,
        include_top: bool = True,
        pooling: str | None = None,
        classifier_activation: str | Callable | None = "softmax",
        features_only: bool = False,
        name: str = "nasnet",
        **kwargs,
    ):
        _positive_int("penultimate_filters", penultimate_filters)
        _positive_int("num_blocks", num_blocks)
        _positive_int("stem_block_filters", stem_block_filters)
        _positive_int("filter_multiplier", filter_multiplier)
        if penultimate_filters % (24 * filter_multiplier**2):
            raise ValueError(
                "penultimate_filters must be a multiple of 24 * "
                f"filter_multiplier ** 2 = {24 * filter_multiplier**2}. "
                f"Received: {penultimate_filters=}"
            )
        head = ImageHead(
            "NASNet",
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
            stem_block_filters,
            3,
            strides=2,
            use_bias=False,
            kernel_initializer="he_normal",
            name="stem_conv",
        )(inputs)
        x = keras.layers.BatchNormalization(**_BN, name="stem_bn")(x)
        stages = [Stage("stem_bn", x, 2)]
        plan = cell_plan(
            num_blocks, penultimate_filters // 24, filter_multiplier
        )
        previous, stride = None, 2
        for kind, block_id, filters in plan:
            if previous is None:
                adjust, cell_inputs = None, [x, x]
            else:
                adjust = adjust_for(previous.shape, x.shape, filters)
                cell_inputs = [x, previous]
            cell = (
                kb.layers.NASNetNormalCell
                if kind == "normal"
                else kb.layers.NASNetReductionCell
            )(filters, adjust=adjust, **_BN, name=_cell_name(kind, block_id))
            skip = skip_reduction and block_id.startswith("reduce_")
            previous, x = (previous if skip else x), cell(cell_inputs)
            if kind == "reduction":
                stride *= 2
            if block_id in ("stem_1", str(num_blocks - 1), str(2 * num_blocks)):
                stages.append(Stage(cell.name, x, stride))
        x = keras.layers.ReLU(name="top_relu")(x)
        stages.append(Stage("top_relu", x, stride))
        outputs = head.outputs(stages)
        self._finish(head, inputs, outputs, name, kwargs)


def _nasnet(variant: str, overrides) -> NASNet:
    size = DEFAULT_SIZES[variant]
    args = {
        **NASNET_SPECS[variant],
        "input_shape": (size, size, 3),
        "name": f"nasnet_{variant}",
    }
    return NASNet(**{**args, **overrides})


# One narrow normal cell per stack keeps the suites' cost in seconds and
# still runs every cell and adjust step (and, for nasnet_large, its
# skip_reduction); the full models are checked against keras.applications
# in tests/zoo/test_nasnet.py.
_TEST_OVERRIDES = {
    "input_shape": (32, 32, 3),
    "num_classes": 5,
    "num_blocks": 1,
    "penultimate_filters": 192,
}


# keras.applications names a cell's layers after the cell's kind and id
# ("reduction_4/left1/separable_conv_1" is
# "separable_conv_1_reduction_left1_reduce_4"), a reduction cell's fifth
# branch "left4", and builds the cells in name scopes.
_KERAS = KerasTwin(
    layers=(
        (r"^stem_(conv|bn)$", r"stem_\g<1>1"),
        (r"^reduction_(\d+)/", r"reduction_reduce_\1/"),
        (r"^([a-z]+)_(\w+)/(adjust_\w+)$", r"\3_\2"),
        (r"^([a-z]+)_(\w+)/((?:conv|bn)_1)$", r"\1_\3_\2"),
        (r"^(reduction_\w+/)left5/", r"\1left4/"),
        (r"^([a-z]+)_(\w+)/(\w+)/(\w+)$", r"\4_\1_\3_\2"),
    )
)


@register_model(
    pretrained_cfg=PretrainedCfg("NASNetMobile"),
    keras_twin=_KERAS.named("nasnet_mobile"),
    test_overrides=_TEST_OVERRIDES,
)
def nasnet_mobile(**overrides) -> NASNet:
    """NASNet-A Mobile (4 @ 1056) for 224x224x3 images, 1000 classes."""
    return _nasnet("mobile", overrides)


@register_model(
    pretrained_cfg=PretrainedCfg(
        "NASNetLarge", input_size=(331, 331, 3), crop_fraction=0.911
    ),
    keras_twin=_KERAS.named("nasnet_large"),
    test_overrides=_TEST_OVERRIDES,
    test_covered_by="nasnet_mobile",
)
def nasnet_large(**overrides) -> NASNet:
    """NASNet-A Large (6 @ 4032) for 331x331x3 images, 1000 classes."""
    return _nasnet("large", overrides)
