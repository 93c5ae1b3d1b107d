"""What EfficientNet (V1) and EfficientNetV2 share: argument checks,
the stem and top convolutions, the stages of blocks, keras.applications'
top and classifier initialization, the porting of their weights and the
conformance suite's settings.
"""

from __future__ import annotations

from collections.abc import Callable

import keras

from kerasblocks._validation import rate as check_rate
from kerasblocks.layers.efficientnet import conv_initializer
from zoo._image import ImageHead, ImageModel, Stage
from zoo._keras_twin import KerasTwin

_DEFAULT_DROP_CONNECT_RATE = 0.2


def resolve_drop_connect_rate(
    model: ImageModel,
    drop_connect_rate: float | None,
    drop_path_rate: float | None,
) -> float:
    """The stochastic depth rate from keras.applications' name
    (`drop_connect_rate`) or timm's (`drop_path_rate`).

    Either may be given (both only if equal); with neither it is 0.2.
    The resolved rate is recorded under both names in `model`'s config,
    so that the config says which rate the model was built with.
    """
    given = [r for r in (drop_connect_rate, drop_path_rate) if r is not None]
    if len(given) == 2 and given[0] != given[1]:
        raise ValueError(
            "drop_connect_rate and drop_path_rate name the same stochastic "
            "depth rate; give one of them (or equal values). Received: "
            f"{drop_connect_rate=}, {drop_path_rate=}"
        )
    rate = given[0] if given else _DEFAULT_DROP_CONNECT_RATE
    rate = check_rate("drop_connect_rate", rate)
    captured = model._kerasblocks_arguments.kwargs
    captured["drop_connect_rate"] = captured["drop_path_rate"] = rate
    return rate


def top_layers(dropout_rate: float) -> Callable:
    """keras.applications' top: global average pooling, then dropout."""

    def top(x):
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if dropout_rate > 0:
            x = keras.layers.Dropout(dropout_rate, name="top_dropout")(x)
        return x

    return top


def classifier_initializer() -> keras.initializers.Initializer:
    """keras.applications' EfficientNet classifier initializer: uniform
    of variance 1 / (3 fan-out)."""
    return keras.initializers.VarianceScaling(
        1.0 / 3.0, mode="fan_out", distribution="uniform"
    )


def initialize_classifier(model: keras.Model) -> None:
    """Draws the classifier's kernel (if any) as keras.applications
    does for EfficientNet; `ImageHead` makes it with Keras's default."""
    if "predictions" in [layer.name for layer in model.layers]:
        kernel = model.get_layer("predictions").kernel
        kernel.assign(classifier_initializer()(kernel.shape))


def block_name(stage: int, repeat: int) -> str:
    """keras.applications' name of a block: "block1a", "block2b", ..."""
    return f"block{stage + 1}{chr(ord('a') + repeat)}"


def conv_bn_act(
    x,
    filters: int,
    kernel_size: int,
    prefix: str,
    *,
    strides: int = 1,
    momentum: float,
):
    """A convolution (no bias, "same"), batch norm and swish, named
    `{prefix}_conv`, `{prefix}_bn`, `{prefix}_activation`."""
    x = keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        use_bias=False,
        kernel_initializer=conv_initializer(),
        name=f"{prefix}_conv",
    )(x)
    x = keras.layers.BatchNormalization(momentum=momentum, name=f"{prefix}_bn")(
        x
    )
    return keras.layers.Activation("swish", name=f"{prefix}_activation")(x)


def start(
    model: ImageModel,
    family: str,
    *,
    width_coefficient: float,
    depth_coefficient: float,
    dropout_rate: float,
    drop_connect_rate: float | None,
    drop_path_rate: float | None,
    **image_arguments,
) -> tuple[float, ImageHead]:
    """Checks the arguments EfficientNet V1 and V2 share and returns the
    resolved stochastic depth rate and the `family`'s image head (which
    takes `image_arguments`: input_shape, num_classes, ...)."""
    for argument, value in (
        ("width_coefficient", width_coefficient),
        ("depth_coefficient", depth_coefficient),
    ):
        if isinstance(value, bool) or not (
            isinstance(value, (int, float)) and value > 0
        ):
            raise ValueError(
                f"{argument} must be a positive number. Received: "
                f"{argument}={value!r}"
            )
    check_rate("dropout_rate", dropout_rate)
    rate = resolve_drop_connect_rate(model, drop_connect_rate, drop_path_rate)
    return rate, ImageHead(family, min_input_size=32, **image_arguments)


def blocks_and_top(
    x,
    stages: list[tuple[type, int, int, dict]],
    *,
    rate: float,
    total: int,
    zero_init_last: bool,
    top_filters: int,
    momentum: float,
) -> list[Stage]:
    """The blocks after the stem, then the top convolution.

    Each of `stages` is (block class, repeats, strides of the first
    block, the blocks' other arguments); block `i` gets stochastic depth
    `rate * i / total`. Returns the feature map before each stride-2
    stage and the top's (`features_only`'s outputs).
    """
    index, stride, last, outputs = 0, 2, "stem_activation", []
    for stage, (block, repeats, strides, arguments) in enumerate(stages):
        if strides == 2:
            outputs.append(Stage(last, x, stride))
            stride *= 2
        for repeat in range(repeats):
            last = block_name(stage, repeat)
            x = block(
                strides=strides if repeat == 0 else 1,
                drop_path_rate=rate * index / total,
                zero_init_last=zero_init_last,
                momentum=momentum,
                name=last,
                **arguments,
            )(x)
            index += 1
    x = conv_bn_act(x, top_filters, 1, "top", momentum=momentum)
    return [*outputs, Stage("top_activation", x, stride)]


def finish(
    model: ImageModel,
    head: ImageHead,
    inputs,
    stages: list[Stage],
    dropout_rate: float,
    name: str,
    kwargs: dict,
) -> None:
    """Adds keras.applications' top or the feature maps, makes `model`
    the functional graph and draws its classifier as Keras does."""
    outputs = head.outputs(stages, top_layers(dropout_rate))
    model._finish(head, inputs, outputs, name, kwargs)
    initialize_classifier(model)


def keras_twin(depthwise_conv: str, arguments) -> KerasTwin:
    """How an EfficientNet (V1 or V2) is keras.applications': layer
    `block1a/expand_conv` is `block1a_expand_conv`, except the depthwise
    convolution, called `depthwise_conv` ("dwconv" in V1, "dwconv2" in
    V2), its batch norm "bn", and the unnamed input normalization; the
    classifier's dropout rate is its "top_dropout"'s. `arguments` reads
    the rest from the Keras model (`zoo._keras_twin.Source`)."""
    return KerasTwin(
        layers=(
            (r"^normalization$", "normalization#"),
            (r"/depthwise_conv$", f"/{depthwise_conv}"),
            (r"/depthwise_bn$", "/bn"),
        ),
        arguments=arguments,
        top_arguments=lambda k: {"dropout_rate": k.rate("top_dropout", 0.0)},
    )


# A projection's per-channel shift (project_bn's beta) reaches the loss
# only through a 1x1 convolution and a batch norm (the next block's
# expansion or the top), which removes it in training mode: its gradient
# is zero up to rounding.
TEST_NO_GRADIENT = ("*/project_bn/beta",)
TEST_OVERRIDES = {"input_shape": (32, 32, 3), "num_classes": 5}
# The full harness saves and reloads the model several times: half the
# widths and fewer blocks (every stage of two or more still has an
# identity block) keep it fast. The real widths and depths are checked
# by the goldens, the porting tests and the siblings' light checks.
# EfficientNetV2 registers its models with the same three.
TEST_FULL_OVERRIDES = {
    **TEST_OVERRIDES,
    "width_coefficient": 0.5,
    "depth_coefficient": 0.6,
}
