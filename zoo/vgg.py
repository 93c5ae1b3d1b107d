"""VGG (Simonyan & Zisserman, 2015, "Very Deep Convolutional Networks for
Large-Scale Image Recognition"): the book's VGG-11 (section "Networks
Using Blocks (VGG)") and VGG-16/VGG-19 identical to keras.applications',
whose weights `zoo.from_keras_applications` ports.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras

import kerasblocks as kb
from zoo._image import ImageHead, ImageModel, Stage, _positive_int
from zoo._keras_twin import KerasTwin
from zoo._registry import register_model
from zoo.pretrained import PretrainedCfg

# Depth -> ((num_convs, filters) of each block); the paper's configurations
# A (11 weight layers), D (16) and E (19).
VGG_ARCHS = {
    11: ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512)),
    16: ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512)),
    19: ((2, 64), (2, 128), (4, 256), (4, 512), (4, 512)),
}


def _check_conv_arch(conv_arch) -> tuple[tuple[int, int], ...]:
    if not isinstance(conv_arch, (tuple, list)) or not conv_arch:
        raise ValueError(
            "conv_arch must be a non-empty sequence of (num_convs, filters) "
            f"pairs. Received: {conv_arch=}"
        )
    for pair in conv_arch:
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(
                "conv_arch must be a non-empty sequence of (num_convs, "
                f"filters) pairs. Received: {conv_arch=}"
            )
        _positive_int("conv_arch num_convs", pair[0])
        _positive_int("conv_arch filters", pair[1])
    return tuple((int(n), int(f)) for n, f in conv_arch)


@kb.register(package="zoo")
class VGG(ImageModel):
    """VGG: `VGGBlock`s (3x3 convolutions, then a 2x2 max pool), then two
    fully connected ReLU layers.

    Layers: block1..blockN (each a `kerasblocks.layers.VGGBlock` holding
    conv1..convK and pool), flatten, fc1, [drop1], fc2, [drop2],
    predictions: the names and variable order of keras.applications'
    VGG16/VGG19 (`block1_conv1`, ...) with "/" for "_".

    Args:
        conv_arch: (num_convs, filters) of each block; `VGG_ARCHS[depth]`
            for the paper's configurations.
        fc_units: width of fc1 and fc2 (the paper's 4096).
        dropout_rate: dropout after fc1 and fc2; 0 (keras.applications)
            adds no dropout layers, the book uses 0.5.
        input_shape, num_classes, include_top, pooling,
            classifier_activation: as in keras.applications.
        features_only: output every block's feature map.

    Example:

    >>> from zoo.vgg import VGG, VGG_ARCHS
    >>> model = VGG(VGG_ARCHS[11], input_shape=(32, 32, 3), fc_units=16)
    >>> [v.path for v in model.weights[:2]]
    ['block1/conv1/kernel', 'block1/conv1/bias']
    >>> model.output_shape
    (None, 1000)
    """

    def __init__(
        self,
        conv_arch: Sequence[Sequence[int]] = VGG_ARCHS[16],
        *,
        fc_units: int = 4096,
        dropout_rate: float = 0.0,
        input_shape: tuple[int, int, int] = (224, 224, 3),
        num_classes: int = 1000,
        include_top: bool = True,
        pooling: str | None = None,
        classifier_activation: str | Callable | None = "softmax",
        features_only: bool = False,
        name: str = "vgg",
        **kwargs,
    ):
        arch = _check_conv_arch(conv_arch)
        _positive_int("fc_units", fc_units)
        if not 0.0 <= dropout_rate < 1.0:
            raise ValueError(
                f"dropout_rate must be in [0, 1). Received: {dropout_rate=}"
            )
        head = ImageHead(
            "VGG",
            input_shape=input_shape,
            num_classes=num_classes,
            include_top=include_top,
            pooling=pooling,
            classifier_activation=classifier_activation,
            features_only=features_only,
            min_input_size=2 ** len(arch),
        )
        inputs = head.inputs()
        x = inputs
        stages = []
        for index, (num_convs, filters) in enumerate(arch, start=1):
            x = kb.layers.VGGBlock(num_convs, filters, name=f"block{index}")(x)
            stages.append(Stage(f"block{index}", x, 2**index))

        def top(x):
            x = keras.layers.Flatten(name="flatten")(x)
            for index in (1, 2):
                x = keras.layers.Dense(
                    fc_units, activation="relu", name=f"fc{index}"
                )(x)
                if dropout_rate:  # keras.applications has no dropout
                    drop = keras.layers.Dropout(
                        dropout_rate, name=f"drop{index}"
                    )
                    x = drop(x)
            return x

        outputs = head.outputs(stages, top)
        self._finish(head, inputs, outputs, name, kwargs)


def _test_overrides(depth: int, channels: int) -> dict[str, Any]:
    # The suite saves and reloads each model four times; at full width
    # that is spent on 10-20M weights (and fc1 has 102M at 224). A quarter
    # of the widths and 64 FC units keep every layer, name and shape rule
    # under test; the full widths are checked by the parameter-count
    # goldens and the keras.applications porting tests.
    return {
        "conv_arch": tuple((n, f // 4) for n, f in VGG_ARCHS[depth]),
        "fc_units": 64,
        "input_shape": (32, 32, channels),
    }


@register_model(test_overrides=_test_overrides(11, 1))
def vgg11(**overrides) -> VGG:
    """VGG-11 for 224x224x1 images and 10 classes, with dropout (the
    book's)."""
    return VGG(
        **{
            "conv_arch": VGG_ARCHS[11],
            "dropout_rate": 0.5,
            "input_shape": (224, 224, 1),
            "num_classes": 10,
            "name": "vgg11",
            **overrides,
        }
    )


# keras.applications names "block1/conv1" "block1_conv1".
_KERAS = KerasTwin()


@register_model(
    pretrained_cfg=PretrainedCfg("VGG16", preprocessing="caffe"),
    keras_twin=_KERAS.named("vgg16"),
    test_overrides=_test_overrides(16, 3),
)
def vgg16(**overrides) -> VGG:
    """VGG-16 as keras.applications.VGG16 (224x224x3, 1000 classes)."""
    return VGG(**{"conv_arch": VGG_ARCHS[16], "name": "vgg16", **overrides})


@register_model(
    pretrained_cfg=PretrainedCfg("VGG19", preprocessing="caffe"),
    keras_twin=_KERAS.named("vgg19"),
    test_overrides=_test_overrides(19, 3),
    test_covered_by="vgg16",
)
def vgg19(**overrides) -> VGG:
    """VGG-19 as keras.applications.VGG19 (224x224x3, 1000 classes)."""
    return VGG(**{"conv_arch": VGG_ARCHS[19], "name": "vgg19", **overrides})
